/**
 * NaCl box.before with the expensive half native (docs: shared/notes/platform.md "NaCl on the
 * server"): X25519 through node:crypto (OpenSSL), then HSalsa20 from tweetnacl, exactly as
 * tweetnacl's crypto_box_beforenm does. test/signaling/nacl-native.test.ts checks the result
 * against tweetnacl's own box.before and box.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  KeyError,
  asBoxPublicKey,
  asBoxSecretKey,
  asSharedKey,
  type BoxKeyPair,
  type BoxPublicKey,
  type BoxSecretKey,
  type SharedKey,
} from '../crypto/index.ts';

// DER wrapper for a raw X25519 private key (RFC 8410 PKCS#8). Importing it costs ~0.9 ms (OpenSSL
// derives the public key), so it is used once per permanent key; public keys are imported as JWK
// (~10 us) and session keys are generated natively with their KeyObject kept (~80 us).
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ZERO_16 = new Uint8Array(16);
const SIGMA = new TextEncoder().encode('expand 32-byte k');

interface TweetnaclLowlevel {
  crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { lowlevel: TweetnaclLowlevel }).lowlevel;

/** Private KeyObjects of the secret keys this module made or imported, so each is parsed once. */
const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>();

function privateKeyObject(secret: Uint8Array): KeyObject {
  const known = privateKeyObjects.get(secret);
  if (known !== undefined) return known;
  const k = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  privateKeyObjects.set(secret, k);
  return k;
}

function publicKeyObject(pub: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(pub).toString('base64url') }, format: 'jwk' });
}

function rawFromJwk(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string') throw new KeyError(`native X25519: no ${what} in the exported key`);
  const raw = new Uint8Array(Buffer.from(value, 'base64url'));
  if (raw.length !== 32) throw new KeyError(`native X25519: exported ${what} is not 32 bytes`);
  return raw;
}

/** box.keyPair.fromSecretKey, natively (for permanent keys: ~1 ms, once). */
export function nativeKeyPairFromSecret(secret: BoxSecretKey): BoxKeyPair {
  const sk = asBoxSecretKey(secret);
  const jwk = createPublicKey(privateKeyObject(sk)).export({ format: 'jwk' });
  return { publicKey: asBoxPublicKey(rawFromJwk(jwk.x, 'public key')), secretKey: sk };
}

/** A fresh key pair from OpenSSL's CSPRNG; its KeyObject is kept for nativeBoxBefore. */
export function nativeGenerateKeyPair(): BoxKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const secretKey = rawFromJwk(jwk.d, 'secret key') as BoxSecretKey;
  privateKeyObjects.set(secretKey, privateKey);
  return { publicKey: rawFromJwk(jwk.x, 'public key') as BoxPublicKey, secretKey };
}

/**
 * box.before(theirPublic, mySecret). OpenSSL refuses low-order public keys (all-zero shared
 * secret), which tweetnacl would accept: we fail closed with KeyError.
 */
export function nativeBoxBefore(theirPublic: BoxPublicKey, mySecret: BoxSecretKey): SharedKey {
  if (theirPublic.length !== 32 || mySecret.length !== 32) throw new KeyError('box.before: keys must be 32 bytes');
  let s: Buffer;
  try {
    s = diffieHellman({ privateKey: privateKeyObject(mySecret), publicKey: publicKeyObject(theirPublic) });
  } catch (e) {
    throw new KeyError('box.before: X25519 failed (low-order or invalid public key)', { cause: e });
  }
  const k = new Uint8Array(32);
  lowlevel.crypto_core_hsalsa20(k, ZERO_16, s, SIGMA);
  s.fill(0);
  return asSharedKey(k);
}

/** A bounded memo for box.before results keyed by (their public, my secret identity). */
export class SharedKeyCache {
  private readonly map = new Map<string, SharedKey>();
  constructor(private readonly capacity: number) {}

  get(theirPublic: BoxPublicKey, mySecret: BoxSecretKey, myId: string): SharedKey {
    const key = `${myId}:${Buffer.from(theirPublic).toString('base64')}`;
    const hit = this.map.get(key);
    if (hit !== undefined) {
      // Refresh recency (Map keeps insertion order).
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const shared = nativeBoxBefore(theirPublic, mySecret);
    this.map.set(key, shared);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
    return shared;
  }
}
