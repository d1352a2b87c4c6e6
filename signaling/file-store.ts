/**
 * The CLI's FileStore (protocol/room/file-driver.ts, docs/PROTOCOL.md 5.17.4) on disk: own files are
 * read in place from the path given to `send-file`; received and relayed files are written chunk by
 * chunk at their offset into `<dir>/<file id>.part` (the --state directory's `files/`, or a
 * temporary directory), so memory holds one chunk whatever the size. The resume point is the
 * length of the part file in whole chunks; the list of files and own files' paths is sealed in the
 * state directory (files.bin) so a restart resumes. A finished file is handed to --download-dir
 * under its safe name (never overwriting: " (1)", " (2)", ...), as a hard link when it can be.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, constants, link, mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { toHex } from '../crypto/index.ts';
import { DecodeError } from '../protocol/errors.ts';
import { asFileId, chunkCount, chunkPlainLength, FILE_CHUNK, safeFileName, type FileId, type FileOffer } from '../protocol/files/offer.ts';
import { Fields, encode } from '../protocol/msgpack.ts';
import type { FileStore, KnownFile } from '../protocol/room/file-driver.ts';
import { decodeKnownFiles, encodeKnownFiles, MAX_KNOWN_FILES } from '../protocol/room/file-records.ts';

/** Where files.bin goes (StateDir), or nothing (without --state). */
export interface FilesRecordPort {
  read(): Promise<Uint8Array | null>;
  write(plain: Uint8Array): Promise<void>;
}

interface FilesRecord {
  readonly known: readonly KnownFile[];
  /** Own files: id -> path. */
  readonly sources: ReadonlyMap<string, string>;
}

const MAX_PATH = 4096;

export function encodeFilesRecord(r: FilesRecord): Uint8Array {
  return encode({
    v: 1,
    known: encodeKnownFiles(r.known),
    sources: [...r.sources].map(([id, p]) => ({ file: Uint8Array.from(Buffer.from(id, 'hex')), path: p })),
  });
}

export function decodeFilesRecord(bytes: Uint8Array): FilesRecord {
  const f = Fields.fromBytes(bytes, 'files record').only(['v', 'known', 'sources']);
  f.int('v', { min: 1, max: 1 });
  const known = decodeKnownFiles(f.bin('known', { min: 1, max: 8 * 1024 * 1024 }));
  const sources = new Map<string, string>();
  f.arr('sources', MAX_KNOWN_FILES).forEach((v, i) => {
    const e = Fields.of(v, `files record.sources[${i}]`).only(['file', 'path']);
    const id = toHex(asFileId(e.bin('file', 16)));
    const p = e.str('path', MAX_PATH);
    if (!path.isAbsolute(p)) throw new DecodeError(`files record.sources[${i}]: not an absolute path`);
    if (sources.has(id)) throw new DecodeError(`files record.sources[${i}]: listed twice`);
    sources.set(id, p);
  });
  return { known, sources };
}

export class DiskFileStore implements FileStore {
  private readonly sources = new Map<string, string>();
  private known: readonly KnownFile[] = [];
  private readonly handles = new Map<string, Promise<FileHandle>>();

  private constructor(
    /** Part files and relay copies. */
    readonly dir: string,
    private readonly record: FilesRecordPort | null,
  ) {}

