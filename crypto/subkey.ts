/**
 * HKDF-SHA256 (RFC 5869) over WebCrypto (browsers; Node >= 19 has it too): one key per purpose from
 * a uniformly random key, e.g. the web app's file-chunk storage key from the data key D
 * (docs/PROTOCOL.md 6.7). Checks its inputs and names the bad one; the result is a fresh copy.
 */
import { copyBytes, requireBytes, type Bytes } from './bytes.ts';
import { InputError, KeyError } from './errors.ts';

/** Longest output RFC 5869 allows for SHA-256 (255 blocks of 32 bytes). */
const MAX_OUTPUT = 255 * 32;

export async function hkdfSha256(ikm: Uint8Array, info: Uint8Array, length = 32, salt: Uint8Array = new Uint8Array(0)): Promise<Bytes> {
  requireBytes(ikm, 'ikm');
  requireBytes(info, 'info');
  requireBytes(salt, 'salt');
  if (ikm.length < 32) throw new KeyError(`ikm: expected at least 32 bytes of key, got ${ikm.length}`);
  if (!Number.isInteger(length) || length < 1 || length > MAX_OUTPUT)
    throw new InputError(`length: must be 1..${MAX_OUTPUT}, got ${length}`);
  const subtle = globalThis.crypto.subtle;
  const base = await subtle.importKey('raw', copyBytes(ikm), 'HKDF', false, ['deriveBits']);
  // A variable, not a literal: some lib typings of deriveBits' parameter omit HKDF's `info`.
  const params = { name: 'HKDF', hash: 'SHA-256', salt: copyBytes(salt), info: copyBytes(info) };
  const bits = await subtle.deriveBits(params, base, length * 8);
  return copyBytes(new Uint8Array(bits));
}
