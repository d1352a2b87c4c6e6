/**
 * Inner frames of the peer link (docs/PROTOCOL.md section 4, "Inner frames"), chunking, link-level
 * acks and de-duplication. Message ids survive reconnects (a new session has new keys, cookies and
 * CSNs but the same ids), so nothing queued on a link is lost and nothing is delivered twice.
 *
 *   DATA   0x01 | msgId u32 | index u32 | count u32 | payload      (one chunk of message msgId)
 *   ACK    0x02 | msgId u32                                         (every id <= msgId arrived)
 *   RESUME 0x03 | nextId u32                                        (first frame of a session)
 *   CLOSE  0x04 | reason u16                                        (application closed the link)
 *
 * No I/O and no clock: the peer link driver decides when frames are sealed and sent.
 */
import { ZeroRoomError } from '../errors.ts';
import { MAC_LEN, MAX_FRAME, NONCE_LEN, PORTABLE_FRAME } from './frame.ts';

export const KIND_DATA = 0x01;
export const KIND_ACK = 0x02;
export const KIND_RESUME = 0x03;
export const KIND_CLOSE = 0x04;
const DATA_HEADER = 13;
/** Chunk payload so that a sealed DATA frame is exactly `frameSize` bytes. */
export const chunkPayloadFor = (frameSize: number): number => frameSize - NONCE_LEN - MAC_LEN - DATA_HEADER;
/** Chunk payload of a portable 16384-byte frame (16331). */
export const CHUNK_PAYLOAD = chunkPayloadFor(PORTABLE_FRAME);
/** Largest chunk payload a receiver accepts (frames up to MAX_FRAME). */
export const MAX_CHUNK_PAYLOAD = chunkPayloadFor(MAX_FRAME);
/**
 * Largest message the link carries, and so the most one partial message can hold in reassembly
 * (docs/PROTOCOL.md 4.5). Room messages are at most 1 MiB (protocol/room/codec.ts
 * MAX_LINK_MESSAGE); bulk data (files) gets its own path.
 */
export const MAX_MESSAGE = 1024 * 1024;
/** Most chunks a message of MAX_MESSAGE bytes can need (at the smallest chunk size). */
export const MAX_CHUNKS = Math.ceil(MAX_MESSAGE / CHUNK_PAYLOAD);
/** Ack after this many complete messages or bytes, whichever comes first (driver also acks when idle). */
export const ACK_EVERY_MESSAGES = 32;
export const ACK_EVERY_BYTES = 256 * 1024;

export class LinkProtocolError extends ZeroRoomError {
  constructor(message: string) {
    super('link.protocol', message);
  }
}

/** A message above MAX_MESSAGE: refused by send(), or by the receiver before it stores the chunk. */
export class LinkTooLargeError extends ZeroRoomError {
  constructor(message: string) {
    super('link.too-large', message);
  }
}

export type Inner =
  | { readonly kind: 'data'; readonly msgId: number; readonly index: number; readonly count: number; readonly payload: Uint8Array }
  | { readonly kind: 'ack'; readonly msgId: number }
  | { readonly kind: 'resume'; readonly nextId: number }
  | { readonly kind: 'close'; readonly reason: number };

export function encodeInner(f: Inner): Uint8Array {
  switch (f.kind) {
    case 'data': {
      const out = new Uint8Array(DATA_HEADER + f.payload.length);
      const v = new DataView(out.buffer);
      out[0] = KIND_DATA;
      v.setUint32(1, f.msgId);
      v.setUint32(5, f.index);
      v.setUint32(9, f.count);
      out.set(f.payload, DATA_HEADER);
      return out;
    }
    case 'ack':
    case 'resume': {
      const out = new Uint8Array(5);
      out[0] = f.kind === 'ack' ? KIND_ACK : KIND_RESUME;
      new DataView(out.buffer).setUint32(1, f.kind === 'ack' ? f.msgId : f.nextId);
      return out;
    }
    case 'close': {
      const out = new Uint8Array(3);
      out[0] = KIND_CLOSE;
      new DataView(out.buffer).setUint16(1, f.reason);
      return out;
    }
  }
}