  static async open(dir: string, record: FilesRecordPort | null): Promise<DiskFileStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = new DiskFileStore(dir, record);
    const bytes = record === null ? null : await record.read();
    if (bytes !== null) {
      const r = decodeFilesRecord(bytes);
      s.known = r.known;
      for (const [id, p] of r.sources) s.sources.set(id, p);
    }
    return s;
  }

  /** An own file about to be offered: chunks are read from `file` (an absolute path). */
  async addSource(id: FileId, file: string): Promise<void> {
    this.sources.set(toHex(id), path.resolve(file));
    this.pendingSources.add(toHex(id));
    await this.persist();
  }

  private partOf(id: Uint8Array): string {
    return path.join(this.dir, `${toHex(id)}.part`);
  }

  /** Path of the stored bytes: an own file's source or our part file. */
  pathOf(offer: FileOffer): string {
    return this.sources.get(toHex(offer.file)) ?? this.partOf(offer.file);
  }

  private handle(offer: FileOffer, write: boolean): Promise<FileHandle> {
    const key = `${toHex(offer.file)}/${write ? 'w' : 'r'}`;
    let h = this.handles.get(key);
    if (h === undefined) {
      const p = this.pathOf(offer);
      // 'a+' creates the part file without truncating it; positional writes still land at their offset on Linux only with 'r+'.
      h = write
        ? open(p, 'a')
            .then((a) => a.close())
            .then(() => open(p, 'r+'))
        : open(p, 'r');
      this.handles.set(key, h);
      h.catch(() => this.handles.delete(key));
    }
    return h;
  }

  async read(offer: FileOffer, index: number): Promise<Uint8Array> {
    const len = chunkPlainLength(offer.size, index);
    const buf = Buffer.alloc(len);
    const fh = await this.handle(offer, false);
    const { bytesRead } = await fh.read(buf, 0, len, index * FILE_CHUNK);
    if (bytesRead !== len) throw new Error(`${this.pathOf(offer)}: chunk ${index} is short (the file changed?)`);
    return new Uint8Array(buf.buffer, buf.byteOffset, len);
  }

  async store(offer: FileOffer, index: number, plaintext: Uint8Array): Promise<void> {
    const fh = await this.handle(offer, true);
    await fh.write(plaintext, 0, plaintext.length, index * FILE_CHUNK);
  }

  async next(offer: FileOffer): Promise<number> {
    let size: number;
    try {
      size = (await stat(this.partOf(offer.file))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    if (size === offer.size) return offer.size === 0 ? 1 : chunkCount(offer.size);
    return Math.min(Math.floor(size / FILE_CHUNK), chunkCount(offer.size) - 1);
  }

  /** SHA-256 of the stored file, streamed (node:crypto), against the offer. */
  async verify(offer: FileOffer): Promise<boolean> {
    await this.closeHandles(offer.file);
    const p = this.pathOf(offer);
    if ((await stat(p)).size !== offer.size) return false;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(p, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    return hash.digest('hex') === toHex(offer.hash);
  }

  async remove(file: FileId): Promise<void> {
    await this.closeHandles(file);
    if (!this.sources.has(toHex(file))) await rm(this.partOf(file), { force: true });
  }

  private async closeHandles(file: Uint8Array): Promise<void> {
    for (const key of [`${toHex(file)}/r`, `${toHex(file)}/w`]) {
      const h = this.handles.get(key);
      if (h === undefined) continue;
      this.handles.delete(key);
      await (await h.catch(() => null))?.close();
    }
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await (await h.catch(() => null))?.close();
    this.handles.clear();
  }

  loadKnown(): Promise<KnownFile[]> {
    return Promise.resolve([...this.known]);
  }

  async saveKnown(list: readonly KnownFile[]): Promise<void> {
    this.known = list;
    // Sources of files no longer listed are forgotten.
    const ids = new Set(list.map((k) => toHex(k.offer.file)));
    for (const id of ids) this.pendingSources.delete(id);
    for (const id of [...this.sources.keys()]) if (!ids.has(id) && !this.pendingSources.has(id)) this.sources.delete(id);
    await this.persist();
  }

  /** Sources registered for an offer not yet in the list (between addSource and the announce). */
  private readonly pendingSources = new Set<string>();

  private async persist(): Promise<void> {
    if (this.record === null) return;
    await this.record.write(encodeFilesRecord({ known: this.known, sources: this.sources }));
  }

  /**
   * A received file into `downloadDir` under its safe name, never over an existing file: "name",
   * "name (1).ext", ... A hard link when the directories share a file system, else a copy.
   */
  async export(offer: FileOffer, downloadDir: string): Promise<string> {
    await this.closeHandles(offer.file);
    await mkdir(downloadDir, { recursive: true });
    const safe = safeFileName(offer.name);
    const dot = safe.lastIndexOf('.');
    const [base, ext] = dot > 0 ? [safe.slice(0, dot), safe.slice(dot)] : [safe, ''];
    const src = this.pathOf(offer);
    for (let n = 0; n < 10_000; n++) {
      const target = path.join(downloadDir, n === 0 ? safe : `${base} (${n})${ext}`);
      try {
        await link(src, target);
        return target;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code !== 'EXDEV' && code !== 'EPERM') throw e;
      }
      try {
        await copyFile(src, target, constants.COPYFILE_EXCL);
        return target;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw e;
      }
    }
    throw new Error(`${downloadDir}: no free name for ${safe}`);
  }
}
