/**
 * Wire messages of the room protocol (docs/PROTOCOL.md section 5.12) and the signed or sealed
 * structures inside them (5.4-5.7). One strict decoder per message; closed field lists; every
 * failure is a DecodeError.
 */
import type { BoxPublicKey, EcPublicKey } from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
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
export const MAX_ANN = 256 * 1024;
const MAX_CODE = 64;
const IDX = { min: 0, max: Number.MAX_SAFE_INTEGER };

export interface RekeyWire {
  readonly ann: Uint8Array;
  readonly key: Uint8Array;
}
export interface HistoryEntryWire {
  readonly idx: number;
  readonly from: MemberId;
  readonly env: Uint8Array;
}

export type ToOwner =
  | { readonly type: 'join-request'; readonly invite: Uint8Array; readonly ipub: EcPublicKey; readonly sealed: Uint8Array }
  | { readonly type: 'join-confirm'; readonly invite: Uint8Array; readonly proof: Uint8Array }
  | { readonly type: 'send'; readonly env: Uint8Array }
  | { readonly type: 'leave' }
  /** `more`: the next history page of a catch-up, answered without `resync` (section 5.10). */
  | { readonly type: 'sync'; readonly last_idx: number; readonly epoch: number; readonly more?: true };

export type ToMember =
  | { readonly type: 'join-accept'; readonly invite: Uint8Array; readonly sealed: Uint8Array }
  | { readonly type: 'join-refused'; readonly code: string }
  | { readonly type: 'welcome'; readonly cert: Uint8Array; readonly from_idx: number; readonly rekey?: RekeyWire }
  | { readonly type: 'refused'; readonly code: string; readonly seq?: number }
  | { readonly type: 'deliver'; readonly idx: number; readonly from: MemberId; readonly env: Uint8Array }
  /** `more`: the owner holds entries after this page; ask with `sync {more: true}` (section 5.9). */
  | {
      readonly type: 'history';
      readonly from_idx: number;
      readonly log_start: number;
      readonly entries: readonly HistoryEntryWire[];
      readonly more?: true;
    }
  | { readonly type: 'member-added'; readonly cert: Uint8Array }
  | { readonly type: 'rekey'; readonly ann: Uint8Array; readonly key: Uint8Array }
  | { readonly type: 'removed'; readonly reason: RemovalReason }
  | { readonly type: 'resync'; readonly certs: readonly Uint8Array[]; readonly rekey?: RekeyWire };

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

