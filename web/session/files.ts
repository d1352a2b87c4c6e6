/**
 * Files of one room as the views see them (docs/PROTOCOL.md 5.17): a thin layer over the room
 * driver's file API (`driver.files`, protocol/room/file-driver.ts) and the sealed chunk store
 * (web/storage/file-store.ts). It decides what the web app decides and nothing more:
 * - what to accept: pictures (by the advisory mime) up to the size limit on their own, every other
 *   file on a click; anything above the limit is declined and shown as too large (`file.too-large`);
 * - how to show a complete file: sniffed by its first bytes (web/files/sniff.ts, never by mime or
 *   name); PNG/JPEG/GIF/WebP get a thumbnail drawn on this device (createImageBitmap + canvas, a blob:
 *   URL of our own PNG), everything else (SVG and HTML included) is only ever a download of type
 *   application/octet-stream under its safeFileName;
 * - progress in words: bytes, rate over the last seconds, time left.
 */
import { equalBytes, fromHex, systemRandom, toHex } from '../../crypto/index.ts';
import { chunkCount, FILE_CHUNK, FILE_ID_LENGTH, safeFileName, type FileId, type FileOffer } from '../../protocol/files/index.ts';
import type { DriverEvent } from '../../protocol/room/driver-ports.ts';
import type { KnownFile } from '../../protocol/room/file-records.ts';
import { sniffImage, SNIFF_BYTES, type ImageKind } from '../files/sniff.ts';
import { checkSendSize, type IdbFileStore } from '../storage/file-store.ts';
import type { FileState, FileView, MessageView } from './types.ts';

/** The room driver's file API (files-api.md B). */
export interface FilesApi {
  send(file: { name: string; size: number; mime: string; hash: Uint8Array; id?: FileId }): Promise<FileOffer>;
  accept(file: FileId): void;
  decline(file: FileId): void;
  cancel(file: FileId): void;
}

/** The driver's file events. */
export type FileDriverEvent = Extract<DriverEvent, { kind: 'file-offered' | 'file-progress' | 'file-received' | 'file-ended' }>;

/** Offers accepted without a click: pictures (the advisory mime only triggers the download; sniffing decides the display). */
const AUTO_ACCEPT_MIME: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const RATE_WINDOW_MS = 5_000;
const THUMB_MAX = 320;
const PROGRESS_EVERY_MS = 200;

interface Entry {
  readonly id: string;
  readonly file: FileId;
  offer: FileOffer | null;
  readonly name: string;
  readonly size: number;
  readonly own: boolean;
  from: string;
  senderName: string;
  idx: number | null;
  readonly at: number;
  state: FileState;
  /** Bytes done (stored chunks in, sent chunks out, hashed chunks while preparing). */
  done: number;
  samples: Array<{ t: number; bytes: number }>;
  code: string | null;
  thumb: string | null;
  download: boolean;
  /** A thumbnail or sniff is under way or done (once per entry). */
  shown: boolean;
}

export interface FilesModelDeps {
  readonly store: () => Promise<IdbFileStore>;
  /** The per-file limit in bytes (settings). */
  readonly limit: () => number;
  readonly changed: () => void;
  /** A problem the user should see (not tied to a button press). */
  readonly report: (text: string) => void;
  readonly selfId: () => string;
  /** The room driver's `files` (read at each use: the driver is made after this model). */
  readonly api: () => FilesApi | null;
  readonly now?: () => number;
}

const bytesDone = (chunks: number, size: number): number => Math.min(size, chunks * FILE_CHUNK);

/** A thumbnail drawn on this device: decode the picture, draw it scaled on a canvas, our own PNG as a blob: URL. */
export async function makeThumbnail(blob: Blob): Promise<string> {
  const bitmap = await createImageBitmap(blob);
  try {
    const scale = Math.min(1, THUMB_MAX / Math.max(bitmap.width, bitmap.height, 1));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const g = canvas.getContext('2d');
    if (g === null) throw new Error('no 2d canvas');
    g.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const png = await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b === null ? reject(new Error('canvas.toBlob gave nothing')) : resolve(b)), 'image/png'),
    );
    return URL.createObjectURL(png);
  } finally {
    bitmap.close();
  }
}

