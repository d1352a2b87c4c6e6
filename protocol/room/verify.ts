/**
 * Signing, sealing and the checks both roles run on certificates, announcements and message
 * envelopes (docs/PROTOCOL.md sections 5.5-5.7). Every failure is a typed RoomError.
 */
import {
  AuthError,
  asSymmetricKey,
  cellOpen,
  cellSeal,
  concatBytes,
  equalBytes,
  sha256,
  sign,
  utf8Encode,
  verify,
  type EcPrivateKey,
  type EcPublicKey,
} from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import { encode } from '../msgpack.ts';
import {
  decodeAnnBody,
  decodeBody,
  decodeCertBody,
  decodeChainBody,
  decodeEnvelopeBody,
  encodeBody,
  encodeCertBody,
  encodeChainBody,
  encodeEnvelopeBody,
  memberToWire,
  type AnnBody,
  type ChainBody,
  type EnvelopeBody,
  type MessageBody,
} from './codec.ts';
import { AuthenticityError, FreshnessError } from './errors.ts';
import { LABEL, contextOf, memberIdOf } from './ids.ts';
import type { EpochRecord, KnownMember, MemberId, MemberInfo } from './types.ts';

function checkRoom(room: Uint8Array, expected: Uint8Array, what: string): void {
  if (!equalBytes(room, expected)) throw new AuthenticityError('room.wrong-room', `${what} is for another room`);
}

export function signCert(ownerPriv: EcPrivateKey, room: Uint8Array, member: MemberInfo): Uint8Array {
  return sign(ownerPriv, encodeCertBody({ room, member }));
}

/** Verifies an owner-signed certificate and returns the member it certifies. */
export function openCert(opub: EcPublicKey, room: Uint8Array, cert: Uint8Array): MemberInfo {
  let body: Uint8Array;
  try {
    body = verify(opub, cert);
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.not-owner', 'certificate not signed by the owner', { cause: e });
    throw e;
  }
  const c = decodeCertBody(body);
  checkRoom(c.room, room, 'certificate');
  checkMember(c.member, opub, 'certificate');
  return c.member;
}

function checkMember(m: MemberInfo, opub: EcPublicKey, what: string): void {
  if (memberIdOf(m.ipub) !== m.id) throw new AuthenticityError('room.impersonation', `${what}: member id does not match its key`);
  if (m.owner !== equalBytes(m.ipub, opub))
    throw new AuthenticityError('room.impersonation', `${what}: owner flag does not match the owner key`);
}

/** Verifies an epoch announcement; a signature by anyone but the owner is room.not-owner. */
export function openAnn(opub: EcPublicKey, room: Uint8Array, ann: Uint8Array): AnnBody {
  let body: Uint8Array;
  try {
    body = verify(opub, ann);
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.not-owner', 'epoch announcement not signed by the owner', { cause: e });
    throw e;
  }
  const a = decodeAnnBody(body);
  checkRoom(a.room, room, 'epoch announcement');
  for (const m of a.members) checkMember(m, opub, 'epoch announcement');
  return a;
}

/** Section 5.7: the hash of a member list that chain entries commit to (ascending id order). */
export function membersHashOf(members: readonly MemberInfo[]): Uint8Array {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return sha256(concatBytes(utf8Encode(LABEL.members), encode(sorted.map(memberToWire))));
}

export function signChainEntry(ownerPriv: EcPrivateKey, body: ChainBody): Uint8Array {
  return sign(ownerPriv, encodeChainBody(body));
}

function ownerSigned(opub: EcPublicKey, signed: Uint8Array, what: string): Uint8Array {
  try {
    return verify(opub, signed);
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.not-owner', `${what} not signed by the owner`, { cause: e });
    throw e;
  }
}

/**
 * Verifies a chain entry (section 5.7): the owner's signature, the room, and for `add` the
 * certificate inside it. The op rules against the receiver's chain are checked by the member.
 */
export function openChainEntry(opub: EcPublicKey, room: Uint8Array, ann: Uint8Array): ChainBody {
  const c = decodeChainBody(ownerSigned(opub, ann, 'chain entry'));
  checkRoom(c.room, room, 'chain entry');
  if (c.op === 'create' && (c.n !== 0 || c.epoch !== 0 || c.firstIdx !== 0))
    throw new DecodeError('chain entry: create is entry 0 of epoch 0');
  if (c.n === 0 && c.op !== 'create') throw new DecodeError('chain entry: entry 0 is the create entry');
  return c;
}

