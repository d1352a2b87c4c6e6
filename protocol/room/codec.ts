/**
 * Wire messages of the room protocol (docs/PROTOCOL.md section 5.12) and the signed or sealed
 * structures inside them (5.4-5.7). One strict decoder per message; closed field lists; every
 * failure is a DecodeError.
 */
import type { BoxPublicKey, EcPublicKey } from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import { decodeFileOffer, encodeFileOffer, type FileOffer } from '../files/offer.ts';
import { Fields, decode, encode, type Encodable, type MsgValue } from '../msgpack.ts';
import type { MemberId, MemberInfo, RemovalReason, RotationReason } from './types.ts';
import { boxPublicField, ecPublicField } from './wire-keys.ts';

export const MAX_LINK_MESSAGE = 1024 * 1024;
export const MAX_ENVELOPE = 128 * 1024;
export const MAX_TEXT = 16 * 1024;
export const MAX_NAME = 64;
export const MAX_MEMBERS = 256;
export const MAX_HISTORY_ENTRIES = 256;
const MAX_SEALED = 512 * 1024;
export const MAX_CERT = 2048;
/** A format-1 epoch announcement (it listed every member). */
export const MAX_ANN = 256 * 1024;
/** A chain entry (section 5.7): fixed fields, and one certificate or up to 256 removed ids. */
export const MAX_ENTRY = 16 * 1024;
const MAX_CODE = 64;
/** A sealed epoch key (Secure Message of a small map). */
export const MAX_SEALED_KEY = 4096;
/** Entries per `resync` message (section 5.10). */
export const MAX_RESYNC_ANNS = 256;
/** One signed copy of a key-update body (section 5.8.1). */
export const MAX_KEY_UPDATE = 1024;
const IDX = { min: 0, max: Number.MAX_SAFE_INTEGER };

export interface HistoryEntryWire {
  readonly idx: number;
  readonly from: MemberId;
  readonly env: Uint8Array;
}

export interface SupplyEntryWire {
  readonly idx: number;
  readonly env: Uint8Array;
}

export type ToOwner =
  /** v2 invites: ask for the owner's identity key over the link (section 5.3). */
  | { readonly type: 'join-hello'; readonly invite: Uint8Array }
  | { readonly type: 'join-request'; readonly invite: Uint8Array; readonly ipub: EcPublicKey; readonly sealed: Uint8Array }
  /** `chain`: the position of the accept's chain head; the resync starts after it (5.4). */
  | { readonly type: 'join-confirm'; readonly invite: Uint8Array; readonly proof: Uint8Array; readonly chain: number }
  | { readonly type: 'send'; readonly env: Uint8Array }
  | { readonly type: 'leave' }
  /** `more`: the next history page of a catch-up, answered without `resync` when `chain` is the head (5.10). */
  | { readonly type: 'sync'; readonly last_idx: number; readonly epoch: number; readonly chain: number; readonly more?: true }
  /** A hole in `from`'s sender chain: the envelopes from `after` (exclusive) to `before` (inclusive), 5.6. */
  | { readonly type: 'want'; readonly from: MemberId; readonly after: Uint8Array; readonly before: Uint8Array }
  /** Section 5.8.1: the same body signed by the member's current (`old`) and new (`new`) identity keys. */
  | { readonly type: 'key-update'; readonly old: Uint8Array; readonly new: Uint8Array };

export type ToMember =
  | { readonly type: 'owner-key'; readonly invite: Uint8Array; readonly opub: EcPublicKey }
  | { readonly type: 'join-accept'; readonly invite: Uint8Array; readonly sealed: Uint8Array }
  | { readonly type: 'join-refused'; readonly code: string }
  | { readonly type: 'welcome'; readonly cert: Uint8Array; readonly from_idx: number }
  /** `tail`: with a refused send, the hash the sender's next message must chain onto (5.6). */
  | { readonly type: 'refused'; readonly code: string; readonly seq?: number; readonly tail?: Uint8Array }
  | { readonly type: 'deliver'; readonly idx: number; readonly from: MemberId; readonly env: Uint8Array }
  /** `more`: the owner holds entries after this page; ask with `sync {more: true}` (section 5.9). */
  | {
      readonly type: 'history';
      readonly from_idx: number;
      readonly log_start: number;
      readonly entries: readonly HistoryEntryWire[];
      readonly more?: true;
    }
  /** One chain entry (section 5.7); `key` (sealed to this member) with `rotate` entries. */
  | { readonly type: 'chain'; readonly ann: Uint8Array; readonly key?: Uint8Array }
  | { readonly type: 'removed'; readonly reason: RemovalReason }
  /** Section 5.10: chain entries after the member's head (or, with `certs`, a re-anchor) and keys. */
  | {
      readonly type: 'resync';
      readonly anns: readonly Uint8Array[];
      readonly keys: readonly Uint8Array[];
      readonly certs?: readonly Uint8Array[];
      readonly more?: true;
    }
  | { readonly type: 'supply'; readonly from: MemberId; readonly before: Uint8Array; readonly entries: readonly SupplyEntryWire[] };

