/**
 * NaCl box.before with the expensive half native (docs: shared/notes/platform.md "NaCl on the
 * server"): X25519 through node:crypto (OpenSSL), then HSalsa20 from tweetnacl, exactly as
 * tweetnacl's crypto_box_beforenm does. test/signaling/nacl-native.test.ts checks the result
 * against tweetnacl's own box.before and box.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { KeyError, asBoxPublicKey, asBoxSecretKey, asSharedKey, systemRandom, type BoxKeyPair, type BoxPublicKey, type BoxSecretKey, type RandomBytes, type SharedKey } from '../crypto/index.ts';

// DER wrappers for raw X25519 keys (RFC 8410): PKCS#8 private key and SubjectPublicKeyInfo.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const ZERO_16 = new Uint8Array(16);
const SIGMA = new TextEncoder().encode('expand 32-byte k');

interface TweetnaclLowlevel {
  crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { lowlevel: TweetnaclLowlevel }).lowlevel;

function privateKeyObject(secret: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, secret]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(pub: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, pub]), format: 'der', type: 'spki' });
}

/** box.keyPair.fromSecretKey, natively. */
export function nativeKeyPairFromSecret(secret: BoxSecretKey): BoxKeyPair {
  const sk = asBoxSecretKey(secret);
  const spki = createPublicKey(privateKeyObject(sk)).export({ format: 'der', type: 'spki' });
  return { publicKey: asBoxPublicKey(new Uint8Array(spki.subarray(SPKI_X25519_PREFIX.length))), secretKey: sk };
}

export function nativeGenerateKeyPair(random: RandomBytes = systemRandom): BoxKeyPair {
  const secret = random(32);
  const pair = nativeKeyPairFromSecret(secret as BoxSecretKey);
  secret.fill(0);
  return pair;
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