/** An anchor head (section 5.10): a chain entry, or a format-1 announcement (a migrated owner). */
export function openAnchor(opub: EcPublicKey, room: Uint8Array, ann: Uint8Array): { entry: ChainBody } | { legacy: AnnBody } {
  const body = ownerSigned(opub, ann, 'chain entry');
  let entry: ChainBody;
  try {
    entry = decodeChainBody(body);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return { legacy: openAnn(opub, room, ann) };
  }
  checkRoom(entry.room, room, 'chain entry');
  return { entry };
}

function messageContext(room: Uint8Array, epoch: number, from: MemberId, seq: number): Uint8Array {
  return contextOf(LABEL.msg, room, epoch, from, seq);
}

export interface SealInput {
  readonly room: Uint8Array;
  readonly epoch: number;
  readonly key: Uint8Array;
  readonly from: MemberId;
  readonly seq: number;
  /** The sender's chain head position and its previous message's hash (section 5.6). */
  readonly chain: number;
  readonly prev: Uint8Array;
  readonly body: MessageBody;
}

/** Seal once with the epoch key, then sign the envelope including the ciphertext (section 5.6). */
export function sealEnvelope(senderPriv: EcPrivateKey, m: SealInput): Uint8Array {
  const ct = cellSeal(asSymmetricKey(m.key), encodeBody(m.body), messageContext(m.room, m.epoch, m.from, m.seq));
  return sign(senderPriv, encodeEnvelopeBody({ room: m.room, epoch: m.epoch, from: m.from, seq: m.seq, chain: m.chain, prev: m.prev, ct }));
}

/** Signature, sender and room of an envelope claimed to come from `from`. */
export function openEnvelope(senderIpub: EcPublicKey, env: Uint8Array, from: MemberId, room: Uint8Array): EnvelopeBody {
  let body: Uint8Array;
  try {
    body = verify(senderIpub, env);
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.bad-signature', `envelope not signed by ${from}`, { cause: e });
    throw e;
  }
  const inner = decodeEnvelopeBody(body);
  if (inner.from !== from) throw new AuthenticityError('room.impersonation', `envelope signed by ${from} claims to be from ${inner.from}`);
  checkRoom(inner.room, room, 'envelope');
  return inner;
}

export function openBody(key: Uint8Array, inner: EnvelopeBody): MessageBody {
  let plain: Uint8Array;
  try {
    plain = cellOpen(asSymmetricKey(key), inner.ct, messageContext(inner.room, inner.epoch, inner.from, inner.seq));
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.bad-ciphertext', 'message ciphertext does not open', { cause: e });
    throw e;
  }
  try {
    return decodeBody(plain);
  } catch (e) {
    throw new AuthenticityError('room.bad-ciphertext', 'message body is malformed', { cause: e });
  }
}

/**
 * The member-side epoch rule (section 5.6): at index `idx`, epoch E in force = newest known epoch
 * with first_idx <= idx; accept e = E, or e = E-1 within graceMessages indices of E's start.
 * Returns the epoch record whose key opens the message.
 */
export function epochFor(epochs: readonly EpochRecord[], idx: number, e: number, graceMessages: number): EpochRecord {
  let inForce: EpochRecord | undefined;
  for (const r of epochs) if (r.firstIdx <= idx && (inForce === undefined || r.epoch > inForce.epoch)) inForce = r;
  const rec = epochs.find((r) => r.epoch === e);
  if (inForce === undefined || e > inForce.epoch) throw new FreshnessError('room.epoch-unknown', `no key for epoch ${e}`);
  const ok = e === inForce.epoch || (e === inForce.epoch - 1 && idx < inForce.firstIdx + graceMessages);
  if (!ok) throw new FreshnessError('room.epoch-expired', `epoch ${e} is past its grace window at index ${idx}`);
  if (rec === undefined || rec.key === null) throw new FreshnessError('room.epoch-unknown', `no key for epoch ${e}`);
  return rec;
}

/** The member record (current or former) whose membership covers epoch `e`, with its index. */
export function senderFor(
  members: readonly KnownMember[],
  former: readonly KnownMember[],
  id: MemberId,
  e: number,
): { readonly list: 'members' | 'former'; readonly index: number } | null {
  const i = members.findIndex((m) => m.info.id === id && e >= m.info.epoch);
  if (i >= 0) return { list: 'members', index: i };
  const j = former.findIndex((m) => m.info.id === id && e >= m.info.epoch && e < (m.untilEpoch ?? 0));
  return j >= 0 ? { list: 'former', index: j } : null;
}
