/**
 * Files for the in-memory driver world (driver-harness.ts): a fake files channel on every FakeLink
 * (PROTOCOL 5.17.3: open while the link's session is open, gone with it, frames in order), a hook
 * that sees every frame (to cut, drop, tamper or reorder), and a memory FileStore per party whose
 * known-files list goes through the real record codec (a restart reads bytes).
 */
import { sha256, toHex } from '../../crypto/index.ts';
import { Emitter } from '../../protocol/link/emitter.ts';
import { LinkClosedError, type LinkState } from '../../protocol/link/peer-link.ts';
import { chunkCount, chunkPlainLength, FILE_CHUNK, type FileId, type FileOffer } from '../../protocol/files/index.ts';
import type { FileStore, FilesChannel, KnownFile } from '../../protocol/room/file-driver.ts';
import { decodeKnownFiles, encodeKnownFiles } from '../../protocol/room/file-records.ts';
import { MemberDriver } from '../../protocol/room/member-driver.ts';
import { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import type { MemberState, OwnerState } from '../../protocol/room/types.ts';
import type { RoomIdentity } from '../../protocol/room/records.ts';
import { nodeAead } from '../../signaling/aead-node.ts';
import { APP_URL, FakeLink, SERVER, World, type MemoryStore, type Recorder } from './driver-harness.ts';

interface FilesEvents {
  'files-open': () => void;
  'files-frame': (frame: Uint8Array) => void;
  'files-drain': () => void;
  'files-closed': () => void;
}

const isOpen = (s: LinkState): boolean => s === 'direct' || s === 'relayed';

/** Sees every frame on its way: return it (changed or not), or null to lose it. */
export type FrameHook = (frame: Uint8Array, from: FakeLink, to: FakeLink) => Uint8Array | null;
let hook: FrameHook | null = null;
export function onFrames(h: FrameHook | null): void {
  hook = h;
}
/** Frames handed to each link's files channel, by the sending link. */
export const framesSent = new WeakMap<FakeLink, number>();

const emitters = new WeakMap<FakeLink, Emitter<FilesEvents>>();
function emitterOf(l: FakeLink): Emitter<FilesEvents> {
  let e = emitters.get(l);
  if (e === undefined) emitters.set(l, (e = new Emitter<FilesEvents>()));
  return e;
}

function channelOf(l: FakeLink): FilesChannel | null {
  if (!isOpen(l.state) || l.peer === null || l.dead) return null;
  return {
    bufferedAmount: 0,
    send(frame: Uint8Array): void {
      const to = l.peer;
      if (to === null || !isOpen(l.state)) throw new LinkClosedError();
      framesSent.set(l, (framesSent.get(l) ?? 0) + 1);
      const out = hook === null ? frame.slice() : hook(frame.slice(), l, to);
      if (out === null) return;
      netOf(l).later(() => {
        // A frame in flight when the session went is lost with it (like an SCTP association).
        if (l.peer === to && isOpen(to.state) && !to.dead) emitterOf(to).emit('files-frame', out);
      });
    },
  };
}

function netOf(l: FakeLink): { later(f: () => void): void } {
  return (l as unknown as { net: { later(f: () => void): void } }).net;
}

let installed = false;
/** Give FakeLink the files side of the link interface (once per test process). */
export function installFakeFilesChannel(): void {
  if (installed) return;
  installed = true;
  const proto = FakeLink.prototype as unknown as {
    on: (ev: string, f: (...a: unknown[]) => void) => () => void;
    setState: (s: LinkState) => void;
  };
  const on = proto.on;
  proto.on = function (this: FakeLink, ev: string, f: (...a: unknown[]) => void) {
    withFiles(this);
    if (!ev.startsWith('files-')) return on.call(this, ev, f);
    // Like peer-link.ts: a 'files-open' listener added while the channel is open is called once for it.
    if (ev === 'files-open' && channelOf(this) !== null) netOf(this).later(() => channelOf(this) !== null && f());
    return emitterOf(this).on(ev as keyof FilesEvents, f as never);
  };
  const setState = proto.setState;
  proto.setState = function (this: FakeLink, s: LinkState) {
    withFiles(this);
    const was = isOpen(this.state);
    setState.call(this, s);
    const now = isOpen(this.state);
    if (was !== now) netOf(this).later(() => emitterOf(this).emit(now ? 'files-open' : 'files-closed'));
  };
}

/** FakeLink's own `files` (always null) replaced by this link's fake channel. */
const withFilesDone = new WeakSet<FakeLink>();
function withFiles(l: FakeLink): void {
  if (withFilesDone.has(l)) return;
  withFilesDone.add(l);
  Object.defineProperty(l, 'files', { get: () => channelOf(l), configurable: true });
}

/** Files in memory: sources for own files, stored chunks for received ones, the known-files record as bytes. */
export class MemoryFileStore implements FileStore {
  readonly sources = new Map<string, Uint8Array>();
  readonly chunks = new Map<string, Uint8Array[]>();
  known: Uint8Array | null = null;
  reads = 0;

  /** A file of ours to send: its bytes, by id. */
  add(id: FileId, bytes: Uint8Array): void {
    this.sources.set(toHex(id), bytes);
  }

  read(offer: FileOffer, index: number): Promise<Uint8Array> {
    this.reads++;
    const src = this.sources.get(toHex(offer.file));
    if (src !== undefined)
      return Promise.resolve(src.subarray(index * FILE_CHUNK, index * FILE_CHUNK + chunkPlainLength(offer.size, index)));
    const c = this.chunks.get(toHex(offer.file))?.[index];
    return c === undefined ? Promise.reject(new Error(`chunk ${index} not here`)) : Promise.resolve(c);
  }

  store(offer: FileOffer, index: number, plain: Uint8Array): Promise<void> {
    const id = toHex(offer.file);
    if (!this.chunks.has(id)) this.chunks.set(id, []);
    this.chunks.get(id)![index] = plain.slice();
    return Promise.resolve();
  }

  next(offer: FileOffer): Promise<number> {
    const c = this.chunks.get(toHex(offer.file)) ?? [];
    let i = 0;
    while (i < chunkCount(offer.size) && c[i] !== undefined) i++;
    return Promise.resolve(i);
  }

  /** The stored file (received or relayed). */
  bytesOf(offer: FileOffer): Uint8Array {
    const all = new Uint8Array(offer.size);
    (this.chunks.get(toHex(offer.file)) ?? []).forEach((c, i) => all.set(c, i * FILE_CHUNK));
    return all;
  }

  verify(offer: FileOffer): Promise<boolean> {
    return Promise.resolve(toHex(sha256(this.bytesOf(offer))) === toHex(offer.hash));
  }

  remove(file: FileId): Promise<void> {
    this.chunks.delete(toHex(file));
    return Promise.resolve();
  }

  loadKnown(): Promise<KnownFile[]> {
    return Promise.resolve(this.known === null ? [] : decodeKnownFiles(this.known));
  }

  saveKnown(list: readonly KnownFile[]): Promise<void> {
    this.known = encodeKnownFiles(list);
    return Promise.resolve();
  }
}

/** The driver world with files on every driver: one MemoryFileStore per identity (kept across restarts). */
export class FilesWorld extends World {
  readonly fileStores = new Map<string, MemoryFileStore>();
  historyBytes: number | undefined;
  /** Grant window in chunks (small: transfers are mid-way for longer). */
  window = 2;

  constructor() {
    super();
    installFakeFilesChannel();
  }

  storeOf(identity: RoomIdentity): MemoryFileStore {
    const hex = toHex(identity.peer.publicKey);
    let s = this.fileStores.get(hex);
    if (s === undefined) this.fileStores.set(hex, (s = new MemoryFileStore()));
    return s;
  }

  override ownerDriver(state: OwnerState, store: MemoryStore<OwnerState>, identity: RoomIdentity, rec: Recorder): OwnerDriver {
    const d = new OwnerDriver(state, store, this.env(rec), {
      identity,
      invites: { appUrl: APP_URL, server: SERVER },
      link: this.net.ownerPort,
      files: {
        store: this.storeOf(identity),
        aead: nodeAead,
        window: this.window,
        ...(this.historyBytes !== undefined ? { historyBytes: this.historyBytes } : {}),
      },
    });
    this.drivers.push(d);
    return d;
  }

  override memberDriver(state: MemberState, store: MemoryStore<MemberState>, identity: RoomIdentity, rec: Recorder): MemberDriver {
    const d = new MemberDriver(state, store, this.env(rec), {
      identity,
      link: this.net.memberPort(identity.peer.publicKey),
      files: { store: this.storeOf(identity), aead: nodeAead, window: this.window },
    });
    this.drivers.push(d);
    return d;
  }
}