export class FilesModel {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private lastShown = -Infinity;
  /** The driver's file API (null: this room's driver runs without files). */
  private get api(): FilesApi | null {
    return this.deps.api();
  }

  constructor(private readonly deps: FilesModelDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  private apiOrThrow(): FilesApi {
    if (this.api === null) throw new Error('files are not available in this room yet');
    return this.api;
  }

  /**
   * Send a picked, dropped or pasted file: refused above the limit before anything is read
   * (`file.too-large`); then one pass hashes it and copies it into sealed records (its card shows
   * "getting ready" meanwhile), then the driver announces the offer.
   */
  async send(blob: Blob, label: string, mime: string): Promise<void> {
    const api = this.apiOrThrow();
    const limit = this.deps.limit();
    checkSendSize(blob.size, limit);
    const file = systemRandom(FILE_ID_LENGTH) as FileId;
    const e = this.add({ file, name: label, size: blob.size, own: true, from: this.deps.selfId(), senderName: '', idx: null });
    e.state = 'preparing';
    this.deps.changed();
    const store = await this.deps.store();
    try {
      const hash = await store.prepare(blob, file, limit, (done) => this.progress(e, done));
      e.samples = [];
      e.done = 0;
      e.offer = await api.send({ name: label, size: blob.size, mime, hash, id: file });
      if (e.state === 'preparing') e.state = 'waiting';
    } catch (err) {
      this.entries.delete(e.id);
      await store.remove(file);
      this.deps.changed();
      throw err;
    }
    this.deps.changed();
    void this.show(e, blob);
  }

  private add(p: Pick<Entry, 'file' | 'name' | 'size' | 'own' | 'from' | 'senderName' | 'idx'>): Entry {
    const id = toHex(p.file);
    const e: Entry = {
      ...p,
      id,
      name: safeFileName(p.name),
      offer: null,
      at: Date.now(),
      state: 'offered',
      done: 0,
      samples: [],
      code: null,
      thumb: null,
      download: false,
      shown: false,
    };
    this.entries.set(id, e);
    return e;
  }

  /** An offer we see in the room (live or from history on reload). */
  async offered(offer: FileOffer, from: string, senderName: string, idx: number): Promise<void> {
    const id = toHex(offer.file);
    const known = this.entries.get(id);
    if (known !== undefined) {
      known.offer ??= offer;
      known.idx = idx;
      known.senderName = senderName;
      this.deps.changed();
      return;
    }
    const own = from === this.deps.selfId();
    const e = this.add({ file: offer.file, name: offer.name, size: offer.size, own, from, senderName, idx });
    e.offer = offer;
    this.deps.changed();
    const store = await this.deps.store();
    const next = await store.next(offer);
    const count = chunkCount(offer.size);
    if (own) {
      // Ours, from an earlier page: served from the sealed copy if it is all there.
      e.state = next === count ? 'sent' : 'failed';
      if (next !== count) e.code = 'file.gone';
      this.deps.changed();
      return;
    }
    if (next === count) {
      e.state = 'done';
      e.done = offer.size;
      this.deps.changed();
      void this.show(e);
      return;
    }
    if (offer.size > this.deps.limit()) {
      e.state = 'too-large';
      e.code = 'file.too-large';
      this.api?.decline(offer.file);
      this.deps.changed();
      return;
    }
    if (next > 0 || AUTO_ACCEPT_MIME.has(offer.mime)) {
      // Started before a reload (resume from `next`), or a picture: fetch without a click.
      e.done = bytesDone(next, offer.size);
      this.accept(id);
    }
  }

  /**
   * After a reload: the files the driver remembers (protocol/room/file-records.ts), as they stand.
   * The driver resumes accepted transfers itself; offers not accepted yet wait for a click (pictures
   * under the limit are fetched, as when they arrived).
   */
  restore(list: readonly KnownFile[], nameOf: (member: string) => string): void {
    for (const k of list) {
      if (this.entries.has(toHex(k.offer.file))) continue;
      const e = this.add({
        file: k.offer.file,
        name: k.offer.name,
        size: k.offer.size,
        own: k.mine,
        from: k.from,
        senderName: nameOf(k.from),
        idx: k.idx >= 0 ? k.idx : null,
      });
      e.offer = k.offer;
      if (k.mine) {
        e.state = 'sent';
        void this.show(e);
      } else if (k.complete && k.accepted) {
        e.state = 'done';
        e.done = e.size;
        void this.show(e);
      } else if (k.accepted) {
        e.state = 'receiving';
      } else if (k.offer.size > this.deps.limit()) {
        e.state = 'too-large';
        e.code = 'file.too-large';
      } else if (AUTO_ACCEPT_MIME.has(k.offer.mime)) {
        this.accept(e.id);
      }
    }
    this.deps.changed();
  }

  /** Our own offer got its place in the room (its message event). */
  ordered(file: Uint8Array, idx: number): void {
    const e = this.entries.get(toHex(file));
    if (e === undefined || e.idx === idx) return;
    e.idx = idx;
    this.deps.changed();
  }

  /** Driver events about files; false for anything else. */
  onEvent(e: DriverEvent): boolean {
    switch (e.kind) {
      case 'file-offered':
        void this.offered(e.offer, e.from, e.name, e.index).catch((err: unknown) => this.fail(err));
        return true;
      case 'file-progress': {
        const x = this.entries.get(toHex(e.file));
        if (x === undefined) return true;
        if (x.state !== 'done' && x.state !== 'sent') {
          x.state = e.direction === 'in' ? 'receiving' : 'sending';
          this.progress(x, e.done);
          if (e.direction === 'out' && e.done >= e.count) x.state = 'sent';
        }
        return true;
      }
      case 'file-received': {
        const x = this.entries.get(toHex(e.offer.file));
        if (x === undefined) return true;
        x.state = 'done';
        x.done = x.size;
        x.samples = [];
        this.deps.changed();
        void this.show(x);
        return true;
      }
      case 'file-ended': {
        const x = this.entries.get(toHex(e.file));
        if (x === undefined) return true;
        // Finished, or ended here already (declined, too large, cancelled by us): keep what it says.
        if (x.state === 'done' || x.state === 'sent' || x.state === 'declined' || x.state === 'too-large' || x.state === 'cancelled')
          return true;
        x.code = e.code;
        x.state = e.code === 'file.cancelled' ? 'cancelled' : 'failed';
        x.samples = [];
        this.deps.changed();
        return true;
      }
      default:
        return false;
    }
  }

  private progress(x: Entry, chunks: number): void {
    x.done = bytesDone(chunks, x.size);
    const t = this.now();
    x.samples.push({ t, bytes: x.done });
    while (x.samples.length > 2 && t - x.samples[0]!.t > RATE_WINDOW_MS) x.samples.shift();
    // Progress comes per chunk (up to ~1,000/s): re-render a few times a second, not per chunk.
    if (t - this.lastShown >= PROGRESS_EVERY_MS || x.samples.length === 1) {
      this.lastShown = t;
      this.deps.changed();
    }
  }

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (e === undefined) throw new Error(`no file ${id}`);
    return e;
  }

