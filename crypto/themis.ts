import type { Brand } from './brand.ts';
import { copyBytes, requireBytes, type Bytes } from './bytes.ts';
import { AuthError, InputError, KeyError } from './errors.ts';
import { themisReady, type Themis } from './init.ts';
import { systemRandom, type RandomBytes } from './random.ts';

// ---- Identity keys: Themis EC (secp256r1) keys in Themis' own container format ----

/** Themis EC public key: 45 bytes, tag "UEC2", length, CRC, compressed point. */
export type EcPublicKey = Brand<Bytes, 'EcPublicKey'>;
/** Themis EC private key: 45 bytes, tag "REC2", length, CRC, scalar. */
export type EcPrivateKey = Brand<Bytes, 'EcPrivateKey'>;
export interface IdentityKeyPair {
  publicKey: EcPublicKey;
  privateKey: EcPrivateKey;
}

export const EC_KEY_LENGTH = 45;
const EC_PUBLIC_TAG = [0x55, 0x45, 0x43, 0x32]; // "UEC2"
const EC_PRIVATE_TAG = [0x52, 0x45, 0x43, 0x32]; // "REC2"
// Secure Message container tags (little-endian uint32 0x26042620 / 0x26042720: EC signed / EC encrypted).
const SM_EC_SIGNED_TAG = [0x20, 0x26, 0x04, 0x26];
const SM_EC_ENCRYPTED_TAG = [0x20, 0x27, 0x04, 0x26];

/** Upper bound for one Secure Message / Secure Cell input; far above any chat frame. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const MAX_CONTEXT_BYTES = 1024;

function hasTag(bytes: Uint8Array, tag: number[]): boolean {
  return bytes.length >= tag.length && tag.every((b, i) => bytes[i] === b);
}

type ThemisPublicKey = InstanceType<Themis['PublicKey']>;
type ThemisPrivateKey = InstanceType<Themis['PrivateKey']>;

function checkEcShape(bytes: unknown, kind: 'public' | 'private', name: string): asserts bytes is Uint8Array {
  requireBytes(bytes, name);
  const tag = kind === 'public' ? EC_PUBLIC_TAG : EC_PRIVATE_TAG;
  if (bytes.length !== EC_KEY_LENGTH || !hasTag(bytes, tag)) {
    const tagName = kind === 'public' ? 'UEC2' : 'REC2';
    throw new KeyError(`${name}: not a Themis EC ${kind} key (${EC_KEY_LENGTH} bytes, tag ${tagName})`);
  }
}

/** Length/tag check here, then Themis checks the container CRC and key kind. */
function ecPublic(th: Themis, bytes: unknown, name: string): ThemisPublicKey {
  checkEcShape(bytes, 'public', name);
  try {
    return new th.PublicKey(bytes);
  } catch (e) {
    throw new KeyError(`${name}: invalid Themis EC public key`, { cause: e });
  }
}

function ecPrivate(th: Themis, bytes: unknown, name: string): ThemisPrivateKey {
  checkEcShape(bytes, 'private', name);
  try {
    return new th.PrivateKey(bytes);
  } catch (e) {
    throw new KeyError(`${name}: invalid Themis EC private key`, { cause: e });
  }
}

/** Validates and brands raw bytes (e.g. from storage or the wire) as an EC public key; copies. */
export function asEcPublicKey(bytes: Uint8Array, name = 'publicKey'): EcPublicKey {
  ecPublic(themisReady(), bytes, name);
  return copyBytes(bytes) as EcPublicKey;
}

/** Validates and brands raw bytes as an EC private key; copies. */
export function asEcPrivateKey(bytes: Uint8Array, name = 'privateKey'): EcPrivateKey {
  ecPrivate(themisReady(), bytes, name);
  return copyBytes(bytes) as EcPrivateKey;
}

/** A fresh identity key pair (Themis' own CSPRNG inside wasm). */
export function generateIdentity(): IdentityKeyPair {
  const th = themisReady();
  const pair = new th.KeyPair();
  return { publicKey: copyBytes(pair.publicKey) as EcPublicKey, privateKey: copyBytes(pair.privateKey) as EcPrivateKey };
}