export function encodeMessage(msg: ToOwner | ToMember): Uint8Array {
  return encode(msg as unknown as Encodable);
}

function limited(bytes: Uint8Array, max: number, what: string): Fields {
  if (bytes.length > max) throw new DecodeError(`${what}: larger than ${max} bytes`);
  return Fields.fromBytes(bytes, what);
}

const MEMBER_ID = /^[0-9a-f]{32}$/;

export function memberIdValue(s: string, what: string): MemberId {
  if (!MEMBER_ID.test(s)) throw new DecodeError(`${what}: not a member id`);
  return s as MemberId;
}

function memberIdField(f: Fields, key: string, what: string): MemberId {
  return memberIdValue(f.str(key, 32), `${what}.${key}`);
}

function binItem(v: MsgValue, max: number, what: string): Uint8Array {
  if (v.t !== 'bin') throw new DecodeError(`${what}: item must be bin, got ${v.t}`);
  if (v.v.length > max) throw new DecodeError(`${what}: item larger than ${max} bytes`);
  return v.v;
}

function binList(f: Fields, key: string, maxItems: number, maxBytes: number, what: string): Uint8Array[] {
  return f.arr(key, maxItems).map((v) => {
    const b = binItem(v, maxBytes, `${what}.${key}`);
    if (b.length === 0) throw new DecodeError(`${what}.${key}: empty item`);
    return b;
  });
}

/** An optional flag that is only ever sent as `true` (one encoding per meaning). */
function trueFlag(f: Fields, key: string, what: string): true | undefined {
  if (!f.has(key)) return undefined;
  if (!f.bool(key)) throw new DecodeError(`${what}: field "${key}" is only sent as true`);
  return true;
}

function removalReason(s: string, what: string): RemovalReason {
  if (s !== 'kicked' && s !== 'left' && s !== 'not-member') throw new DecodeError(`${what}: unknown reason`);
  return s;
}

/** Decoder for messages a member sends to the owner. */
export function decodeToOwner(bytes: Uint8Array): ToOwner {
  const what = 'room message to owner';
  const f = limited(bytes, MAX_LINK_MESSAGE, what);
  const type = f.str('type', 64);
  switch (type) {
    case 'join-hello':
      f.only(['type', 'invite']);
      return { type, invite: f.bin('invite', 32) };
    case 'join-request':
      f.only(['type', 'invite', 'ipub', 'sealed']);
      return { type, invite: f.bin('invite', 32), ipub: ecPublicField(f, 'ipub', type), sealed: f.bin('sealed', { min: 1, max: 4096 }) };
    case 'join-confirm':
      f.only(['type', 'invite', 'proof', 'chain']);
      return { type, invite: f.bin('invite', 32), proof: f.bin('proof', { min: 1, max: 1024 }), chain: f.int('chain', IDX) };
    case 'send':
      f.only(['type', 'env']);
      return { type, env: f.bin('env', { min: 1, max: MAX_ENVELOPE }) };
    case 'leave':
      f.only(['type']);
      return { type };
    case 'sync': {
      f.only(['type', 'last_idx', 'epoch', 'chain', 'more']);
      const more = trueFlag(f, 'more', type);
      return {
        type,
        last_idx: f.int('last_idx', { min: -1, max: Number.MAX_SAFE_INTEGER }),
        epoch: f.int('epoch', IDX),
        chain: f.int('chain', IDX),
        ...(more ? { more } : {}),
      };
    }
    case 'want':
      f.only(['type', 'from', 'after', 'before']);
      return { type, from: memberIdField(f, 'from', type), after: f.bin('after', 32), before: f.bin('before', 32) };
    case 'key-update':
      f.only(['type', 'old', 'new']);
      return { type, old: f.bin('old', { min: 1, max: MAX_KEY_UPDATE }), new: f.bin('new', { min: 1, max: MAX_KEY_UPDATE }) };
    default:
      throw new DecodeError(`${what}: unknown type "${type}"`);
  }
}

