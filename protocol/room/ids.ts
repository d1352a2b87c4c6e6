/** Derived names and codes of section 5.1, 5.3 and 5.11: all hashes with their own label. */
import { concatBytes, sha256, sha512, toHex, utf8Encode, type BoxPublicKey, type EcPublicKey } from '../../crypto/index.ts';
import { encode, type Encodable } from '../msgpack.ts';
import type { InviteId, MemberId, PeerKeyHex } from './types.ts';

export const LABEL = Object.freeze({
  memberId: 'zeroroom/v1/member-id',
  inviteId: 'zeroroom/v1/invite-id',
  saltyAuthToken: 'zeroroom/v1/saltyrtc-auth-token',
  joinAccept: 'zeroroom/v1/join-accept',
  joinConfirm: 'zeroroom/v1/join-confirm',
  msg: 'zeroroom/v1/msg',
  safetyCode: 'zeroroom/v1/safety-code',
  fingerprint: 'zeroroom/v1/fingerprint',
  roomId: 'zeroroom/v1/room-id',
  ownerKey: 'zeroroom/v1/owner-key',
  keyHash: 'zeroroom/v1/key-hash',
  members: 'zeroroom/v1/members',
});

/** 32 zero bytes: `prev` of the first chain entry and of a sender's first message (5.6, 5.7). */
export const ZERO_HASH: Uint8Array = new Uint8Array(32);

function labelled(label: string, ...parts: Uint8Array[]): Uint8Array {
  return concatBytes(utf8Encode(label), ...parts);
}

/** `ctx(...)` of the spec: the msgpack array of the arguments, a deterministic Secure Cell context. */
export function contextOf(...parts: Encodable[]): Uint8Array {
  return encode(parts);
}

export function memberIdOf(ipub: EcPublicKey): MemberId {
  return toHex(sha256(labelled(LABEL.memberId, ipub)).subarray(0, 16)) as MemberId;
}

/** Section 5.1: the room id of a room created by this version, from the owner's per-room peer key. */
export function roomIdOf(npub: BoxPublicKey | Uint8Array): Uint8Array {
  return sha256(labelled(LABEL.roomId, npub)).subarray(0, 16);
}

/** Section 5.3: the 16-byte commitment a v2 invite carries instead of the owner's identity key. */
export function ownerKeyCommit(opub: EcPublicKey | Uint8Array): Uint8Array {
  return sha256(labelled(LABEL.ownerKey, opub)).subarray(0, 16);
}

/** Section 5.7: the hash of an epoch key that chain entries commit to. */
export function keyHashOf(room: Uint8Array, epoch: number, key: Uint8Array): Uint8Array {
  return sha256(labelled(LABEL.keyHash, contextOf(room, epoch, key)));
}

export function peerKeyHex(npub: BoxPublicKey | Uint8Array): PeerKeyHex {
  return toHex(npub) as PeerKeyHex;
}

/** 32 bytes naming an invite on the wire without revealing its token. */
export function inviteIdBytes(token: Uint8Array): Uint8Array {
  return sha256(labelled(LABEL.inviteId, token));
}

export function inviteIdOf(token: Uint8Array): InviteId {
  return toHex(inviteIdBytes(token)) as InviteId;
}

/** The SaltyRTC one-time auth token for the first contact (section 5.3): not the token itself. */
export function saltyAuthToken(token: Uint8Array): Uint8Array {
  return sha256(labelled(LABEL.saltyAuthToken, token));
}

/** Section 5.11: 6 groups of 5 digits over the room id and the announcement chain head. */
export function safetyCode(room: Uint8Array, annHash: Uint8Array): string {
  const s = sha512(labelled(LABEL.safetyCode, room, annHash));
  const groups: string[] = [];
  for (let k = 0; k < 6; k++) {
    let n = 0;
    for (let i = 0; i < 5; i++) n = n * 256 + (s[5 * k + i] as number);
    groups.push(String(n % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

/** A member's key fingerprint: 8 groups of 4 hex digits. */
export function fingerprint(ipub: EcPublicKey, npub: BoxPublicKey): string {
  const hex = toHex(sha256(labelled(LABEL.fingerprint, ipub, npub)).subarray(0, 16));
  return hex.match(/.{4}/g)!.join(' ');
}