function checkMessage(message: unknown, name: string): asserts message is Uint8Array {
  requireBytes(message, name);
  if (message.length === 0) throw new InputError(`${name} must not be empty`);
  if (message.length > MAX_MESSAGE_BYTES) throw new InputError(`${name} is larger than ${MAX_MESSAGE_BYTES} bytes`);
}

/**
 * Secure Message sign: the output CONTAINS `message` in clear, followed by an ECDSA signature.
 * Signing is not encryption.
 */
export function sign(privateKey: EcPrivateKey, message: Uint8Array): Bytes {
  const th = themisReady();
  const priv = ecPrivate(th, privateKey, 'privateKey');
  checkMessage(message, 'message');
  return copyBytes(new th.SecureMessageSign(priv).sign(message));
}

/**
 * Signed Secure Message layout: tag(4) | message length(4, LE) | signature length(4, LE) | message |
 * DER signature. Themis itself accepts trailing bytes after the signature; we require the lengths
 * to cover the input exactly, so one signed message has one byte form per signature.
 */
const SIGNED_HEADER_BYTES = 12;
const MAX_EC_SIGNATURE_BYTES = 72; // DER ECDSA P-256: 2 + 2 * (2 + 33)

function checkSignedFraming(signed: Uint8Array): void {
  if (signed.length < SIGNED_HEADER_BYTES) throw new AuthError('signed: truncated header');
  const view = new DataView(signed.buffer, signed.byteOffset, signed.byteLength);
  const messageLength = view.getUint32(4, true);
  const signatureLength = view.getUint32(8, true);
  if (signatureLength === 0 || signatureLength > MAX_EC_SIGNATURE_BYTES) throw new AuthError('signed: bad signature length');
  if (SIGNED_HEADER_BYTES + messageLength + signatureLength !== signed.length) {
    throw new AuthError('signed: lengths do not match the input (truncated or trailing bytes)');
  }
}

/** Checks a signed Secure Message and returns the embedded message, or throws AuthError. */
export function verify(publicKey: EcPublicKey, signed: Uint8Array): Bytes {
  const th = themisReady();
  const pub = ecPublic(th, publicKey, 'publicKey');
  requireBytes(signed, 'signed');
  if (!hasTag(signed, SM_EC_SIGNED_TAG)) throw new AuthError('signed: not an EC-signed Secure Message');
  checkSignedFraming(signed);
  try {
    return copyBytes(new th.SecureMessageVerify(pub).verify(signed));
  } catch (e) {
    throw new AuthError('signed: signature check failed', { cause: e });
  }
}

/** Secure Message encrypt from the sender's private key to the recipient's public key. */
export function sealTo(senderPrivate: EcPrivateKey, recipientPublic: EcPublicKey, plaintext: Uint8Array): Bytes {
  const th = themisReady();
  const priv = ecPrivate(th, senderPrivate, 'senderPrivate');
  const pub = ecPublic(th, recipientPublic, 'recipientPublic');
  checkMessage(plaintext, 'plaintext');
  const pair = new th.KeyPair(priv, pub);
  return copyBytes(new th.SecureMessage(pair).encrypt(plaintext));
}

/**
 * Opens a Secure Message sealed by `senderPublic` to us. Only the encrypted form is accepted:
 * a merely signed message (readable by anyone) must not pass as a private one.
 */
export function openFrom(recipientPrivate: EcPrivateKey, senderPublic: EcPublicKey, ciphertext: Uint8Array): Bytes {
  const th = themisReady();
  const priv = ecPrivate(th, recipientPrivate, 'recipientPrivate');
  const pub = ecPublic(th, senderPublic, 'senderPublic');
  requireBytes(ciphertext, 'ciphertext');
  if (!hasTag(ciphertext, SM_EC_ENCRYPTED_TAG)) throw new AuthError('ciphertext: not an EC-encrypted Secure Message');
  try {
    const pair = new th.KeyPair(priv, pub);
    return copyBytes(new th.SecureMessage(pair).decrypt(ciphertext));
  } catch (e) {
    throw new AuthError('ciphertext: decryption failed (tampered, wrong key or wrong sender)', { cause: e });
  }
}

