/**
 * Files in a room (docs/PROTOCOL.md 5.17): `RoomFiles`, owned by MemberDriver and OwnerDriver and
 * reached as `driver.files`. It turns a file into an offer (a room message, 5.17.1), runs one
 * `FileTransfers` per peer link over the link's files channel (5.17.3), and keeps the owner's relay
 * (5.17.5): when a member's offer is ordered the owner fetches the file as a receiver and serves
 * every member that wants it from what it has verified so far; it keeps relay copies up to
 * `historyBytes` (oldest out: `file.gone`) and stops every transfer with a removed member
 * (`file.removed`). Everything it touches is injected: the storage port (FileStore), the AEAD
 * backend, the links (through the driver), the room machine (through `announce`).
 */
import { generateAeadKey, toHex, type AeadBackend, type RandomBytes } from '../../crypto/index.ts';
import { ZeroRoomError } from '../errors.ts';
import { decodeFileControl, encodeFileControl, FILE_CONTROL_TYPES } from '../files/control.ts';
import type { FileErrorCode } from '../files/errors.ts';
import { DEFAULT_FILE_HISTORY_BYTES, evictForBudget } from '../files/history.ts';
import { asFileId, chunkCount, decodeFileOffer, encodeFileOffer, FILE_CHUNK, type FileId, type FileOffer } from '../files/offer.ts';
import { FileTransfers, type FileEvent } from '../files/transfers.ts';
import { Fields } from '../msgpack.ts';
import type { PeerLink } from '../link/peer-link.ts';
import type { DriverEvent, Logger } from './driver-ports.ts';
import type { KnownFile } from './file-records.ts';
import type { MemberId, PeerKeyHex, RoomEvent } from './types.ts';

export type { KnownFile } from './file-records.ts';

export type { FilesChannel } from '../link/files-channel.ts';

/**
 * Where files live, one implementation per platform (CLI: disk, signaling/file-store.ts; web:
 * IndexedDB). `loadKnown`/`saveKnown` keep the list of files this device takes part in across
 * restarts (it holds file keys: seal it); without them transfers resume only within one run.
 */
export interface FileStore {
  /** Plaintext chunk of a file we send or serve. */
  read(offer: FileOffer, index: number): Promise<Uint8Array>;
  /** Durable before it counts (resume). */
  store(offer: FileOffer, index: number, plaintext: Uint8Array): Promise<void>;
  /** First chunk index not yet stored (resume point), 0 if none. */
  next(offer: FileOffer): Promise<number>;
  /** SHA-256 of the stored bytes === offer.hash. */
  verify(offer: FileOffer): Promise<boolean>;
  remove(file: FileId): Promise<void>;
  loadKnown?(): Promise<KnownFile[]>;
  saveKnown?(list: readonly KnownFile[]): Promise<void>;
}

/** What a room driver gives RoomFiles for files (MemberDriverOptions.files, OwnerDriverOptions.files). */
export interface RoomFilesOptions {
  readonly store: FileStore;
  /** nodeAead (signaling/aead-node.ts) in Node, webCryptoAead in browsers. */
  readonly aead: AeadBackend;
  /** Owner: total bytes of relay copies kept (5.17.5); default 1 GiB. */
  readonly historyBytes?: number;
  /** Grant window in chunks (tests); default MAX_GRANT. */
  readonly window?: number;
}

/** The driver's side: who is who, how to reach a peer, how to put an offer in the room. */
export interface RoomFilesHost {
  readonly role: 'owner' | 'member';
  readonly random: RandomBytes;
  readonly log: Logger;
  now(): number;
  event(e: DriverEvent): void;
  selfId(): MemberId;
  /** Owner: the current member at this peer key (null: none, e.g. removed). Member: the owner. */
  memberOf(peer: PeerKeyHex): MemberId | null;
  /** Where a file offered by `from` comes from: the owner, its sender's link; a member, the owner's. */
  upstream(from: MemberId): PeerKeyHex | null;
  displayName(member: MemberId): string;
  /** Seal and send the offer as a room message (the machine's `send` with `file`); rejects with its refusal. */
  announce(offer: FileOffer): Promise<void>;
  /** A file control message to a peer (a link message, 5.17.3). */
  sendControl(peer: PeerKeyHex, bytes: Uint8Array): void;
  /** The current link to a peer (its files channel, if any, carries the chunks). */
  linkOf(peer: PeerKeyHex): PeerLink | null;
}

