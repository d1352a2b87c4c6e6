import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import nacl from 'tweetnacl';
import type { Brand } from './brand.ts';
import { copyBytes, requireBytes, type Bytes } from './bytes.ts';
import { AuthError, InputError, KeyError } from './errors.ts';
import { systemRandom, type RandomBytes } from './random.ts';

/** NaCl (XSalsa20-Poly1305, Curve25519) via tweetnacl, for SaltyRTC. All keys are 32 bytes. */
export type BoxPublicKey = Brand<Bytes, 'BoxPublicKey'>;
export type BoxSecretKey = Brand<Bytes, 'BoxSecretKey'>;
/** Result of box.before (X25519 + HSalsa20): the key box.after / box.open.after use. */
export type SharedKey = Brand<Bytes, 'SharedKey'>;
export type SecretboxKey = Brand<Bytes, 'SecretboxKey'>;
export interface BoxKeyPair {
  publicKey: BoxPublicKey;
  secretKey: BoxSecretKey;
}

export const NACL_KEY_LENGTH = 32; // = box.publicKeyLength = box.secretKeyLength = secretbox.keyLength
export const NACL_NONCE_LENGTH = 24;
export const NACL_OVERHEAD = 16; // Poly1305 tag

function checkKey(key: unknown, name: string): asserts key is Uint8Array {
  requireBytes(key, name);
  if (key.length !== NACL_KEY_LENGTH) throw new KeyError(`${name}: expected ${NACL_KEY_LENGTH} bytes, got ${key.length}`);
}

function checkNonce(nonce: unknown): asserts nonce is Uint8Array {
  requireBytes(nonce, 'nonce');
  if (nonce.length !== NACL_NONCE_LENGTH) throw new InputError(`nonce: expected ${NACL_NONCE_LENGTH} bytes, got ${nonce.length}`);
}

function opened(result: Uint8Array | null, what: string): Bytes {
  if (result === null) throw new AuthError(`${what}: authentication failed (tampered, truncated or wrong key)`);
  return copyBytes(result);
}

function checkCiphertext(box: unknown, name: string): asserts box is Uint8Array {
  requireBytes(box, name);
  // Shorter than the tag cannot be authentic; tweetnacl would also return null.
  if (box.length < NACL_OVERHEAD) throw new AuthError(`${name}: shorter than the ${NACL_OVERHEAD}-byte tag`);
}

/*
 * box.after and secretbox are the same construction (XSalsa20-Poly1305 under a 32-byte key). For
 * that construction we use @noble/ciphers (audited, pure JS like tweetnacl): bench:link measured
 * tweetnacl's Salsa20, Poly1305 and its byte-by-byte padding copies as ~40% of a busy link's CPU,
 * and noble seals and opens 16-64 KiB about 1.3-2x as fast. The output is byte-for-byte tweetnacl's
 * (test/crypto/nacl.test.ts compares both for random inputs, and the published vectors still pass).
 * Key pairs and box() (with its X25519 step) stay tweetnacl.
 */
