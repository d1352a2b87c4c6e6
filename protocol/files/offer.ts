/**
 * The file offer: the sealed body of a room message that announces a file (docs/PROTOCOL.md
 * 5.17.1), its strict decoder, chunk geometry, and the safe local name of a received file.
 */
import { asAeadKey, type AeadKey } from '../../crypto/index.ts';
import type { Brand } from '../../crypto/brand.ts';
import { DecodeError } from '../errors.ts';
import { encode, Fields } from '../msgpack.ts';
import { FileError } from './errors.ts';

export type FileId = Brand<Uint8Array, 'FileId'>;
export const FILE_ID_LENGTH = 16;
/**
 * Plaintext bytes per chunk (the last one may be shorter). A sealed chunk (65,573 bytes) fits one
 * data-channel message of every engine (Chromium and libdatachannel announce 256 KiB, and a
 * 256 KiB chunk would not fit with its header and tag).
 */
export const FILE_CHUNK = 65_536;
/** Largest size an offer may name (1 TiB); receivers apply their own, lower limit. */
export const MAX_FILE_SIZE = 2 ** 40;
export const MAX_NAME = 255;
export const MAX_MIME = 127;
/** An encoded offer body is small: bound it before parsing. */
export const MAX_OFFER_BODY = 1024;

export interface FileOffer {
  readonly file: FileId;
  readonly name: string;
  readonly size: number;
  readonly mime: string;
  readonly chunk: number;
  readonly hash: Uint8Array;
  readonly fkey: AeadKey;
  readonly ts: number;
}

export function asFileId(bytes: Uint8Array, what = 'file id'): FileId {
  if (bytes.length !== FILE_ID_LENGTH) throw new DecodeError(`${what}: must be ${FILE_ID_LENGTH} bytes, got ${bytes.length}`);
  return bytes.slice() as FileId;
}

export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / FILE_CHUNK));
}

/** Plaintext length of chunk `index` of a file of `size` bytes. */
export function chunkPlainLength(size: number, index: number): number {
  const count = chunkCount(size);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`chunk ${index} outside [0, ${count})`);
  return index < count - 1 ? FILE_CHUNK : size - (count - 1) * FILE_CHUNK;
}

export function encodeFileOffer(o: FileOffer): Uint8Array {
  return encode({
    type: 'file',
    file: o.file,
    name: o.name,
    size: o.size,
    mime: o.mime,
    chunk: o.chunk,
    hash: o.hash,
    fkey: o.fkey,
    ts: o.ts,
  });
}

export function decodeFileOffer(bytes: Uint8Array): FileOffer {
  if (bytes.length > MAX_OFFER_BODY) throw new DecodeError(`file offer: larger than ${MAX_OFFER_BODY} bytes`);
  const f = Fields.fromBytes(bytes, 'file offer').only(['type', 'file', 'name', 'size', 'mime', 'chunk', 'hash', 'fkey', 'ts']);
  f.type('file');
  const name = f.str('name', MAX_NAME);
  if (name.length === 0) throw new DecodeError('file offer: empty name');
  return {
    file: asFileId(f.bin('file', FILE_ID_LENGTH)),
    name,
    size: f.int('size', { min: 0, max: MAX_FILE_SIZE }),
    mime: f.str('mime', MAX_MIME),
    chunk: f.int('chunk', { min: FILE_CHUNK, max: FILE_CHUNK }),
    hash: f.bin('hash', 32).slice(),
    fkey: asAeadKey(f.bin('fkey', 32), 'file offer: fkey'),
    ts: f.int('ts', { min: 0, max: Number.MAX_SAFE_INTEGER }),
  };
}

/** A receiver's own limit (the web app's default is 100 MiB): `file.too-large` above it. */
export function checkOfferSize(o: FileOffer, limit: number): void {
  if (o.size > limit) throw new FileError('file.too-large', `file of ${o.size} bytes is above the limit of ${limit} bytes`);
}

const RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

/**
 * The sender's label reduced to a name safe on every file system and in a download attribute: the
 * last path segment, no control, separator or reserved characters, no leading dots, no trailing dots
 * or spaces, at most 120 characters (keeping the extension), "file" if nothing is left.
 */
export function safeFileName(label: string): string {
  const segment = label.split(/[/\\]/).pop() ?? '';
  let s = segment.normalize('NFC').replace(/[\u0000-\u001f\u007f-\u009f<>:"|?*\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '_');
  s = s.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  if (RESERVED.test(s)) s = `_${s}`;
  if (s.length > 120) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : '';
    s = s.slice(0, 120 - ext.length) + ext;
  }
  return s.length === 0 ? 'file' : s;
}
