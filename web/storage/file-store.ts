/**
 * File chunks in IndexedDB (docs/PROTOCOL.md 6.7): the web app's FileStore (the room driver's storage
 * port for files, 5.17.4). Each chunk is its own record in the `files` store, keyed
 * `<roomId>/<fileId hex>/<index, 10 digits>` and sealed as
 *
 *   0x01 | nonce (12, random) | AES-256-GCM(F, nonce, ad = utf8("files/<record key>"), plaintext)
 *
 * under F = HKDF-SHA256(D, "zeroroom/v1/storage/files"), derived once per unlock from the data key
 * (never from the password). The associated data binds a record to its key, so a record moved to
 * another index, file or room does not open (`crypto.auth`), like every sealed record (6.3). A chunk
 * is stored before the receiver counts it, so `next` (the first index missing) is the resume point
 * after a reload.
 *
 * Files this device sends are read from the picked File/Blob slice by slice while the page lives, and
 * copied into sealed records in the same single pass that hashes them (`prepare`): after a reload the
 * sender (or the owner serving history) reads them from here. No function holds a whole file: reads,
 * hashing and verification go chunk by chunk; only `blob` builds a Blob from the chunks (for a download
 * or a thumbnail, which the browser may keep on disk).
 */
import {
  aeadOpen,
  aeadSeal,
  asAeadKey,
  equalBytes,
  hkdfSha256,
  sha256Stream,
  systemRandom,
  toHex,
  utf8Encode,
  webCryptoAead,
  type AeadBackend,
  type AeadKey,
} from '../../crypto/index.ts';
import {
  chunkCount,
  chunkPlainLength,
  checkOfferSize,
  FILE_CHUNK,
  FileError,
  type FileId,
  type FileOffer,
} from '../../protocol/files/index.ts';
import { decodeKnownFiles, encodeKnownFiles, type KnownFile } from '../../protocol/room/file-records.ts';
import type { FileStore } from '../../protocol/room/file-driver.ts';
import { RecordError } from '../../protocol/room/records.ts';
import type { Db } from './db.ts';

/** The web app's default per-file limit (5.17.6, `file.too-large`); a setting changes it. */
export const DEFAULT_FILE_LIMIT = 100 * 1024 * 1024;
/** HKDF info of the file-chunk storage key (PROTOCOL.md 6.7). */
export const FILES_KEY_INFO = 'zeroroom/v1/storage/files';
const RECORD_VERSION = 0x01;
const NONCE = 12;

export type { FileStore };

/** F = HKDF-SHA256(D, info): the one key file chunks are sealed with. */
export async function deriveFilesKey(dataKey: Uint8Array): Promise<AeadKey> {
  return asAeadKey(await hkdfSha256(dataKey, utf8Encode(FILES_KEY_INFO)), 'files key');
}

export function chunkRecordKey(roomId: string, file: Uint8Array, index: number): string {
  return `${roomId}/${toHex(file)}/${index.toString().padStart(10, '0')}`;
}

/** The record of the files this device takes part in (outside every file's own key range). */
export function knownKey(roomId: string): string {
  return `${roomId}/known`;
}

function filePrefix(roomId: string, file: Uint8Array): string {
  return `${roomId}/${toHex(file)}/`;
}

const range = (prefix: string): IDBKeyRange => IDBKeyRange.bound(prefix, `${prefix}\uffff`);

/** Sender side: refuse a file above the limit before anything is read (`file.too-large`). */
export function checkSendSize(size: number, limit: number): void {
  if (size > limit) throw new FileError('file.too-large', `file of ${size} bytes is above the limit of ${limit} bytes`);
}

export class IdbFileStore implements FileStore {
  /** Files picked on this page, by file id hex: their chunks are read from the Blob itself. */
  private readonly sources = new Map<string, Blob>();

  constructor(
    private readonly db: Db,
    private readonly key: AeadKey,
    readonly roomId: string,
    private readonly aead: AeadBackend = webCryptoAead,
  ) {}

  private async seal(recordKey: string, plaintext: Uint8Array): Promise<Uint8Array> {
    const nonce = systemRandom(NONCE);
    const sealed = await aeadSeal(this.aead, this.key, nonce, utf8Encode(`files/${recordKey}`), plaintext);
    const out = new Uint8Array(1 + NONCE + sealed.length);
    out[0] = RECORD_VERSION;
    out.set(nonce, 1);
    out.set(sealed, 1 + NONCE);
    return out;
  }

  /** The plaintext of a stored record; RecordError if malformed, AuthError (`crypto.auth`) if tampered or moved. */
  private async open(recordKey: string, value: unknown): Promise<Uint8Array> {
    if (!(value instanceof Uint8Array) || value.length < 1 + NONCE + 16 || value[0] !== RECORD_VERSION)
      throw new RecordError(`file record ${recordKey}: not a sealed chunk record`);
    return aeadOpen(this.aead, this.key, value.subarray(1, 1 + NONCE), utf8Encode(`files/${recordKey}`), value.subarray(1 + NONCE));
  }

  private async put(offer: { file: Uint8Array }, index: number, plaintext: Uint8Array): Promise<void> {
    const k = chunkRecordKey(this.roomId, offer.file, index);
    await this.db.put('files', await this.seal(k, plaintext), k);
  }

  async read(offer: FileOffer, index: number): Promise<Uint8Array> {
    const want = chunkPlainLength(offer.size, index);
    const source = this.sources.get(toHex(offer.file));
    if (source !== undefined && source.size === offer.size) {
      const bytes = new Uint8Array(await source.slice(index * FILE_CHUNK, index * FILE_CHUNK + want).arrayBuffer());
      if (bytes.length === want) return bytes;
      this.sources.delete(toHex(offer.file)); // the file changed on disk under us: use the stored copy
    }
    const k = chunkRecordKey(this.roomId, offer.file, index);
    const value = await this.db.get('files', k);
    if (value === undefined) throw new FileError('file.gone', `chunk ${index} of this file is not stored here`);
    const plain = await this.open(k, value);
    if (plain.length !== want) throw new RecordError(`file record ${k}: ${plain.length} bytes, expected ${want}`);
    return plain;
  }