/** Decoder for messages the owner sends to a member. */
export function decodeToMember(bytes: Uint8Array): ToMember {
  const what = 'room message to member';
  const f = limited(bytes, MAX_LINK_MESSAGE, what);
  const type = f.str('type', 64);
  switch (type) {
    case 'owner-key':
      f.only(['type', 'invite', 'opub']);
      return { type, invite: f.bin('invite', 32), opub: ecPublicField(f, 'opub', type) };
    case 'join-accept':
      f.only(['type', 'invite', 'sealed']);
      return { type, invite: f.bin('invite', 32), sealed: f.bin('sealed', { min: 1, max: MAX_SEALED }) };
    case 'join-refused':
      f.only(['type', 'code']);
      return { type, code: f.str('code', MAX_CODE) };
    case 'welcome':
      f.only(['type', 'cert', 'from_idx']);
      return { type, cert: f.bin('cert', { min: 1, max: MAX_CERT }), from_idx: f.int('from_idx', IDX) };
    case 'refused': {
      f.only(['type', 'code', 'seq', 'tail']);
      const seq = f.optional('seq', (k) => f.int(k, { min: 1, max: Number.MAX_SAFE_INTEGER }));
      const tail = f.optional('tail', (k) => f.bin(k, 32));
      if (tail !== undefined && seq === undefined) throw new DecodeError('refused: a tail only comes with the refused seq');
      return { type, code: f.str('code', MAX_CODE), ...(seq === undefined ? {} : { seq }), ...(tail === undefined ? {} : { tail }) };
    }
    case 'deliver':
      f.only(['type', 'idx', 'from', 'env']);
      return { type, idx: f.int('idx', IDX), from: memberIdField(f, 'from', type), env: f.bin('env', { min: 1, max: MAX_ENVELOPE }) };
    case 'history': {
      f.only(['type', 'from_idx', 'log_start', 'entries', 'more']);
      const more = trueFlag(f, 'more', type);
      const fromIdx = f.int('from_idx', IDX);
      const entries = f.arr('entries', MAX_HISTORY_ENTRIES).map((v, i) => {
        const e = Fields.of(v, `history.entries[${i}]`).only(['idx', 'from', 'env']);
        const idx = e.int('idx', IDX);
        if (idx !== fromIdx + i) throw new DecodeError('history: entries are not contiguous from from_idx');
        return { idx, from: memberIdField(e, 'from', 'history entry'), env: e.bin('env', { min: 1, max: MAX_ENVELOPE }) };
      });
      return { type, from_idx: fromIdx, log_start: f.int('log_start', IDX), entries, ...(more ? { more } : {}) };
    }
    case 'chain': {
      f.only(['type', 'ann', 'key']);
      const key = f.optional('key', (k) => f.bin(k, { min: 1, max: MAX_SEALED_KEY }));
      return { type, ann: f.bin('ann', { min: 1, max: MAX_ENTRY }), ...(key === undefined ? {} : { key }) };
    }
    case 'removed':
      f.only(['type', 'reason']);
      return { type, reason: removalReason(f.str('reason', 16), type) };
    case 'resync': {
      f.only(['type', 'anns', 'keys', 'certs', 'more']);
      const more = trueFlag(f, 'more', type);
      // An anchor entry may be a format-1 announcement (MAX_ANN); new entries are at most MAX_ENTRY.
      const anns = binList(f, 'anns', MAX_RESYNC_ANNS, MAX_ANN, type);
      const keys = binList(f, 'keys', MAX_RESYNC_ANNS, MAX_SEALED_KEY, type);
      const certs = f.has('certs') ? binList(f, 'certs', MAX_MEMBERS, MAX_CERT, type) : undefined;
      if (certs !== undefined && (anns.length !== 1 || more !== undefined))
        throw new DecodeError('resync: a re-anchor carries exactly one entry, in one message');
      return { type, anns, keys, ...(certs === undefined ? {} : { certs }), ...(more ? { more } : {}) };
    }
    case 'supply': {
      f.only(['type', 'from', 'before', 'entries']);
      const entries = f.arr('entries', MAX_HISTORY_ENTRIES).map((v, i) => {
        const e = Fields.of(v, `supply.entries[${i}]`).only(['idx', 'env']);
        return { idx: e.int('idx', IDX), env: e.bin('env', { min: 1, max: MAX_ENVELOPE }) };
      });
      return { type, from: memberIdField(f, 'from', type), before: f.bin('before', 32), entries };
    }
    default:
      throw new DecodeError(`${what}: unknown type "${type}"`);
  }
}

