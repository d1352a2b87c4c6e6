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
 * box.after and secretbox are the same construction (XSalsa20-Poly1305 under a 32-byte key). The
 * high-level tweetnacl calls copy the message into and out of its zero-padded buffers one byte at a
 * time, which bench:link measured as ~20% of the link's CPU for 16 KiB frames; these call tweetnacl's
 * own lowlevel primitives with typed-array copies instead. The output is byte-for-byte the same
 * (test/crypto/nacl.test.ts compares both against nacl.secretbox for random inputs).
 */
const ZERO_BYTES = 32; // crypto_secretbox_ZEROBYTES
const BOX_ZERO_BYTES = 16; // crypto_secretbox_BOXZEROBYTES
/** tweetnacl's lowlevel API exists at runtime but is not in its type declarations. */
interface SecretboxLowlevel {
  crypto_secretbox(c: Uint8Array, m: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
  crypto_secretbox_open(m: Uint8Array, c: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { lowlevel: SecretboxLowlevel }).lowlevel;

function sealAfter(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Bytes {
  const m = new Uint8Array(ZERO_BYTES + message.length);
  m.set(message, ZERO_BYTES);
  const c = new Uint8Array(new ArrayBuffer(m.length));
  lowlevel.crypto_secretbox(c, m, m.length, nonce, key);
  // A fresh ArrayBuffer-backed result without the 16 leading zero bytes.
  return new Uint8Array(c.buffer.slice(BOX_ZERO_BYTES));
}

function openAfter(boxed: Uint8Array, nonce: Uint8Array, key: Uint8Array, what: string): Bytes {
  const c = new Uint8Array(BOX_ZERO_BYTES + boxed.length);
  c.set(boxed, BOX_ZERO_BYTES);
  const m = new Uint8Array(new ArrayBuffer(c.length));
  if (lowlevel.crypto_secretbox_open(m, c, c.length, nonce, key) !== 0) return opened(null, what);
  return new Uint8Array(m.buffer.slice(ZERO_BYTES));
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