  /** Durable when the promise resolves (the IndexedDB transaction committed). */
  async store(offer: FileOffer, index: number, plaintext: Uint8Array): Promise<void> {
    if (plaintext.length !== chunkPlainLength(offer.size, index))
      throw new FileError(
        'file.chunk-size',
        `chunk ${index} must be ${chunkPlainLength(offer.size, index)} bytes, got ${plaintext.length}`,
      );
    await this.put(offer, index, plaintext);
  }

  /** First index not stored (chunks are stored in order; a gap ends the run). Keys only: nothing is opened. */
  async next(offer: FileOffer): Promise<number> {
    const prefix = filePrefix(this.roomId, offer.file);
    const keys = await this.db.getAllKeys('files', range(prefix));
    const have = new Set(keys.map((k) => k.slice(prefix.length)));
    const count = chunkCount(offer.size);
    let n = 0;
    while (n < count && have.has(n.toString().padStart(10, '0'))) n++;
    return n;
  }

  /** SHA-256 over the stored chunks, one at a time, against `offer.hash`; false if any is missing or does not open. */
  async verify(offer: FileOffer): Promise<boolean> {
    const hash = await sha256Stream();
    const count = chunkCount(offer.size);
    for (let i = 0; i < count; i++) {
      const k = chunkRecordKey(this.roomId, offer.file, i);
      const value = await this.db.get('files', k);
      if (value === undefined) return false;
      let plain: Uint8Array;
      try {
        plain = await this.open(k, value);
      } catch (e) {
        if (e instanceof RecordError || (e as { code?: unknown }).code === 'crypto.auth') return false;
        throw e;
      }
      if (plain.length !== chunkPlainLength(offer.size, i)) return false;
      hash.update(plain);
    }
    return equalBytes(hash.digest(), offer.hash);
  }

  async remove(file: FileId): Promise<void> {
    this.sources.delete(toHex(file));
    await this.db.delete('files', range(filePrefix(this.roomId, file)));
  }

  /**
   * A file picked on this device, before it is offered: one pass over the Blob, slice by slice, that
   * hashes it and copies each chunk into a sealed record (so a reload can still serve it). Refuses a
   * file above `limit` before reading anything. Returns the SHA-256 for the offer.
   */
  async prepare(blob: Blob, file: FileId, limit: number, progress?: (done: number, count: number) => void): Promise<Uint8Array> {
    checkSendSize(blob.size, limit);
    const hash = await sha256Stream();
    const offer = { file, size: blob.size };
    const count = chunkCount(blob.size);
    for (let i = 0; i < count; i++) {
      const want = chunkPlainLength(blob.size, i);
      const bytes = new Uint8Array(await blob.slice(i * FILE_CHUNK, i * FILE_CHUNK + want).arrayBuffer());
      if (bytes.length !== want) throw new FileError('file.chunk-size', 'the file changed while it was read');
      hash.update(bytes);
      await this.put(offer, i, bytes);
      progress?.(i + 1, count);
    }
    this.sources.set(toHex(file), blob);
    return hash.digest();
  }

  /**
   * The stored file as a Blob (to show or download), built chunk by chunk after checking the offer's
   * limit. Throws if a chunk is missing or does not open.
   */
  async blob(offer: FileOffer, limit: number): Promise<Blob> {
    checkOfferSize(offer, limit);
    const parts: BlobPart[] = [];
    const count = chunkCount(offer.size);
    for (let i = 0; i < count; i++) parts.push(new Uint8Array(await this.read(offer, i)) as Uint8Array<ArrayBuffer>);
    return new Blob(parts, { type: 'application/octet-stream' });
  }

  /**
   * The files this device takes part in (protocol/room/file-records.ts; they hold file keys): one
   * record `<roomId>/known`, sealed like a chunk. A record that does not open is reported by throwing
   * (the driver then starts without the list), never read as empty.
   */
  async loadKnown(): Promise<KnownFile[]> {
    const k = knownKey(this.roomId);
    const value = await this.db.get('files', k);
    if (value === undefined) return [];
    return decodeKnownFiles(await this.open(k, value));
  }

  async saveKnown(list: readonly KnownFile[]): Promise<void> {
    const k = knownKey(this.roomId);
    await this.db.put('files', await this.seal(k, encodeKnownFiles(list)), k);
  }

  /** The first bytes of a stored file (image sniffing), empty if chunk 0 is not stored. */
  async head(offer: FileOffer, n = 16): Promise<Uint8Array> {
    try {
      return (await this.read(offer, 0)).subarray(0, n);
    } catch (e) {
      if (e instanceof FileError && e.code === 'file.gone') return new Uint8Array(0);
      throw e;
    }
  }
}

/** A FileStore for a driver made before the store is open (the files key is derived asynchronously). */
export function lazyFileStore(store: () => Promise<IdbFileStore>): FileStore {
  return {
    read: async (offer, index) => (await store()).read(offer, index),
    store: async (offer, index, plaintext) => (await store()).store(offer, index, plaintext),
    next: async (offer) => (await store()).next(offer),
    verify: async (offer) => (await store()).verify(offer),
    remove: async (file) => (await store()).remove(file),
    loadKnown: async () => (await store()).loadKnown(),
    saveKnown: async (list) => (await store()).saveKnown(list),
  };
}