function sealAfter(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Bytes {
  const c = xsalsa20poly1305(key, nonce).encrypt(message);
  return c.byteOffset === 0 && c.buffer instanceof ArrayBuffer && c.buffer.byteLength === c.length ? (c as Bytes) : copyBytes(c);
}

function openAfter(boxed: Uint8Array, nonce: Uint8Array, key: Uint8Array, what: string): Bytes {
  let m: Uint8Array;
  try {
    m = xsalsa20poly1305(key, nonce).decrypt(boxed);
  } catch (e) {
    // noble throws on a bad tag (and on nothing else here: lengths were checked above).
    throw new AuthError(`${what}: authentication failed (tampered, truncated or wrong key)`, { cause: e });
  }
  return m.byteOffset === 0 && m.buffer instanceof ArrayBuffer && m.buffer.byteLength === m.length ? (m as Bytes) : copyBytes(m);
}

/** Validates and brands bytes as a key of the given kind (copies). */
export function asBoxPublicKey(bytes: Uint8Array, name = 'publicKey'): BoxPublicKey {
  checkKey(bytes, name);
  return copyBytes(bytes) as BoxPublicKey;
}
export function asBoxSecretKey(bytes: Uint8Array, name = 'secretKey'): BoxSecretKey {
  checkKey(bytes, name);
  return copyBytes(bytes) as BoxSecretKey;
}
export function asSecretboxKey(bytes: Uint8Array, name = 'key'): SecretboxKey {
  checkKey(bytes, name);
  return copyBytes(bytes) as SecretboxKey;
}
export function asSharedKey(bytes: Uint8Array, name = 'shared'): SharedKey {
  checkKey(bytes, name);
  return copyBytes(bytes) as SharedKey;
}

export function generateBoxKeyPair(random: RandomBytes = systemRandom): BoxKeyPair {
  const secret = random(NACL_KEY_LENGTH);
  const pair = boxKeyPairFromSecret(secret as BoxSecretKey);
  secret.fill(0);
  return pair;
}

export function boxKeyPairFromSecret(secretKey: BoxSecretKey): BoxKeyPair {
  checkKey(secretKey, 'secretKey');
  const pair = nacl.box.keyPair.fromSecretKey(secretKey);
  return { publicKey: copyBytes(pair.publicKey) as BoxPublicKey, secretKey: copyBytes(pair.secretKey) as BoxSecretKey };
}

export function generateSecretboxKey(random: RandomBytes = systemRandom): SecretboxKey {
  return asSecretboxKey(random(NACL_KEY_LENGTH), 'generated key');
}

/** A fresh random 24-byte nonce (safe for XSalsa20: random nonces do not collide in practice). */
export function randomNonce(random: RandomBytes = systemRandom): Bytes {
  const nonce = random(NACL_NONCE_LENGTH);
  checkNonce(nonce);
  return copyBytes(nonce);
}

export function box(message: Uint8Array, nonce: Uint8Array, theirPublic: BoxPublicKey, mySecret: BoxSecretKey): Bytes {
  requireBytes(message, 'message');
  checkNonce(nonce);
  checkKey(theirPublic, 'theirPublic');
  checkKey(mySecret, 'mySecret');
  return copyBytes(nacl.box(message, nonce, theirPublic, mySecret));
}

export function boxOpen(boxed: Uint8Array, nonce: Uint8Array, theirPublic: BoxPublicKey, mySecret: BoxSecretKey): Bytes {
  checkCiphertext(boxed, 'box');
  checkNonce(nonce);
  checkKey(theirPublic, 'theirPublic');
  checkKey(mySecret, 'mySecret');
  return opened(nacl.box.open(boxed, nonce, theirPublic, mySecret), 'box');
}

export function boxBefore(theirPublic: BoxPublicKey, mySecret: BoxSecretKey): SharedKey {
  checkKey(theirPublic, 'theirPublic');
  checkKey(mySecret, 'mySecret');
  return copyBytes(nacl.box.before(theirPublic, mySecret)) as SharedKey;
}

export function boxAfter(message: Uint8Array, nonce: Uint8Array, shared: SharedKey): Bytes {
  requireBytes(message, 'message');
  checkNonce(nonce);
  checkKey(shared, 'shared');
  return sealAfter(message, nonce, shared);
}

export function boxOpenAfter(boxed: Uint8Array, nonce: Uint8Array, shared: SharedKey): Bytes {
  checkCiphertext(boxed, 'box');
  checkNonce(nonce);
  checkKey(shared, 'shared');
  return openAfter(boxed, nonce, shared, 'box');
}

export function secretbox(message: Uint8Array, nonce: Uint8Array, key: SecretboxKey): Bytes {
  requireBytes(message, 'message');
  checkNonce(nonce);
  checkKey(key, 'key');
  return sealAfter(message, nonce, key);
}

export function secretboxOpen(boxed: Uint8Array, nonce: Uint8Array, key: SecretboxKey): Bytes {
  checkCiphertext(boxed, 'box');
  checkNonce(nonce);
  checkKey(key, 'key');
  return openAfter(boxed, nonce, key, 'secretbox');
}