// ---- Structures inside signatures and seals ----

export function memberToWire(m: MemberInfo): Encodable {
  return { id: m.id, ipub: m.ipub, npub: m.npub, name: m.name, owner: m.owner, epoch: m.epoch };
}

export function memberFromFields(f: Fields, what: string): MemberInfo {
  f.only(['id', 'ipub', 'npub', 'name', 'owner', 'epoch']);
  return {
    id: memberIdField(f, 'id', what),
    ipub: ecPublicField(f, 'ipub', what),
    npub: boxPublicField(f, 'npub', what) as BoxPublicKey,
    name: f.str('name', MAX_NAME),
    owner: f.bool('owner'),
    epoch: f.int('epoch', IDX),
  };
}

export interface CertBody {
  readonly room: Uint8Array;
  readonly member: MemberInfo;
}
export function encodeCertBody(c: CertBody): Uint8Array {
  return encode({ type: 'cert', room: c.room, member: memberToWire(c.member) });
}
export function decodeCertBody(bytes: Uint8Array): CertBody {
  const f = limited(bytes, MAX_CERT, 'cert').only(['type', 'room', 'member']);
  f.type('cert');
  return { room: f.bin('room', 16), member: memberFromFields(f.map_('member'), 'cert.member') };
}

/** Format-1 epoch announcement (before the chain; still decoded in migrated states and anchors). */
export interface AnnBody {
  readonly room: Uint8Array;
  readonly epoch: number;
  readonly prev: Uint8Array;
  readonly members: readonly MemberInfo[];
  readonly firstIdx: number;
  readonly reason: RotationReason;
  readonly ts: number;
}
export const ROTATION_REASONS: readonly RotationReason[] = ['create', 'count', 'timer', 'manual', 'kick', 'leave', 'join'];

export function encodeAnnBody(a: AnnBody): Uint8Array {
  return encode({
    type: 'epoch',
    room: a.room,
    epoch: a.epoch,
    prev: a.prev,
    members: a.members.map(memberToWire),
    first_idx: a.firstIdx,
    reason: a.reason,
    ts: a.ts,
  });
}
export function decodeAnnBody(bytes: Uint8Array): AnnBody {
  const what = 'epoch announcement';
  const f = limited(bytes, MAX_ANN, what).only(['type', 'room', 'epoch', 'prev', 'members', 'first_idx', 'reason', 'ts']);
  f.type('epoch');
  const reason = f.str('reason', 16);
  if (!(ROTATION_REASONS as readonly string[]).includes(reason)) throw new DecodeError(`${what}: unknown reason`);
  const members = f.arr('members', MAX_MEMBERS).map((v, i) => memberFromFields(Fields.of(v, `${what}.members[${i}]`), what));
  if (new Set(members.map((m) => m.id)).size !== members.length) throw new DecodeError(`${what}: duplicate member`);
  return {
    room: f.bin('room', 16),
    epoch: f.int('epoch', IDX),
    prev: f.bin('prev', 32),
    members,
    firstIdx: f.int('first_idx', IDX),
    reason: reason as RotationReason,
    ts: f.int('ts', { min: 0, max: Number.MAX_SAFE_INTEGER }),
  };
}

export type ChainBody =
  | (ChainCommon & { readonly op: 'create' })
  | (ChainCommon & { readonly op: 'add'; readonly cert: Uint8Array })
  | (ChainCommon & { readonly op: 'rotate'; readonly reason: RotationReason; readonly removed: readonly MemberId[] })
  /** Section 5.8.1: one member's keys replaced (`removed`: its old id, `cert`: its new certificate) and a new epoch. */
  | (ChainCommon & { readonly op: 'update'; readonly cert: Uint8Array; readonly removed: MemberId });

/** The fields every chain entry has (section 5.7). */
export interface ChainCommon {
  readonly room: Uint8Array;
  readonly n: number;
  readonly prev: Uint8Array;
  readonly epoch: number;
  readonly firstIdx: number;
  readonly keyHash: Uint8Array;
  readonly membersHash: Uint8Array;
  readonly ts: number;
}