export function decodeInner(b: Uint8Array): Inner {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const exact = (n: number, what: string): void => {
    if (b.length !== n) throw new LinkProtocolError(`${what} frame must be ${n} bytes, got ${b.length}`);
  };
  switch (b[0]) {
    case KIND_DATA: {
      if (b.length < DATA_HEADER + 1) throw new LinkProtocolError('DATA frame too short');
      const count = v.getUint32(9);
      const index = v.getUint32(5);
      if (count < 1) throw new LinkProtocolError('DATA chunk count 0');
      if (count > MAX_CHUNKS)
        throw new LinkTooLargeError(`DATA chunk count ${count} above ${MAX_CHUNKS}: message above ${MAX_MESSAGE} bytes`);
      if (index >= count) throw new LinkProtocolError('DATA chunk index >= count');
      if (b.length - DATA_HEADER > MAX_CHUNK_PAYLOAD) throw new LinkProtocolError('DATA chunk too large');
      return { kind: 'data', msgId: v.getUint32(1), index, count, payload: b.subarray(DATA_HEADER) };
    }
    case KIND_ACK:
      exact(5, 'ACK');
      return { kind: 'ack', msgId: v.getUint32(1) };
    case KIND_RESUME:
      exact(5, 'RESUME');
      return { kind: 'resume', nextId: v.getUint32(1) };
    case KIND_CLOSE:
      exact(3, 'CLOSE');
      return { kind: 'close', reason: v.getUint16(1) };
    default:
      throw new LinkProtocolError(`unknown inner frame kind ${String(b[0])}`);
  }
}

/** Split one message into DATA frames of at most `chunk` payload bytes (an empty message: one empty chunk). */
export function chunkMessage(msgId: number, bytes: Uint8Array, chunk: number = CHUNK_PAYLOAD): Inner[] {
  if (chunk < CHUNK_PAYLOAD || chunk > MAX_CHUNK_PAYLOAD)
    throw new RangeError(`chunk size ${chunk} outside [${CHUNK_PAYLOAD}, ${MAX_CHUNK_PAYLOAD}]`);
  const count = Math.max(1, Math.ceil(bytes.length / chunk));
  const out: Inner[] = [];
  for (let i = 0; i < count; i++) {
    out.push({ kind: 'data', msgId, index: i, count, payload: bytes.subarray(i * chunk, (i + 1) * chunk) });
  }
  return out;
}

/**
 * Sender side: ids and the messages the peer has not acknowledged yet.
 *
 * Each message also gets a ticket (1, 2, 3, ... in `add` order) that, unlike its wire id, is never
 * renumbered (see `resume`): callers name "their" message by ticket, and `ackedTicket` says how far
 * the peer has confirmed receipt.
 */
export class Outbox {
  private nextId = 1;
  private readonly unacked: { id: number; ticket: number; bytes: Uint8Array }[] = [];
  private tickets = 0;
  private ackedTickets = 0;
  private unackedBytes = 0;
  /** False until the first RESUME: this side of the link is fresh (a new process, a restart). */
  private resumed = false;

  /** `adoptPeerNumbering`: a fresh side continues the ids its peer expects (PeerLink turns it on). */
  constructor(private readonly opts: { adoptPeerNumbering?: boolean } = {}) {}

  /** Register a message; returns its DATA frames (chunks of `chunk` bytes) to send now. */
  add(bytes: Uint8Array, chunk: number = CHUNK_PAYLOAD): Inner[] {
    if (bytes.length > MAX_MESSAGE)
      throw new LinkTooLargeError(`message of ${bytes.length} bytes, the link carries at most ${MAX_MESSAGE}`);
    const id = this.nextId++;
    this.unacked.push({ id, ticket: ++this.tickets, bytes });
    this.unackedBytes += bytes.length;
    return chunkMessage(id, bytes, chunk);
  }

  ack(msgId: number): void {
    if (msgId >= this.nextId) throw new LinkProtocolError(`ack for message ${msgId} never sent`);
    while (this.unacked.length > 0 && (this.unacked[0]?.id ?? Infinity) <= msgId) {
      const m = this.unacked.shift();
      this.unackedBytes -= m?.bytes.length ?? 0;
      if (m !== undefined) this.ackedTickets = m.ticket;
    }
  }

  /** Ticket of the last message `add` registered (0 before the first). */
  get lastTicket(): number {
    return this.tickets;
  }

  /** Every message with a ticket up to this one was acknowledged by the peer (0: none yet). */
  get ackedTicket(): number {
    return this.ackedTickets;
  }