/** Whether a link message is a file control message (dispatch before the room decoders). */
export function isFileControl(bytes: Uint8Array): boolean {
  if (bytes.length > 256) return false;
  try {
    return FILE_CONTROL_TYPES.includes(Fields.fromBytes(bytes, 'message').str('type', 64));
  } catch {
    return false; // not a map with a type: the room decoder reports it
  }
}

/** `room.no-file` (accept/decline/cancel of a file this room never offered), `room.file` (a bad local file description). */
export class RoomFilesError extends ZeroRoomError {}

interface Known {
  offer: FileOffer;
  from: MemberId;
  idx: number;
  mine: boolean;
  accepted: boolean;
  complete: boolean;
  /** Chunks stored so far (what a relaying owner can serve). */
  have: number;
  /** Ended here (cancelled, failed, gone, removed): no more transfers. */
  ended: FileErrorCode | null;
}

const idOf = (f: Uint8Array): string => toHex(f);

export class RoomFiles {
  private readonly known = new Map<string, Known>();
  private readonly transfers = new Map<PeerKeyHex, FileTransfers>();
  /** Member id of each peer whose transfers we run (to stop them on removal). */
  private readonly peerMember = new Map<PeerKeyHex, MemberId>();
  private saving: Promise<void> = Promise.resolve();
  private readonly historyBytes: number;

  constructor(
    private readonly host: RoomFilesHost,
    private readonly opts: RoomFilesOptions,
  ) {
    this.historyBytes = opts.historyBytes ?? DEFAULT_FILE_HISTORY_BYTES;
  }

  // ---- commands (section B of the files interfaces) ----

