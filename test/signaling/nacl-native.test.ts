import fc from 'fast-check';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { KeyError, boxAfter, type BoxPublicKey, type BoxSecretKey } from '../../crypto/index.ts';
import { SharedKeyCache, nativeBoxBefore, nativeGenerateKeyPair, nativeKeyPairFromSecret } from '../../signaling/nacl-native.ts';

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('native X25519 + tweetnacl HSalsa20', () => {
  it('public key from secret equals tweetnacl', () => {
    fc.assert(
      fc.property(bytes32, (secret) => {
        expect(nativeKeyPairFromSecret(secret as BoxSecretKey).publicKey).toEqual(nacl.box.keyPair.fromSecretKey(secret).publicKey);
      }),
      { numRuns: 50 },
    );
  });
  it('box.before equals tweetnacl, and box with it equals tweetnacl box', () => {
    fc.assert(
      fc.property(
        bytes32,
        bytes32,
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        (a, b, msg, nonce) => {
          const bob = nacl.box.keyPair.fromSecretKey(b);
          const shared = nativeBoxBefore(bob.publicKey as BoxPublicKey, a as BoxSecretKey);
          expect(shared).toEqual(nacl.box.before(bob.publicKey, a));
          expect(boxAfter(msg, nonce, shared)).toEqual(nacl.box(msg, nonce, bob.publicKey, a));
        },
      ),
      { numRuns: 50 },
    );
  });
  it('generated pairs agree with tweetnacl, and their cached key objects give the same box.before', () => {
    for (let n = 0; n < 20; n++) {
      const p = nativeGenerateKeyPair();
      expect(p.publicKey).toEqual(nacl.box.keyPair.fromSecretKey(p.secretKey).publicKey);
      const other = nacl.box.keyPair();
      expect(nativeBoxBefore(other.publicKey as BoxPublicKey, p.secretKey)).toEqual(nacl.box.before(other.publicKey, p.secretKey));
      // a copy of the secret (no cached key object) takes the import path and agrees
      expect(nativeBoxBefore(other.publicKey as BoxPublicKey, p.secretKey.slice() as BoxSecretKey)).toEqual(
        nacl.box.before(other.publicKey, p.secretKey),
      );
    }
  });
  it('refuses a low-order public key (all zeros) with KeyError', () => {
    expect(() => nativeBoxBefore(new Uint8Array(32) as BoxPublicKey, nacl.randomBytes(32) as BoxSecretKey)).toThrow(KeyError);
  });
  it('refuses wrong key lengths', () => {
    expect(() => nativeBoxBefore(new Uint8Array(31) as BoxPublicKey, nacl.randomBytes(32) as BoxSecretKey)).toThrow(KeyError);
  });
  it('the cache returns the same key and stays bounded', () => {
    const cache = new SharedKeyCache(2);
    const me = nacl.box.keyPair();
    const peers = [nacl.box.keyPair(), nacl.box.keyPair(), nacl.box.keyPair()];
    const first = cache.get(peers[0]!.publicKey as BoxPublicKey, me.secretKey as BoxSecretKey, 'me');
    expect(cache.get(peers[0]!.publicKey as BoxPublicKey, me.secretKey as BoxSecretKey, 'me')).toBe(first);
    for (const p of peers)
      expect(cache.get(p.publicKey as BoxPublicKey, me.secretKey as BoxSecretKey, 'me')).toEqual(
        nacl.box.before(p.publicKey, me.secretKey),
      );
    // peers[0] was evicted (capacity 2): a fresh, equal object
    const again = cache.get(peers[0]!.publicKey as BoxPublicKey, me.secretKey as BoxSecretKey, 'me');
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});