  /** New session: the peer has every id below `nextId`; returns the frames to re-send. */
  resume(nextId: number, chunk: number = CHUNK_PAYLOAD): Inner[] {
    if (this.opts.adoptPeerNumbering === true && !this.resumed && nextId > this.nextId) {
      // The peer expects ids from an earlier incarnation of this side (we restarted, it did not):
      // continue its numbering. Nothing was acked yet, so every queued message is renumbered.
      const offset = nextId - 1;
      for (const m of this.unacked) m.id += offset;
      this.nextId += offset;
    }
    this.resumed = true;
    if (nextId > this.nextId) throw new LinkProtocolError(`resume at ${nextId} beyond last sent ${this.nextId - 1}`);
    this.ack(nextId - 1);
    return this.unacked.flatMap((m) => chunkMessage(m.id, m.bytes, chunk));
  }

  get pending(): number {
    return this.unacked.length;
  }

  /** Bytes of messages not yet acknowledged (what a reconnect would re-send). */
  get pendingBytes(): number {
    return this.unackedBytes;
  }
}

/**
 * Size rules of 4.5, checked before a chunk is stored: every chunk but the last has the first chunk's
 * size, so the first chunk already shows the least the whole message needs; the running total never
 * passes MAX_MESSAGE. A claimed 100 MiB message is refused at its first chunk, nothing allocated.
 */
function checkChunkSize(p: { chunks: Uint8Array[]; size: number }, f: Extract<Inner, { kind: 'data' }>): void {
  const len = f.payload.length;
  if (f.index === 0) {
    const least = (f.count - 1) * len + (f.count > 1 ? 1 : 0);
    if (least > MAX_MESSAGE) throw new LinkTooLargeError(`message of ${f.count} chunks of ${len} bytes is above ${MAX_MESSAGE} bytes`);
  } else {
    const first = p.chunks[0]?.length ?? 0;
    const last = f.index === f.count - 1;
    if (last ? len > first || len === 0 : len !== first)
      throw new LinkProtocolError(`chunk ${f.index}/${f.count} of ${len} bytes after a first chunk of ${first}`);
  }
  if (p.size + len > MAX_MESSAGE) throw new LinkTooLargeError(`message above ${MAX_MESSAGE} bytes`);
}

/** Receiver side: reassembly, de-duplication across sessions, ack bookkeeping. */
export class Inbox {
  private nextId = 1;
  /** False until the first DATA frame: a fresh side adopts the peer's numbering (see Outbox.resume). */
  private started = false;
  private partial: { id: number; count: number; chunks: Uint8Array[]; size: number } | null = null;
  private unackedMessages = 0;
  private unackedBytes = 0;

  constructor(private readonly opts: { adoptPeerNumbering?: boolean } = {}) {}

  /** Returns a complete message, or null (more chunks needed, or a duplicate that was dropped). */
  receive(f: Extract<Inner, { kind: 'data' }>): Uint8Array | null {
    // A fresh inbox (we restarted, the peer did not) starts at the peer's lowest unacked id: the
    // frames before it went to our earlier incarnation. Frames are ordered and authenticated within
    // a session, so the first one is that id.
    if (this.opts.adoptPeerNumbering === true && !this.started && f.msgId > this.nextId && f.index === 0) this.nextId = f.msgId;
    this.started = true;
    if (f.msgId < this.nextId) return null; // re-sent after a reconnect: already delivered
    if (f.msgId > this.nextId) throw new LinkProtocolError(`message ${f.msgId} skips ${this.nextId}`);
    const p = this.partial ?? { id: f.msgId, count: f.count, chunks: [], size: 0 };
    if (p.count !== f.count || p.chunks.length !== f.index) throw new LinkProtocolError(`chunk ${f.index}/${f.count} out of order`);
    checkChunkSize(p, f);
    p.chunks.push(f.payload.slice());
    p.size += f.payload.length;
    if (p.chunks.length < p.count) {
      this.partial = p;
      return null;
    }
    this.partial = null;
    this.nextId++;
    this.unackedMessages++;
    this.unackedBytes += p.size;
    if (p.chunks.length === 1) return p.chunks[0] ?? new Uint8Array(0);
    const out = new Uint8Array(p.size);
    let off = 0;
    for (const c of p.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  /** New session: a half-received message will be re-sent whole. */
  resumePoint(): number {
    this.partial = null;
    return this.nextId;
  }

  get ackDue(): boolean {
    return this.unackedMessages >= ACK_EVERY_MESSAGES || this.unackedBytes >= ACK_EVERY_BYTES;
  }

  get hasUnacked(): boolean {
    return this.unackedMessages > 0;
  }

  /** The ACK frame covering everything delivered so far. */
  takeAck(): Inner {
    this.unackedMessages = 0;
    this.unackedBytes = 0;
    return { kind: 'ack', msgId: this.nextId - 1 };
  }
}
