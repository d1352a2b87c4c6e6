/** Key fields read from the wire: checked with the crypto layer, failures become DecodeError. */
import { asBoxPublicKey, asEcPublicKey, type BoxPublicKey, type EcPublicKey } from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../errors.ts';
import type { Fields } from '../msgpack.ts';

export function ecPublicField(f: Fields, key: string, what: string): EcPublicKey {
  const bytes = f.bin(key, 45);
  try {
    return asEcPublicKey(bytes, key);
  } catch (e) {
    if (e instanceof ZeroRoomError) throw new DecodeError(`${what}: field "${key}" is not a Themis EC public key`, { cause: e });
    throw e;
  }
}

export function boxPublicField(f: Fields, key: string, what: string): BoxPublicKey {
  const bytes = f.bin(key, 32);
  try {
    return asBoxPublicKey(bytes, key);
  } catch (e) {
    if (e instanceof ZeroRoomError) throw new DecodeError(`${what}: field "${key}" is not a NaCl public key`, { cause: e });
    throw e;
  }
}
