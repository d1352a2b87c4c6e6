/**
 * The records a room driver stores (docs/PROTOCOL.md 6.2-6.3 for the web app's IndexedDB vault, 5.13
 * for the `--state` directory of `zeroroom host`/`join`): one name, one encoder and ONE strict decoder
 * per shape, used by both. Each plaintext is one msgpack map with an integer `v`; a decoder checks
 * every field's type and size, refuses missing and unknown fields, and throws `RecordError`
 * (`storage.record`) for anything malformed — the machine state inside a room record keeps its own
 * codec and code (`room.bad-state`, 5.15). Pure: sealing and where the bytes go is the store's job.
 *
 * Older layouts still decode: the web app's and the CLI's room records and the CLI's outbox file
 * were version 1 with different field lists; each old list is accepted exactly, and new records are
 * written as version 2.
 */
import {
  CryptoError,
  equalBytes,
  asBoxPublicKey,
  asBoxSecretKey,
  asEcPrivateKey,
  asEcPublicKey,
  toHex,
  type BoxKeyPair,
  type IdentityKeyPair,
} from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../errors.ts';
import { encode, Fields } from '../msgpack.ts';
import { MAX_LINK_MESSAGE, memberIdValue } from './codec.ts';
import { MAX_STATE_BYTES, decodeRoomState, encodeMemberState, encodeOwnerState } from './state-codec.ts';
import type { LogEntry, MemberId, MemberState, OwnerState } from './types.ts';

/** A stored record that opened (its seal is intact) but does not decode. */
export class RecordError extends ZeroRoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage.record', message, options);
  }
}

/** Longest message text a record holds (above the wire's MAX_TEXT, so no record written so far is refused). */
export const MAX_STORED_TEXT = 64 * 1024;
const MAX_URL = 2048;
const MAX_ID = 256;
const MAX_NAME = 256;
const TIME = { min: 0, max: Number.MAX_SAFE_INTEGER };
const SEQ = { min: 1, max: Number.MAX_SAFE_INTEGER };
const INDEX = { min: 0, max: Number.MAX_SAFE_INTEGER };
const GEN = { min: 0, max: Number.MAX_SAFE_INTEGER };

/** Own messages a member keeps until the owner delivers them back; the next send is refused. */
export const MAX_OUTBOX = 1000;

/**
 * Runs a decoder; the field-level errors (DecodeError from msgpack, KeyError from a key's `as*`
 * constructor) become one RecordError naming the record.
 */