export function encodeChainBody(c: ChainBody): Uint8Array {
  return encode({
    type: 'chain',
    room: c.room,
    n: c.n,
    prev: c.prev,
    op: c.op,
    epoch: c.epoch,
    first_idx: c.firstIdx,
    key_hash: c.keyHash,
    members_hash: c.membersHash,
    ts: c.ts,
    ...(c.op === 'add' ? { cert: c.cert } : {}),
    ...(c.op === 'rotate' ? { reason: c.reason, removed: [...c.removed] } : {}),
    ...(c.op === 'update' ? { cert: c.cert, removed: [c.removed] } : {}),
  });
}

const CHAIN_COMMON = ['type', 'room', 'n', 'prev', 'op', 'epoch', 'first_idx', 'key_hash', 'members_hash', 'ts'];

export function decodeChainBody(bytes: Uint8Array): ChainBody {
  const what = 'chain entry';
  const f = limited(bytes, MAX_ENTRY, what);
  f.type('chain');
  const op = f.str('op', 16);
  const common: ChainCommon = {
    room: f.bin('room', 16),
    n: f.int('n', IDX),
    prev: f.bin('prev', 32),
    epoch: f.int('epoch', IDX),
    firstIdx: f.int('first_idx', IDX),
    keyHash: f.bin('key_hash', 32),
    membersHash: f.bin('members_hash', 32),
    ts: f.int('ts', { min: 0, max: Number.MAX_SAFE_INTEGER }),
  };
  switch (op) {
    case 'create':
      f.only(CHAIN_COMMON);
      return { ...common, op };
    case 'add':
      f.only([...CHAIN_COMMON, 'cert']);
      return { ...common, op, cert: f.bin('cert', { min: 1, max: MAX_CERT }) };
    case 'rotate': {
      f.only([...CHAIN_COMMON, 'reason', 'removed']);
      const reason = f.str('reason', 16);
      if (reason === 'create' || !(ROTATION_REASONS as readonly string[]).includes(reason))
        throw new DecodeError(`${what}: unknown rotation reason`);
      const removed = f.arr('removed', MAX_MEMBERS).map((v, i) => {
        if (v.t !== 'str') throw new DecodeError(`${what}.removed[${i}]: must be str, got ${v.t}`);
        return memberIdValue(v.v, `${what}.removed[${i}]`);
      });
      if (new Set(removed).size !== removed.length) throw new DecodeError(`${what}: a member removed twice`);
      return { ...common, op, reason: reason as RotationReason, removed };
    }
    case 'update': {
      f.only([...CHAIN_COMMON, 'cert', 'removed']);
      const removed = f.arr('removed', 1);
      const id = removed[0];
      if (id === undefined) throw new DecodeError(`${what}: an update names the member it replaces`);
      if (id.t !== 'str') throw new DecodeError(`${what}.removed[0]: must be str, got ${id.t}`);
      return { ...common, op, cert: f.bin('cert', { min: 1, max: MAX_CERT }), removed: memberIdValue(id.v, `${what}.removed[0]`) };
    }
    default:
      throw new DecodeError(`${what}: unknown op "${op}"`);
  }
}

/** Plaintext of a sealed epoch key (`chain.key`, `resync.keys`): sealed from the owner to one member. */
export interface KeyBody {
  readonly room: Uint8Array;
  readonly epoch: number;
  readonly firstIdx: number;
  readonly key: Uint8Array;
}
export function encodeKeyBody(r: KeyBody): Uint8Array {
  return encode({ room: r.room, epoch: r.epoch, first_idx: r.firstIdx, key: r.key });
}
export function decodeKeyBody(bytes: Uint8Array): KeyBody {
  const f = limited(bytes, 1024, 'sealed key').only(['room', 'epoch', 'first_idx', 'key']);
  return { room: f.bin('room', 16), epoch: f.int('epoch', IDX), firstIdx: f.int('first_idx', IDX), key: f.bin('key', 32) };
}

/** Plaintext of join-request.sealed. */
export interface JoinSecret {
  readonly room: Uint8Array;
  readonly token: Uint8Array;
  readonly jkey: Uint8Array;
  readonly npub: BoxPublicKey;
  readonly name: string;
}
export function encodeJoinSecret(s: JoinSecret): Uint8Array {
  return encode({ room: s.room, token: s.token, jkey: s.jkey, npub: s.npub, name: s.name });
}
export function decodeJoinSecret(bytes: Uint8Array): JoinSecret {
  const what = 'join secret';
  const f = limited(bytes, 1024, what).only(['room', 'token', 'jkey', 'npub', 'name']);
  return {
    room: f.bin('room', 16),
    token: f.bin('token', 32),
    jkey: f.bin('jkey', 32),
    npub: boxPublicField(f, 'npub', what),
    name: f.str('name', MAX_NAME),
  };
}