  accept(id: string): void {
    const e = this.entry(id);
    if (e.offer !== null && e.offer.size > this.deps.limit()) {
      e.state = 'too-large';
      e.code = 'file.too-large';
      this.deps.changed();
      return;
    }
    const api = this.apiOrThrow();
    e.state = 'receiving';
    e.samples = [];
    // Before the call: an owner's relay copy may be complete already and reported at once (file-received).
    api.accept(e.file);
    this.deps.changed();
  }

  decline(id: string): void {
    const e = this.entry(id);
    const api = this.apiOrThrow();
    e.state = 'declined';
    api.decline(e.file);
    this.deps.changed();
  }

  cancel(id: string): void {
    const e = this.entry(id);
    const api = this.apiOrThrow();
    e.state = 'cancelled';
    e.code = 'file.cancelled';
    api.cancel(e.file);
    e.samples = [];
    this.deps.changed();
  }

  /** A complete file as a download: a blob: URL of type application/octet-stream and its safe name. */
  async download(id: string): Promise<{ url: string; name: string }> {
    const e = this.entry(id);
    if (e.offer === null) throw new Error('file not offered yet');
    const blob = await (await this.deps.store()).blob(e.offer, Math.max(this.deps.limit(), e.own ? e.size : 0));
    return { url: URL.createObjectURL(blob), name: e.name };
  }