  /** Announce a file as a room message (5.17.1); its bytes come from the FileStore. */
  async send(file: { name: string; size: number; mime: string; hash: Uint8Array; id?: FileId }): Promise<FileOffer> {
    const candidate: FileOffer = {
      file: file.id ?? asFileId(this.host.random(16)),
      name: file.name,
      size: file.size,
      mime: file.mime,
      chunk: FILE_CHUNK,
      hash: file.hash,
      fkey: generateAeadKey(this.host.random),
      ts: Math.max(0, Math.floor(this.host.now())),
    };
    let offer: FileOffer;
    try {
      offer = decodeFileOffer(encodeFileOffer(candidate)); // the same rules as a received offer
    } catch (e) {
      throw new RoomFilesError('room.file', `not a file that can be offered: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (this.known.has(idOf(offer.file))) throw new RoomFilesError('room.file', 'a file with this id was offered already');
    const k: Known = { offer, from: this.host.selfId(), idx: -1, mine: true, accepted: true, complete: true, have: 0, ended: null };
    k.have = chunkCount(offer.size);
    this.known.set(idOf(offer.file), k);
    this.persist();
    try {
      await this.host.announce(offer);
    } catch (e) {
      this.known.delete(idOf(offer.file));
      this.persist();
      throw e;
    }
    return offer;
  }

  /** Start or resume receiving (file-want). An owner hands over its relay copy once it is complete. */
  accept(file: FileId): void {
    const k = this.require(file);
    if (k.mine || k.ended !== null) return;
    k.accepted = true;
    this.persist();
    if (this.host.role === 'owner') {
      if (k.complete) this.host.event({ kind: 'file-received', offer: k.offer });
      return;
    }
    if (k.complete) return;
    void this.startReceive(k);
  }

  decline(file: FileId): void {
    const k = this.require(file);
    if (k.mine) return;
    k.accepted = false;
    this.persist();
    if (this.host.role === 'member' && k.ended === null && !k.complete) {
      k.ended = 'file.cancelled';
      const owner = this.host.upstream(k.from);
      if (owner !== null) this.transfersOf(owner).decline(k.offer);
      this.host.event({ kind: 'file-ended', file: k.offer.file, code: 'file.cancelled' });
    }
  }

  /** Stop a transfer in either direction: our own file (nobody gets more of it), or one we receive. */
  cancel(file: FileId): void {
    const k = this.require(file);
    if (k.ended !== null || (k.complete && !k.mine)) return;
    this.end(k, 'file.cancelled', !k.mine);
  }

  // ---- what the driver feeds in ----

  /** Restore the files this device took part in (driver start). */
  async restore(): Promise<void> {
    const list = (await this.opts.store.loadKnown?.()) ?? [];
    for (const r of list) {
      const k: Known = { ...r, have: r.complete ? chunkCount(r.offer.size) : 0, ended: null };
      this.known.set(idOf(r.offer.file), k);
      if (!k.complete && !k.mine && (k.accepted || this.host.role === 'owner')) void this.startReceive(k);
    }
  }

  /** A room machine event (after its step was saved): offers, removals. */
  roomEvent(event: RoomEvent): void {
    if (event.type === 'message' && event.file !== undefined) this.offered(event.file, event.from, event.idx);
    else if (event.type === 'member-left' && this.host.role === 'owner') this.removed(event.member.id);
    else if ((event.type === 'removed' || event.type === 'left') && this.host.role === 'member') this.stopAll('file.removed');
  }

  /** A new files channel opened on this peer's link: ask again for what is missing, send what is granted. */
  opened(peer: PeerKeyHex): void {
    const t = this.transfers.get(peer);
    if (t === undefined) return;
    t.resume();
    t.pump();
  }

  drained(peer: PeerKeyHex): void {
    this.transfers.get(peer)?.pump();
  }

  frame(peer: PeerKeyHex, frame: Uint8Array): void {
    const t = this.transfers.get(peer);
    if (t === undefined) return this.host.log.warn(`files: a chunk from ${peer.slice(0, 8)} with no transfer`);
    t.frame(frame).catch((e: unknown) => this.warn(peer, 'chunk refused', e));
  }

  /** A file control message from a peer's link (5.17.3). */
  control(peer: PeerKeyHex, bytes: Uint8Array): void {
    let m;
    try {
      m = decodeFileControl(bytes);
    } catch (e) {
      return this.warn(peer, 'control message refused', e);
    }
    const member = this.host.memberOf(peer);
    if (member === null) return this.host.log.warn(`files: control message from ${peer.slice(0, 8)}, not a member`);
    const k = this.known.get(idOf(m.file));
    if (m.type === 'file-want') {
      const servable = k !== undefined && k.ended === null && (k.mine || (this.host.role === 'owner' && k.from !== member));
      if (!servable) {
        const code: FileErrorCode = k === undefined || k.ended === 'file.gone' ? 'file.gone' : (k.ended ?? 'file.unknown');
        this.host.sendControl(peer, encodeFileControl({ type: 'file-cancel', file: m.file, code }));
        return;
      }
      this.transfersOf(peer).serve(k.offer);
    }
    try {
      this.transfersOf(peer).control(bytes);
    } catch (e) {
      this.warn(peer, 'control message refused', e);
    }
  }

  /** Wire a peer link's files channel events to this peer's transfers. */
  attachLink(peer: PeerKeyHex, link: PeerLink): void {
    // A listener added while the channel is open is called once for it (peer-link.ts).
    link.on('files-open', () => this.opened(peer));
    link.on('files-frame', (f) => this.frame(peer, f));
    link.on('files-drain', () => this.drained(peer));
    link.on('files-closed', () => undefined); // chunks wait for the next 'files-open'
  }

  // ---- queries ----

  /** The offer of a file this room announced (null: unknown here). */
  offerOf(file: FileId): FileOffer | null {
    return this.known.get(idOf(file))?.offer ?? null;
  }

  /** Files this device takes part in (not ended), oldest offer first. */
  list(): KnownFile[] {
    return [...this.known.values()]
      .filter((k) => k.ended === null)
      .sort((a, b) => a.idx - b.idx)
      .map(record);
  }

  // ---- inside ----

  private require(file: FileId): Known {
    const k = this.known.get(idOf(file));
    if (k === undefined) throw new RoomFilesError('room.no-file', 'no such file in this room');
    return k;
  }

  private offered(offer: FileOffer, from: MemberId, idx: number): void {
    const id = idOf(offer.file);
    const have = this.known.get(id);
    if (have !== undefined) {
      if (have.idx === -1) {
        have.idx = idx;
        this.persist();
      }
      return; // our own offer ordered, or a history copy of one we know
    }
    if (from === this.host.selfId()) return; // an own offer from before a restart without its record: nothing to serve
    const k: Known = { offer, from, idx, mine: false, accepted: false, complete: false, have: 0, ended: null };
    if (this.host.role === 'owner') this.makeRoom(offer.size);
    this.known.set(id, k);
    if (this.host.role === 'owner') void this.startReceive(k); // the relay fetches every member's file (5.17.5)
    this.persist();
    this.host.event({ kind: 'file-offered', offer, from, name: this.host.displayName(from), index: idx });
  }

  /** Owner: keep relay copies within historyBytes, oldest out (`file.gone`). */
  private makeRoom(incoming: number): void {
    const kept = [...this.known.values()]
      .filter((k) => !k.mine && k.ended === null)
      .map((k) => ({ id: idOf(k.offer.file), size: k.offer.size, idx: k.idx }));
    for (const id of evictForBudget(kept, incoming, this.historyBytes)) {
      const k = this.known.get(id)!;
      this.host.log.info(`files: ${k.offer.name} leaves the history (file.gone)`);
      this.end(k, 'file.gone', true);
    }
  }

  private async startReceive(k: Known): Promise<void> {
    const peer = this.host.upstream(k.from);
    if (peer === null) return;
    try {
      const next = await this.opts.store.next(k.offer);
      if (k.ended !== null) return;
      k.have = next;
      this.transfersOf(peer).accept(k.offer, next);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Stop a file everywhere: every transfer of it ends with `code`; `drop` deletes our copy. */
  private end(k: Known, code: FileErrorCode, drop: boolean): void {
    k.ended = code;
    for (const t of this.transfers.values()) t.cancel(k.offer, code);
    if (drop) {
      k.complete = false;
      this.opts.store.remove(k.offer.file).catch((e: unknown) => this.fail(e));
    }
    this.persist();
    this.host.event({ kind: 'file-ended', file: k.offer.file, code });
  }

  /** Owner: a member was removed: stop every transfer with it and every incomplete relay of its files. */
  private removed(member: MemberId): void {
    for (const [peer, m] of this.peerMember) {
      if (m !== member) continue;
      const t = this.transfers.get(peer)!;
      for (const k of this.known.values()) t.cancel(k.offer, 'file.removed');
      this.transfers.delete(peer);
      this.peerMember.delete(peer);
    }
    for (const k of this.known.values()) if (k.from === member && !k.complete && k.ended === null) this.end(k, 'file.removed', true);
  }

  /** Member: we are out of the room; nothing more moves. */
  private stopAll(code: FileErrorCode): void {
    for (const k of this.known.values()) {
      if (k.ended !== null || (k.complete && !k.mine)) continue;
      k.ended = code;
      for (const t of this.transfers.values()) t.cancel(k.offer, code);
      if (!k.mine) this.host.event({ kind: 'file-ended', file: k.offer.file, code });
    }
    this.persist();
  }

  private transfersOf(peer: PeerKeyHex): FileTransfers {
    let t = this.transfers.get(peer);
    if (t !== undefined) return t;
    const member = this.host.memberOf(peer);
    if (member !== null) this.peerMember.set(peer, member);
    t = new FileTransfers(
      {
        aead: this.opts.aead,
        sendFrame: (frame) => this.sendFrame(peer, frame),
        channelBuffered: () => this.host.linkOf(peer)?.files?.bufferedAmount ?? Number.POSITIVE_INFINITY,
        sendControl: (bytes) => this.host.sendControl(peer, bytes),
        read: (offer, index) => this.opts.store.read(offer, index),
        available: (offer) => this.known.get(idOf(offer.file))?.have ?? 0,
        // A chunk that was being opened when its file ended is not written after the copy was removed.
        store: async (offer, index, plain) => {
          if (this.known.get(idOf(offer.file))?.ended == null) await this.opts.store.store(offer, index, plain);
        },
        verify: (offer) => this.opts.store.verify(offer),
        event: (e) => this.transferEvent(peer, e),
        fail: (e) => this.fail(e),
      },
      this.opts.window,
    );
    this.transfers.set(peer, t);
    return t;
  }

  private sendFrame(peer: PeerKeyHex, frame: Uint8Array): void {
    const ch = this.host.linkOf(peer)?.files ?? null;
    if (ch === null) return; // the channel went away after the check: the receiver asks again on the next one
    try {
      ch.send(frame);
    } catch (e) {
      if (e instanceof ZeroRoomError && e.code === 'link.closed') return;
      throw e;
    }
    // Chunk header: kind (1) | fileId (16) | index u32 (5.17.2).
    const k = this.known.get(toHex(frame.subarray(1, 17)));
    if (k?.mine === true) {
      const index = new DataView(frame.buffer, frame.byteOffset + 17, 4).getUint32(0);
      this.host.event({ kind: 'file-progress', file: k.offer.file, direction: 'out', done: index + 1, count: chunkCount(k.offer.size) });
    }
  }

  private transferEvent(peer: PeerKeyHex, e: FileEvent): void {
    const k = this.known.get(idOf(e.offer.file));
    if (k === undefined) return;
    switch (e.kind) {
      case 'progress':
        k.have = e.done;
        if (this.host.role === 'member' || k.accepted)
          this.host.event({ kind: 'file-progress', file: k.offer.file, direction: 'in', done: e.done, count: e.count });
        if (this.host.role === 'owner') this.pumpOthers(peer);
        return;
      case 'received':
        k.complete = true;
        k.have = chunkCount(k.offer.size);
        this.persist();
        if (this.host.role === 'member' || k.accepted) this.host.event({ kind: 'file-received', offer: k.offer });
        if (this.host.role === 'owner') this.pumpOthers(peer);
        return;
      case 'failed':
        // The sender cancelled, or the file did not verify: nobody gets it through us.
        if (k.ended === null) this.end(k, e.code, true);
        return;
      case 'sent-cancelled':
        if (k.mine && this.host.role === 'member')
          this.host.event({ kind: 'file-ended', file: k.offer.file, code: e.code ?? 'file.cancelled' });
        return;
      case 'refused':
        this.host.log.warn(`files: ${e.error.code} on ${k.offer.name} from ${peer.slice(0, 8)}; asked again`);
        return;
    }
  }

  private pumpOthers(from: PeerKeyHex): void {
    for (const [peer, t] of this.transfers) if (peer !== from) t.pump();
  }

  private persist(): void {
    const save = this.opts.store.saveKnown;
    if (save === undefined) return;
    const list = this.list();
    this.saving = this.saving.then(() => save.call(this.opts.store, list)).catch((e: unknown) => this.fail(e));
  }

  /** Resolves once the known-files list written so far is stored (tests, shutdown). */
  flushed(): Promise<void> {
    return this.saving;
  }

  private warn(peer: PeerKeyHex, what: string, e: unknown): void {
    const code = e instanceof ZeroRoomError ? `${e.code}: ` : '';
    this.host.log.warn(`files: ${what} (${peer.slice(0, 8)}): ${code}${e instanceof Error ? e.message : String(e)}`);
  }

  private fail(e: unknown): void {
    this.host.log.error(`files: ${e instanceof Error ? e.message : String(e)}`);
    this.host.event({ kind: 'error', error: e });
  }
}

function record(k: Known): KnownFile {
  return { offer: k.offer, from: k.from, idx: k.idx, mine: k.mine, accepted: k.accepted, complete: k.complete };
}
