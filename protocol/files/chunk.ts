/**
 * File chunks on the wire (docs/PROTOCOL.md 5.17.2):
 *
 *   FCHUNK = 0x46 | fileId (16) | index u32 | AES-256-GCM(fkey, nonce, ad, plaintext)
 *   nonce  = 0x00 x 8 || index u32
 *   ad     = "zeroroom/v1/file-chunk" || fileId || index u32 || count u32
 *
 * `parseChunkFrame` does every check that needs no key (length, kind, index); `openChunk` then
 * authenticates. Both throw FileError; nothing here keeps state or does I/O.
 */
import { aeadOpen, aeadSeal, AuthError, equalBytes, type AeadBackend } from '../../crypto/index.ts';
import { FileError } from './errors.ts';
import { chunkCount, chunkPlainLength, FILE_CHUNK, FILE_ID_LENGTH, type FileId, type FileOffer } from './offer.ts';

export const KIND_FCHUNK = 0x46;
export const CHUNK_HEADER = 1 + FILE_ID_LENGTH + 4;
export const CHUNK_TAG = 16;
export const MIN_CHUNK_FRAME = CHUNK_HEADER + CHUNK_TAG;
export const MAX_CHUNK_FRAME = CHUNK_HEADER + FILE_CHUNK + CHUNK_TAG;
const AD_LABEL = new TextEncoder().encode('zeroroom/v1/file-chunk');

export function chunkNonce(index: number): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setUint32(8, index);
  return n;
}

export function chunkAd(file: Uint8Array, index: number, count: number): Uint8Array {
  const ad = new Uint8Array(AD_LABEL.length + FILE_ID_LENGTH + 8);
  ad.set(AD_LABEL, 0);
  ad.set(file, AD_LABEL.length);
  const v = new DataView(ad.buffer);
  v.setUint32(AD_LABEL.length + FILE_ID_LENGTH, index);
  v.setUint32(AD_LABEL.length + FILE_ID_LENGTH + 4, count);
  return ad;
}

/** Seal chunk `index` of `offer` into a complete FCHUNK frame. */
export async function sealChunk(backend: AeadBackend, offer: FileOffer, index: number, plaintext: Uint8Array): Promise<Uint8Array> {
  const count = chunkCount(offer.size);
  if (plaintext.length !== chunkPlainLength(offer.size, index))
    throw new FileError('file.chunk-size', `chunk ${index} must be ${chunkPlainLength(offer.size, index)} bytes, got ${plaintext.length}`);
  const sealed = await aeadSeal(backend, offer.fkey, chunkNonce(index), chunkAd(offer.file, index, count), plaintext);
  const frame = new Uint8Array(CHUNK_HEADER + sealed.length);
  frame[0] = KIND_FCHUNK;
  frame.set(offer.file, 1);
  new DataView(frame.buffer).setUint32(1 + FILE_ID_LENGTH, index);
  frame.set(sealed, CHUNK_HEADER);
  return frame;
}

export interface ChunkFrame {
  readonly file: FileId;
  readonly index: number;
  readonly sealed: Uint8Array;
}

/** Checks that need no key: frame length and kind. The file id is looked up by the caller. */
export function parseChunkFrame(frame: Uint8Array): ChunkFrame {
  if (frame.length < MIN_CHUNK_FRAME || frame.length > MAX_CHUNK_FRAME)
    throw new FileError('file.frame', `chunk frame of ${frame.length} bytes outside [${MIN_CHUNK_FRAME}, ${MAX_CHUNK_FRAME}]`);
  if (frame[0] !== KIND_FCHUNK) throw new FileError('file.frame', `unknown file frame kind ${String(frame[0])}`);
  const index = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1 + FILE_ID_LENGTH);
  return { file: frame.slice(1, 1 + FILE_ID_LENGTH) as FileId, index, sealed: frame.subarray(CHUNK_HEADER) };
}

/** Authenticate and decrypt a parsed chunk of `offer` (its id, index and length checked first). */
export async function openChunk(backend: AeadBackend, offer: FileOffer, c: ChunkFrame): Promise<Uint8Array> {
  if (!equalBytes(c.file, offer.file)) throw new FileError('file.unknown', 'chunk of another file');
  const count = chunkCount(offer.size);
  if (c.index >= count) throw new FileError('file.frame', `chunk index ${c.index} >= count ${count}`);
  const want = chunkPlainLength(offer.size, c.index) + CHUNK_TAG;
  if (c.sealed.length !== want) throw new FileError('file.chunk-size', `chunk ${c.index} of ${c.sealed.length} bytes, expected ${want}`);
  try {
    return await aeadOpen(backend, offer.fkey, chunkNonce(c.index), chunkAd(offer.file, c.index, count), c.sealed);
  } catch (e) {
    if (e instanceof AuthError) throw new FileError('file.auth', `chunk ${c.index} failed authentication`, { cause: e });
    throw e;
  }
}