  /** Sniff a complete file's first bytes: a picture gets a thumbnail, anything else is a download. */
  private async show(e: Entry, source?: Blob): Promise<void> {
    if (e.shown || e.offer === null) return;
    e.shown = true;
    try {
      const store = await this.deps.store();
      const head =
        source !== undefined ? new Uint8Array(await source.slice(0, SNIFF_BYTES).arrayBuffer()) : await store.head(e.offer, SNIFF_BYTES);
      const kind: ImageKind | null = sniffImage(head);
      if (kind === null) {
        e.download = true;
        return;
      }
      const blob = source ?? (await store.blob(e.offer, Math.max(this.deps.limit(), e.own ? e.size : 0)));
      e.thumb = await makeThumbnail(blob);
    } catch (err) {
      // Not decodable as the picture it claimed to be: offer it as a download.
      console.warn(`file ${e.id.slice(0, 8)}: no thumbnail: ${err instanceof Error ? err.name : String(err)}`);
      e.download = true;
    } finally {
      this.deps.changed();
    }
  }

  private fail(err: unknown): void {
    console.error('files:', err);
    this.deps.report(err instanceof Error ? err.message : String(err));
  }

  /** The view of file `id` (hex), if known. */
  view(id: string): FileView | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    const first = e.samples[0];
    const last = e.samples[e.samples.length - 1];
    const active = e.state === 'preparing' || e.state === 'sending' || e.state === 'receiving';
    const rate =
      active && first !== undefined && last !== undefined && last.t - first.t > 0
        ? ((last.bytes - first.bytes) * 1000) / (last.t - first.t)
        : null;
    const total = e.size;
    return {
      id: e.id,
      name: e.name,
      size: e.size,
      own: e.own,
      state: e.state,
      done: e.done,
      rate,
      secondsLeft: rate !== null && rate > 0 ? (total - e.done) / rate : null,
      code: e.code,
      thumb: e.thumb,
      download: e.download,
    };
  }

  /**
   * Every file as a message line: at its offer's room index once it is in the room, else (our own,
   * being prepared or announced) with `idx` null and pending.
   */
  messages(selfName: string): MessageView[] {
    const out: MessageView[] = [];
    for (const e of this.entries.values()) {
      const file = this.view(e.id);
      if (file === undefined) continue;
      out.push({
        key: `file/${e.id}`,
        senderId: e.from,
        senderName: e.own ? selfName : e.senderName,
        text: '',
        at: e.at,
        pending: e.idx === null,
        system: false,
        own: e.own,
        delivery: null,
        idx: e.idx,
        file,
      });
    }
    return out;
  }

  has(file: Uint8Array): boolean {
    const e = this.entries.get(toHex(file));
    return e !== undefined && equalBytes(e.file, file);
  }

  /** Let go of the thumbnails (room closed or forgotten). */
  dispose(): void {
    for (const e of this.entries.values()) if (e.thumb !== null) URL.revokeObjectURL(e.thumb);
    this.entries.clear();
  }
}

/** A file id from its hex (views keep ids as hex). */
export function fileIdOf(hex: string): FileId {
  return fromHex(hex, FILE_ID_LENGTH) as FileId;
}