function rekeyField(f: Fields, key: string, _what: string): RekeyWire | undefined {
  return f.optional(key, (k) => {
    const r = f.map_(k).only(['ann', 'key']);
    return { ann: r.bin('ann', { min: 1, max: MAX_ANN }), key: r.bin('key', { min: 1, max: 4096 }) };
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
    case 'join-request':
      f.only(['type', 'invite', 'ipub', 'sealed']);
      return { type, invite: f.bin('invite', 32), ipub: ecPublicField(f, 'ipub', type), sealed: f.bin('sealed', { min: 1, max: 4096 }) };
    case 'join-confirm':
      f.only(['type', 'invite', 'proof']);
      return { type, invite: f.bin('invite', 32), proof: f.bin('proof', { min: 1, max: 1024 }) };
    case 'send':
      f.only(['type', 'env']);
      return { type, env: f.bin('env', { min: 1, max: MAX_ENVELOPE }) };
    case 'leave':
      f.only(['type']);
      return { type };
    case 'sync': {
      f.only(['type', 'last_idx', 'epoch', 'more']);
      const more = trueFlag(f, 'more', type);
      return {
        type,
        last_idx: f.int('last_idx', { min: -1, max: Number.MAX_SAFE_INTEGER }),
        epoch: f.int('epoch', { min: -1, max: Number.MAX_SAFE_INTEGER }),
        ...(more ? { more } : {}),
      };
    }
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
    case 'join-accept':
      f.only(['type', 'invite', 'sealed']);
      return { type, invite: f.bin('invite', 32), sealed: f.bin('sealed', { min: 1, max: MAX_SEALED }) };
    case 'join-refused':
      f.only(['type', 'code']);
      return { type, code: f.str('code', MAX_CODE) };
    case 'welcome': {
      f.only(['type', 'cert', 'from_idx', 'rekey']);
      const rekey = rekeyField(f, 'rekey', type);
      return { type, cert: f.bin('cert', { min: 1, max: MAX_CERT }), from_idx: f.int('from_idx', IDX), ...(rekey ? { rekey } : {}) };
    }
    case 'refused': {
      f.only(['type', 'code', 'seq']);
      const seq = f.optional('seq', (k) => f.int(k, { min: 1, max: Number.MAX_SAFE_INTEGER }));
      return { type, code: f.str('code', MAX_CODE), ...(seq === undefined ? {} : { seq }) };
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
    case 'member-added':
      f.only(['type', 'cert']);
      return { type, cert: f.bin('cert', { min: 1, max: MAX_CERT }) };
    case 'rekey':
      f.only(['type', 'ann', 'key']);
      return { type, ann: f.bin('ann', { min: 1, max: MAX_ANN }), key: f.bin('key', { min: 1, max: 4096 }) };
    case 'removed':
      f.only(['type', 'reason']);
      return { type, reason: removalReason(f.str('reason', 16), type) };
    case 'resync': {
      f.only(['type', 'certs', 'rekey']);
      const rekey = rekeyField(f, 'rekey', type);
      const certs = f.arr('certs', MAX_MEMBERS).map((v) => binItem(v, MAX_CERT, 'resync.certs'));
      return { type, certs, ...(rekey ? { rekey } : {}) };
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

/** Plaintext of rekey.key (sealed from the owner to one member). */
export interface RekeyKeyBody {
  readonly room: Uint8Array;
  readonly epoch: number;
  readonly annHash: Uint8Array;
  readonly key: Uint8Array;
}
export function encodeRekeyKey(r: RekeyKeyBody): Uint8Array {
  return encode({ room: r.room, epoch: r.epoch, ann_hash: r.annHash, key: r.key });
}
export function decodeRekeyKey(bytes: Uint8Array): RekeyKeyBody {
  const f = limited(bytes, 1024, 'rekey key').only(['room', 'epoch', 'ann_hash', 'key']);
  return { room: f.bin('room', 16), epoch: f.int('epoch', IDX), annHash: f.bin('ann_hash', 32), key: f.bin('key', 32) };
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

/** The signed part of a message envelope (section 5.6). */
export interface EnvelopeBody {
  readonly room: Uint8Array;
  readonly epoch: number;
  readonly from: MemberId;
  readonly seq: number;
  readonly ct: Uint8Array;
}
export function encodeEnvelopeBody(e: EnvelopeBody): Uint8Array {
  return encode({ type: 'msg', room: e.room, epoch: e.epoch, from: e.from, seq: e.seq, ct: e.ct });
}
export function decodeEnvelopeBody(bytes: Uint8Array): EnvelopeBody {
  const f = limited(bytes, MAX_ENVELOPE, 'envelope').only(['type', 'room', 'epoch', 'from', 'seq', 'ct']);
  f.type('msg');
  return {
    room: f.bin('room', 16),
    epoch: f.int('epoch', IDX),
    from: memberIdField(f, 'from', 'envelope'),
    seq: f.int('seq', { min: 1, max: Number.MAX_SAFE_INTEGER }),
    ct: f.bin('ct', { min: 1, max: MAX_ENVELOPE }),
  };
}

/** The encrypted message body. */
export interface MessageBody {
  readonly text: string;
  readonly ts: number;
}
export function encodeBody(b: MessageBody): Uint8Array {
  return encode({ type: 'text', text: b.text, ts: b.ts });
}
export function decodeBody(bytes: Uint8Array): MessageBody {
  const f = limited(bytes, MAX_ENVELOPE, 'message body').only(['type', 'text', 'ts']);
  f.type('text');
  return { text: f.str('text', MAX_TEXT), ts: f.int('ts', { min: 0, max: Number.MAX_SAFE_INTEGER }) };
}

export { decode };