/** Plaintext of join-accept.sealed. */
export interface AcceptBundle {
  readonly room: Uint8Array;
  readonly name?: string;
  readonly epoch: number;
  readonly key: Uint8Array;
  readonly ann: Uint8Array;
  readonly certs: readonly Uint8Array[];
}
export function encodeAcceptBundle(b: AcceptBundle): Uint8Array {
  return encode({ room: b.room, name: b.name, epoch: b.epoch, key: b.key, ann: b.ann, certs: [...b.certs] });
}
export function decodeAcceptBundle(bytes: Uint8Array): AcceptBundle {
  const f = limited(bytes, MAX_SEALED, 'join accept').only(['room', 'name', 'epoch', 'key', 'ann', 'certs']);
  const name = f.optional('name', (k) => f.str(k, MAX_NAME));
  return {
    room: f.bin('room', 16),
    ...(name === undefined ? {} : { name }),
    epoch: f.int('epoch', IDX),
    key: f.bin('key', 32),
    ann: f.bin('ann', { min: 1, max: MAX_ANN }),
    certs: f.arr('certs', MAX_MEMBERS).map((v) => binItem(v, MAX_CERT, 'join accept.certs')),
  };
}

/**
 * The signed part of a message envelope (section 5.6). `chain` and `prev` are null only in
 * format-1 envelopes (written before the chains), which have neither field.
 */
export interface EnvelopeBody {
  readonly room: Uint8Array;
  readonly epoch: number;
  readonly from: MemberId;
  readonly seq: number;
  readonly chain: number | null;
  readonly prev: Uint8Array | null;
  readonly ct: Uint8Array;
}
export function encodeEnvelopeBody(e: EnvelopeBody): Uint8Array {
  if (e.chain === null || e.prev === null) {
    return encode({ type: 'msg', room: e.room, epoch: e.epoch, from: e.from, seq: e.seq, ct: e.ct });
  }
  return encode({ type: 'msg', room: e.room, epoch: e.epoch, from: e.from, seq: e.seq, chain: e.chain, prev: e.prev, ct: e.ct });
}
export function decodeEnvelopeBody(bytes: Uint8Array): EnvelopeBody {
  const f = limited(bytes, MAX_ENVELOPE, 'envelope').only(['type', 'room', 'epoch', 'from', 'seq', 'chain', 'prev', 'ct']);
  f.type('msg');
  // Both chain fields or neither (format 1): one encoding per meaning.
  if (f.has('chain') !== f.has('prev')) throw new DecodeError('envelope: chain and prev come together');
  const v2 = f.has('chain');
  return {
    room: f.bin('room', 16),
    epoch: f.int('epoch', IDX),
    from: memberIdField(f, 'from', 'envelope'),
    seq: f.int('seq', { min: 1, max: Number.MAX_SAFE_INTEGER }),
    chain: v2 ? f.int('chain', IDX) : null,
    prev: v2 ? f.bin('prev', 32) : null,
    ct: f.bin('ct', { min: 1, max: MAX_ENVELOPE }),
  };
}

/**
 * The encrypted message body: a text, or a file offer (section 5.17.1; its strict decoder is
 * protocol/files/offer.ts). A file body has an empty `text` and the offer's own `ts`.
 */
export type MessageBody = TextBody | FileBody;
export interface TextBody {
  readonly text: string;
  readonly ts: number;
  readonly file?: undefined;
}
export interface FileBody {
  readonly text: '';
  readonly ts: number;
  readonly file: FileOffer;
}
export function fileBody(offer: FileOffer): FileBody {
  return { text: '', ts: offer.ts, file: offer };
}
export function encodeBody(b: MessageBody): Uint8Array {
  if (b.file !== undefined) {
    if (b.ts !== b.file.ts) throw new RangeError("a file body carries the offer's ts");
    return encodeFileOffer(b.file);
  }
  return encode({ type: 'text', text: b.text, ts: b.ts });
}
export function decodeBody(bytes: Uint8Array): MessageBody {
  const f = limited(bytes, MAX_ENVELOPE, 'message body');
  const type = f.str('type', 16);
  if (type === 'file') return fileBody(decodeFileOffer(bytes));
  f.only(['type', 'text', 'ts']);
  f.type('text');
  return { text: f.str('text', MAX_TEXT), ts: f.int('ts', { min: 0, max: Number.MAX_SAFE_INTEGER }) };
}

export { decode };