function decoding<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DecodeError || e instanceof CryptoError) throw new RecordError(`${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

function version(f: Fields, what: string, known: readonly number[]): number {
  const v = f.int('v', { min: 0, max: Number.MAX_SAFE_INTEGER });
  if (!known.includes(v)) throw new RecordError(`${what}: unknown format version ${v}`);
  return v;
}

// ---- identity ------------------------------------------------------------------------------

/** This device's key pairs for one room: Themis identity (signing, sealing) and SaltyRTC peer key. */
export interface RoomIdentity {
  readonly identity: IdentityKeyPair;
  readonly peer: BoxKeyPair;
}

const IDENTITY_FIELDS = ['v', 'ipub', 'ipriv', 'npub', 'nsec'] as const;

export function encodeRoomIdentity(i: RoomIdentity): Uint8Array {
  return encode({ v: 1, ipub: i.identity.publicKey, ipriv: i.identity.privateKey, npub: i.peer.publicKey, nsec: i.peer.secretKey });
}

export function decodeRoomIdentity(bytes: Uint8Array): RoomIdentity {
  const what = 'identity record';
  return decoding(what, () => {
    const f = Fields.fromBytes(bytes, what).only(IDENTITY_FIELDS);
    version(f, what, [1]);
    return {
      identity: { publicKey: asEcPublicKey(f.bin('ipub', 45)), privateKey: asEcPrivateKey(f.bin('ipriv', 45)) },
      peer: { publicKey: asBoxPublicKey(f.bin('npub', 32)), secretKey: asBoxSecretKey(f.bin('nsec', 32)) },
    };
  });
}

// ---- room ----------------------------------------------------------------------------------

/** One room on this device: where its signaling server is, and the room machine's state. */
export interface RoomRecord {
  readonly role: 'owner' | 'member';
  /** Signaling server URL (owner: chosen at creation; member: from the invite). */
  readonly server: string;
  /** Lowercase hex of the pinned signaling server key, '' when not pinned. */
  readonly serverKey: string;
  /** Owner: the web app origin its invites point to ('' where the app supplies it at run time). */
  readonly appUrl: string;
  /** When this device created or joined the room (ms; 0 when not recorded). */
  readonly createdAt: number;
  readonly state: OwnerState | MemberState;
}

/** The record key of a room: lowercase hex of its room id. */
export function roomIdOf(state: OwnerState | MemberState): string {
  return toHex(state.room);
}

/** Version 3: version 2 plus `gen`, the record's save generation (section 6.5). */
const ROOM_FIELDS = ['v', 'role', 'server', 'serverKey', 'appUrl', 'createdAt', 'state', 'gen'] as const;
const ROOM_FIELDS_V2 = ['v', 'role', 'server', 'serverKey', 'appUrl', 'createdAt', 'state'] as const;
/** Version 1 as the web app wrote it (IndexedDB `rooms` store). */
const ROOM_FIELDS_V1_WEB = ['v', 'id', 'role', 'server', 'serverKey', 'createdAt', 'state'] as const;
/** Version 1 as `zeroroom host`/`join` wrote it (`room.bin`). */
const ROOM_FIELDS_V1_CLI = ['v', 'role', 'server', 'serverKey', 'appUrl', 'state'] as const;

/**
 * The room record as stored, `gen` its save generation (section 6.5: 1 for a new room, one more on
 * each save; records written before version 3 read as generation 0).
 */
export function encodeRoomRecord(r: RoomRecord, gen = 0): Uint8Array {
  return encode({
    v: 3,
    gen,
    role: r.role,
    server: r.server,
    serverKey: r.serverKey,
    appUrl: r.appUrl,
    createdAt: r.createdAt,
    state: r.state.role === 'owner' ? encodeOwnerState(r.state) : encodeMemberState(r.state),
  });
}

export function decodeRoomRecord(bytes: Uint8Array): RoomRecord {
  return decodeStoredRoom(bytes).record;
}

/** The room record and its save generation (0 for records older than version 3). */
export function decodeStoredRoom(bytes: Uint8Array): { record: RoomRecord; gen: number } {
  const what = 'room record';
  return decoding(what, () => {
    const f = Fields.fromBytes(bytes, what);
    const v = version(f, what, [1, 2, 3]);
    const web = v === 1 && f.has('id');
    f.only(v === 3 ? ROOM_FIELDS : v === 2 ? ROOM_FIELDS_V2 : web ? ROOM_FIELDS_V1_WEB : ROOM_FIELDS_V1_CLI);
    const gen = v === 3 ? f.int('gen', GEN) : 0;
    const role = f.str('role', 16);
    if (role !== 'owner' && role !== 'member') throw new RecordError(`${what}: bad role "${role}"`);
    const server = f.str('server', MAX_URL);
    const serverKey = f.str('serverKey', 64);
    if (serverKey !== '' && !/^[0-9a-f]{64}$/.test(serverKey))
      throw new RecordError(`${what}: serverKey must be 64 lowercase hex digits or empty`);
    const appUrl = v === 1 && web ? '' : f.str('appUrl', MAX_URL);
    const createdAt = v === 1 && !web ? 0 : f.int('createdAt', TIME);
    // The machine state's own strict decoder (section 5.15): StateError (room.bad-state) on anything off.
    const state = decodeRoomState(f.bin('state', { min: 1, max: MAX_STATE_BYTES }));
    if (state.role !== role) throw new RecordError(`${what}: the machine state does not match the role "${role}"`);
    if (web && f.str('id', 64) !== roomIdOf(state)) throw new RecordError(`${what}: id does not match the room in its state`);
    return { record: { role, server, serverKey, appUrl, createdAt, state }, gen };
  });
}

// ---- rollback guard (section 6.5) ----------------------------------------------------------

/**
 * A room record older than the room's generation mark: a validly sealed earlier copy was written
 * back (it would restore a used invite, a kicked member, old keys). Nothing is deleted; the room is
 * not started.
 */
export class RollbackError extends ZeroRoomError {
  constructor(message: string) {
    super('storage.rollback', message);
  }
}

/** The generation mark of one room: the highest `gen` saved, sealed in its own record (section 6.5). */
export function encodeGenerationMark(gen: number): Uint8Array {
  return encode({ v: 1, gen });
}

export function decodeGenerationMark(bytes: Uint8Array): number {
  const what = 'generation mark';
  return decoding(what, () => {
    const f = Fields.fromBytes(bytes, what).only(['v', 'gen']);
    version(f, what, [1]);
    return f.int('gen', { min: 1, max: Number.MAX_SAFE_INTEGER });
  });
}

/**
 * Section 6.5: a room record of generation `gen` opens only if it is not older than the mark. A
 * store writes the record first and the mark after it, so a record one generation ahead of its mark
 * (a crash between the two writes) is accepted; a missing mark is accepted only next to a record
 * that never saved past its first generation (a record written before marks existed, or a new room
 * whose mark was not written yet). Throws RollbackError otherwise; true when the mark must be raised
 * to `gen`.
 */
export function checkGeneration(gen: number, mark: number | null, room: string): boolean {
  if (mark === null) {
    if (gen > 1) throw new RollbackError(`room ${room}: its generation mark is missing next to a record of generation ${gen}`);
  } else if (gen < mark) {
    throw new RollbackError(
      `room ${room}: the stored room record is generation ${gen} but generation ${mark} was saved: an older copy was written back`,
    );
  }
  // A crash between the record and its mark, or a store from before marks: the mark catches up.
  return gen > (mark ?? 0);
}

/**
 * A key update's pending keys as stored next to the current ones (5.8.1): null when they equal the
 * current keys (the switch was stored, the pending record's removal was not: a crash).
 */
export function pendingKeysOf(current: RoomIdentity, pending: RoomIdentity | null): RoomIdentity | null {
  return pending !== null && !equalBytes(pending.identity.publicKey, current.identity.publicKey) ? pending : null;
}

// ---- outbox --------------------------------------------------------------------------------

/** A member's own message the owner has not delivered back yet (section 5.6). */
export interface OutboxRecord {
  /** The sender sequence number the member machine gave it. */
  readonly seq: number;
  readonly text: string;
  /** When it was first sent (ms; 0 when not recorded). */
  readonly at: number;
  /** The exact `send` message: re-sent unchanged, so the owner's replay check drops a copy. */
  readonly wire: Uint8Array;
}

const OUTBOX_FIELDS = ['v', 'seq', 'text', 'at', 'wire'] as const;

function outboxFields(f: Fields, withAt: boolean): OutboxRecord {
  return {
    seq: f.int('seq', SEQ),
    text: f.str('text', MAX_STORED_TEXT),
    at: withAt ? f.int('at', TIME) : 0,
    wire: f.bin('wire', { min: 1, max: MAX_LINK_MESSAGE }),
  };
}

/** One outbox record on its own (the web app's `outbox` store, one record per message). */
export function encodeOutboxRecord(r: OutboxRecord): Uint8Array {
  return encode({ v: 1, seq: r.seq, text: r.text, at: r.at, wire: r.wire });
}

export function decodeOutboxRecord(bytes: Uint8Array): OutboxRecord {
  const what = 'outbox record';
  return decoding(what, () => {
    const f = Fields.fromBytes(bytes, what).only(OUTBOX_FIELDS);
    version(f, what, [1]);
    return outboxFields(f, true);
  });
}

/** The whole outbox as one list in ascending `seq` (the CLI's `outbox.bin`). */
export function encodeOutboxList(entries: readonly OutboxRecord[]): Uint8Array {
  return encode({ v: 2, entries: entries.map((e) => ({ seq: e.seq, text: e.text, at: e.at, wire: e.wire })) });
}

export function decodeOutboxList(bytes: Uint8Array): OutboxRecord[] {
  const what = 'outbox list';
  return decoding(what, () => {
    const f = Fields.fromBytes(bytes, what).only(['v', 'entries']);
    // Version 1 entries had no `at`.
    const v = version(f, what, [1, 2]);
    const entries = f.arr('entries', MAX_OUTBOX).map((raw, i) => {
      const e = Fields.of(raw, `${what} entries[${i}]`).only(v === 1 ? ['seq', 'text', 'wire'] : ['seq', 'text', 'at', 'wire']);
      return outboxFields(e, v === 2);
    });
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.seq <= entries[i - 1]!.seq) throw new RecordError(`${what}: entries not in ascending seq order`);
    }
    return entries;
  });
}

// ---- history -------------------------------------------------------------------------------

/** One delivered message at room index `idx` (the web app's `history` store). */
export interface HistoryRecord {
  readonly idx: number;
  readonly senderId: MemberId;
  readonly senderName: string;
  readonly seq: number;
  readonly text: string;
  readonly at: number;
  readonly system: boolean;
  /** Owner rooms only: the signed envelope and its epoch, i.e. the owner's log entry (section 5.9). */
  readonly epoch?: number;
  readonly env?: Uint8Array;
}

const HISTORY_FIELDS = ['v', 'idx', 'senderId', 'senderName', 'seq', 'text', 'at', 'system', 'epoch', 'env'] as const;

export function encodeHistoryRecord(r: HistoryRecord): Uint8Array {
  return encode({
    v: 1,
    idx: r.idx,
    senderId: r.senderId,
    senderName: r.senderName,
    seq: r.seq,
    text: r.text,
    at: r.at,
    system: r.system,
    ...(r.env !== undefined && r.epoch !== undefined ? { epoch: r.epoch, env: r.env } : {}),
  });
}

export function decodeHistoryRecord(bytes: Uint8Array): HistoryRecord {
  const what = 'history record';
  return decoding(what, () => {
    const f = Fields.fromBytes(bytes, what).only(HISTORY_FIELDS);
    version(f, what, [1]);
    if (f.has('env') !== f.has('epoch')) throw new RecordError(`${what}: "epoch" and "env" come together`);
    return {
      idx: f.int('idx', INDEX),
      senderId: memberIdValue(f.str('senderId', MAX_ID), `${what}.senderId`),
      senderName: f.str('senderName', MAX_NAME),
      seq: f.int('seq', INDEX),
      text: f.str('text', MAX_STORED_TEXT),
      at: f.int('at', TIME),
      system: f.bool('system'),
      ...(f.has('env') ? { epoch: f.int('epoch', INDEX), env: f.bin('env', { min: 1, max: 128 * 1024 }) } : {}),
    };
  });
}

// ---- restore rules -------------------------------------------------------------------------

/**
 * The last room index the state has committed: a driver writes a step's history records and outbox
 * record BEFORE the state (the commit point, docs/PROTOCOL.md 6.4), so records beyond it belong to a
 * step whose state never got saved and are left out on restore.
 */
export function committedIndex(state: OwnerState | MemberState): number {
  return state.role === 'owner' ? state.nextIdx - 1 : state.lastIdx;
}

/** History records the state has committed (see committedIndex), in index order. */
export function committedHistory(state: OwnerState | MemberState, records: readonly HistoryRecord[]): HistoryRecord[] {
  const last = committedIndex(state);
  return records.filter((r) => r.idx <= last).sort((a, b) => a.idx - b.idx);
}

/** Outbox records the member state has committed (a send's record is written before its state). */
export function committedOutbox(state: MemberState, records: readonly OutboxRecord[]): OutboxRecord[] {
  return records.filter((r) => r.seq <= state.seq).sort((a, b) => a.seq - b.seq);
}

/**
 * The owner's log rebuilt from its history records (the web app stores the owner state with an
 * empty log and each log entry once, in its message's history record): the newest maxLogEntries.
 */
export function restoreOwnerLog(state: OwnerState, history: readonly HistoryRecord[]): OwnerState {
  const log: LogEntry[] = committedHistory(state, history)
    .filter((h) => h.env !== undefined && h.epoch !== undefined)
    .map((h) => ({ idx: h.idx, from: h.senderId, epoch: h.epoch!, env: h.env! }))
    .slice(-state.config.maxLogEntries);
  return { ...state, log };
}
