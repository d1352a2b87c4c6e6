/**
 * Sealed records of one room (docs/PROTOCOL.md section 6): the room record (who we are in it, where
 * its signaling server is, the room machine's state) and the room's identity (key pairs).
 */
import {
  asBoxPublicKey,
  asBoxSecretKey,
  asEcPrivateKey,
  asEcPublicKey,
  type BoxKeyPair,
  type IdentityKeyPair,
} from '../../crypto/index.ts';
import { encode, Fields } from '../../protocol/msgpack.ts';
import { MAX_STATE_BYTES, decodeRoomState, encodeMemberState, encodeOwnerState } from '../../protocol/room/state-codec.ts';
import type { MemberState, OwnerState } from '../../protocol/room/types.ts';

export interface RoomRecord {
  readonly id: string;
  readonly role: 'owner' | 'member';
  /** Signaling server of the room (owner: from settings at creation; member: from the invite). */
  readonly server: string;
  /** Hex of the pinned signaling server key, '' when not pinned. */
  readonly serverKey: string;
  readonly createdAt: number;
  readonly state: OwnerState | MemberState;
}

export function encodeRoomRecord(r: RoomRecord): Uint8Array {
  return encode({
    v: 1,
    id: r.id,
    role: r.role,
    server: r.server,
    serverKey: r.serverKey,
    createdAt: r.createdAt,
    state: r.state.role === 'owner' ? encodeOwnerState(r.state) : encodeMemberState(r.state),
  });
}

export function decodeRoomRecord(bytes: Uint8Array): RoomRecord {
  const f = Fields.fromBytes(bytes, 'room record');
  f.int('v', { min: 1, max: 1 });
  const role = f.str('role', 16);
  if (role !== 'owner' && role !== 'member') throw new TypeError(`room record: bad role ${role}`);
  // The machine state's own strict decoder (docs/PROTOCOL.md 5.15): StateError on anything malformed.
  const state = decodeRoomState(f.bin('state', { min: 1, max: MAX_STATE_BYTES }));
  if (state.role !== role) throw new TypeError('room record: machine state does not match the role');
  return {
    id: f.str('id', 64),
    role,
    server: f.str('server', 2048),
    serverKey: f.str('serverKey', 128),
    createdAt: f.int('createdAt', { min: 0, max: Number.MAX_SAFE_INTEGER }),
    state,
  };
}

export interface RoomIdentity {
  readonly identity: IdentityKeyPair;
  readonly peer: BoxKeyPair;
}

export function encodeIdentity(i: RoomIdentity): Uint8Array {
  return encode({ v: 1, ipub: i.identity.publicKey, ipriv: i.identity.privateKey, npub: i.peer.publicKey, nsec: i.peer.secretKey });
}

export function decodeIdentity(bytes: Uint8Array): RoomIdentity {
  const f = Fields.fromBytes(bytes, 'identity record');
  f.int('v', { min: 1, max: 1 });
  return {
    identity: { publicKey: asEcPublicKey(f.bin('ipub', 45)), privateKey: asEcPrivateKey(f.bin('ipriv', 45)) },
    peer: { publicKey: asBoxPublicKey(f.bin('npub', 32)), secretKey: asBoxSecretKey(f.bin('nsec', 32)) },
  };
}
