/**
 * Member key updates (docs/PROTOCOL.md section 5.8.1): the `key-update` request a member sends
 * over its link, signed by its new identity key (possession) inside a signature by its old one
 * (authorization). One strict decoder; every failure is a typed error.
 */
import {
  AuthError,
  equalBytes,
  sign,
  verify,
  type BoxPublicKey,
  type EcPrivateKey,
  type EcPublicKey,
  type IdentityKeyPair,
} from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import { Fields, encode } from '../msgpack.ts';
import { AuthenticityError } from './errors.ts';
import { memberIdOf } from './ids.ts';
import type { MemberId } from './types.ts';
import { boxPublicField, ecPublicField } from './wire-keys.ts';

const BODY_MAX = 512;

/** The body both keys sign: `msgpack{type: "key-update", room, id, n, ipub, npub}`. */
export interface KeyUpdateBody {
  readonly room: Uint8Array;
  /** The member id the update replaces (its current one). */
  readonly id: MemberId;
  /** The member's chain head position when it asked. */
  readonly n: number;
  readonly ipub: EcPublicKey;
  readonly npub: BoxPublicKey;
}

/** The new keys a member made and stored before asking (section 5.8.1 step 1). */
export interface PendingKeys {
  readonly identity: IdentityKeyPair;
  readonly peerKey: BoxPublicKey;
}

export function encodeKeyUpdateBody(b: KeyUpdateBody): Uint8Array {
  return encode({ type: 'key-update', room: b.room, id: b.id, n: b.n, ipub: b.ipub, npub: b.npub });
}

export function decodeKeyUpdateBody(bytes: Uint8Array): KeyUpdateBody {
  const what = 'key update';
  if (bytes.length > BODY_MAX) throw new DecodeError(`${what}: larger than ${BODY_MAX} bytes`);
  const f = Fields.fromBytes(bytes, what);
  f.only(['type', 'room', 'id', 'n', 'ipub', 'npub']);
  f.type('key-update');
  const id = f.str('id', 32);
  if (!/^[0-9a-f]{32}$/.test(id)) throw new DecodeError(`${what}.id: not a member id`);
  return {
    room: f.bin('room', 16),
    id: id as MemberId,
    n: f.int('n', { min: 0, max: Number.MAX_SAFE_INTEGER }),
    ipub: ecPublicField(f, 'ipub', what),
    npub: boxPublicField(f, 'npub', what),
  };
}

/** The two signed copies of one body that `key-update {old, new}` carries (section 5.8.1). */
export interface SignedKeyUpdate {
  /** sign(old ipriv, body): the current key authorizes the replacement. */
  readonly old: Uint8Array;
  /** sign(new ipriv, body): the new key proves possession. */
  readonly new: Uint8Array;
}

export function signKeyUpdate(oldPriv: EcPrivateKey, next: IdentityKeyPair, body: KeyUpdateBody): SignedKeyUpdate {
  if (memberIdOf(next.publicKey) === body.id) throw new RangeError('key update: the new identity key is the current one');
  const bytes = encodeKeyUpdateBody(body);
  return { old: sign(oldPriv, bytes), new: sign(next.privateKey, bytes) };
}

/**
 * Checks both signatures of an update from the member whose current identity key is `oldIpub`:
 * the old key's over the body, then the new key's (the one the body names) over the same bytes.
 * room.bad-signature when either fails; DecodeError for a malformed body.
 */
export function openKeyUpdate(oldIpub: EcPublicKey, upd: SignedKeyUpdate): KeyUpdateBody {
  let bytes: Uint8Array;
  try {
    bytes = verify(oldIpub, upd.old);
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.bad-signature', 'key update not signed by the current key', { cause: e });
    throw e;
  }
  const body = decodeKeyUpdateBody(bytes);
  let same: Uint8Array;
  try {
    same = verify(body.ipub, upd.new);
  } catch (e) {
    if (e instanceof AuthError) throw new AuthenticityError('room.bad-signature', 'key update not signed by the new key', { cause: e });
    throw e;
  }
  if (!equalBytes(same, bytes)) throw new AuthenticityError('room.bad-signature', 'the new key signed another key update');
  return body;
}