// ---- Secure Cell, Seal mode, key mode ----

/** A Secure Cell key: exactly 32 random bytes (Themis would silently accept a 1-byte key). */
export type SymmetricKey = Brand<Bytes, 'SymmetricKey'>;
export const SYMMETRIC_KEY_LENGTH = 32;

export function generateSymmetricKey(random: RandomBytes = systemRandom): SymmetricKey {
  const bytes = random(SYMMETRIC_KEY_LENGTH);
  return asSymmetricKey(bytes, 'generated key');
}

/** Checks the length and brands a copy; does not need initCrypto(). */
export function asSymmetricKey(bytes: Uint8Array, name = 'key'): SymmetricKey {
  requireBytes(bytes, name);
  if (bytes.length !== SYMMETRIC_KEY_LENGTH) {
    throw new KeyError(`${name}: expected ${SYMMETRIC_KEY_LENGTH} bytes, got ${bytes.length}`);
  }
  return copyBytes(bytes) as SymmetricKey;
}

function checkSymmetricKey(key: unknown): asserts key is Uint8Array {
  requireBytes(key, 'key');
  if (key.length !== SYMMETRIC_KEY_LENGTH) throw new KeyError(`key: expected ${SYMMETRIC_KEY_LENGTH} bytes, got ${key.length}`);
}

function checkContext(context: unknown): asserts context is Uint8Array {
  requireBytes(context, 'context');
  if (context.length === 0) throw new InputError('context must not be empty (it binds the data to its purpose)');
  if (context.length > MAX_CONTEXT_BYTES) throw new InputError(`context is longer than ${MAX_CONTEXT_BYTES} bytes`);
}

/** Secure Cell Seal with `context` (authenticated, not stored in the output). */
export function cellSeal(key: SymmetricKey, plaintext: Uint8Array, context: Uint8Array): Bytes {
  const th = themisReady();
  checkSymmetricKey(key);
  checkMessage(plaintext, 'plaintext');
  checkContext(context);
  return copyBytes(th.SecureCellSeal.withKey(key).encrypt(plaintext, context));
}

/** Opens a Secure Cell Seal; wrong key, wrong context, tampering or truncation -> AuthError. */
export function cellOpen(key: SymmetricKey, sealed: Uint8Array, context: Uint8Array): Bytes {
  const th = themisReady();
  checkSymmetricKey(key);
  requireBytes(sealed, 'sealed');
  checkContext(context);
  if (sealed.length === 0 || sealed.length > MAX_MESSAGE_BYTES + 1024) throw new AuthError('sealed: impossible length');
  if (sealed.length !== sealedLengthFromHeader(sealed)) {
    throw new AuthError('sealed: length does not match its header (truncated or trailing bytes)');
  }
  try {
    return copyBytes(th.SecureCellSeal.withKey(key).decrypt(sealed, context));
  } catch (e) {
    throw new AuthError('sealed: authentication failed (tampered, wrong key or wrong context)', { cause: e });
  }
}

/**
 * The length a key-mode Secure Cell Seal must have, from its header: four little-endian u32s
 * (algorithm, IV length, auth tag length, message length), then the IV, the tag and the message.
 * Themis itself accepts a trailing byte about once in 200 tries (measured: 11 of 2,000), so we
 * require the exact length. Returns -1 when the header cannot be read.
 */
function sealedLengthFromHeader(sealed: Uint8Array): number {
  const HEADER = 16;
  if (sealed.length < HEADER) return -1;
  const view = new DataView(sealed.buffer, sealed.byteOffset, HEADER);
  const ivLength = view.getUint32(4, true);
  const tagLength = view.getUint32(8, true);
  const messageLength = view.getUint32(12, true);
  if (ivLength > 64 || tagLength > 64) return -1;
  return HEADER + ivLength + tagLength + messageLength;
}
