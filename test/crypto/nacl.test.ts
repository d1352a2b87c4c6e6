import fc from 'fast-check';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import {
  asBoxPublicKey,
  asBoxSecretKey,
  asSecretboxKey,
  asSharedKey,
  AuthError,
  box,
  boxAfter,
  boxBefore,
  boxKeyPairFromSecret,
  boxOpen,
  boxOpenAfter,
  fromHex,
  generateBoxKeyPair,
  generateSecretboxKey,
  InputError,
  KeyError,
  randomNonce,
  secretbox,
  secretboxOpen,
  toHex,
  type BoxPublicKey,
  type BoxSecretKey,
  type SecretboxKey,
  type SharedKey,
} from '../../crypto/index.ts';
import boxVector from '../vectors/nacl_box.json' with { type: 'json' };
import secretboxVectors from '../vectors/tweetnacl_secretbox.json' with { type: 'json' };
import { expectThrows, flipByte } from './expect-error.ts';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

describe('NaCl known answers', () => {
  it('secretbox matches the tweetnacl vectors (noble-ciphers test/vectors/tweetnacl_secretbox.json)', () => {
    expect(secretboxVectors.length).toBeGreaterThan(20);
    for (const [k, n, m, c] of secretboxVectors as [string, string, string, string][]) {
      const key = asSecretboxKey(b64(k));
      expect(Buffer.from(secretbox(b64(m), b64(n), key)).toString('base64')).toBe(c);
      expect(secretboxOpen(b64(c), b64(n), key)).toEqual(b64(m));
    }
  });
  it('box matches the NaCl/libsodium crypto_box vector, both directions', () => {
    const v = boxVector;
    const aliceSecret = asBoxSecretKey(fromHex(v.aliceSecret, 32));
    const bobSecret = asBoxSecretKey(fromHex(v.bobSecret, 32));
    const alicePublic = asBoxPublicKey(fromHex(v.alicePublic, 32));
    const bobPublic = asBoxPublicKey(fromHex(v.bobPublic, 32));
    const nonce = fromHex(v.nonce, 24);
    expect(toHex(boxKeyPairFromSecret(aliceSecret).publicKey)).toBe(v.alicePublic);
    expect(toHex(boxKeyPairFromSecret(bobSecret).publicKey)).toBe(v.bobPublic);
    expect(toHex(box(fromHex(v.message), nonce, bobPublic, aliceSecret))).toBe(v.box);
    expect(toHex(boxOpen(fromHex(v.box), nonce, alicePublic, bobSecret))).toBe(v.message);
    const shared = boxBefore(bobPublic, aliceSecret);
    expect(toHex(shared)).toBe(v.beforenm);
    expect(toHex(boxBefore(alicePublic, bobSecret))).toBe(v.beforenm);
    expect(toHex(boxAfter(fromHex(v.message), nonce, shared))).toBe(v.box);
    expect(toHex(boxOpenAfter(fromHex(v.box), nonce, shared))).toBe(v.message);
  });
});

describe('key generation', () => {
  it('generateBoxKeyPair uses the given random source', () => {
    const seed = new Uint8Array(32).fill(3);
    const pair = generateBoxKeyPair(() => seed.slice());
    expect(pair.secretKey).toEqual(seed);
    expect(pair.publicKey).toEqual(nacl.box.keyPair.fromSecretKey(seed).publicKey);
    expect(generateBoxKeyPair().publicKey).not.toEqual(generateBoxKeyPair().publicKey);
  });
  it('secretbox keys and nonces have the right size', () => {
    expect(generateSecretboxKey().length).toBe(32);
    expect(randomNonce().length).toBe(24);
    expect(randomNonce()).not.toEqual(randomNonce());
  });
  it('reject wrong sizes and name the parameter', () => {
    expectThrows(() => boxKeyPairFromSecret(new Uint8Array(31) as BoxSecretKey), KeyError, 'crypto.key', 'secretKey');
    expectThrows(() => generateBoxKeyPair((n) => new Uint8Array(n + 1)), KeyError, 'crypto.key');
    expectThrows(() => randomNonce((n) => new Uint8Array(n - 1)), InputError, 'crypto.input', 'nonce');
    expectThrows(() => asBoxPublicKey(new Uint8Array(33)), KeyError, 'crypto.key', 'publicKey');
    expectThrows(() => asSecretboxKey(new Uint8Array(16)), KeyError, 'crypto.key', 'key');
    expectThrows(() => asSharedKey(new Uint8Array(0)), KeyError, 'crypto.key', 'shared');
  });
});

describe('bad input names the bad parameter', () => {
  const a = generateBoxKeyPair();
  const b = generateBoxKeyPair();
  const key = generateSecretboxKey();
  const shared = boxBefore(b.publicKey, a.secretKey);
  const nonce = randomNonce();
  const m = new Uint8Array([1, 2, 3]);
  const short = new Uint8Array(31);
  it('box / boxOpen', () => {
    const c = box(m, nonce, b.publicKey, a.secretKey);
    expectThrows(() => box(m, nonce.subarray(1), b.publicKey, a.secretKey), InputError, 'crypto.input', 'nonce');
    expectThrows(() => box(m, nonce, short as BoxPublicKey, a.secretKey), KeyError, 'crypto.key', 'theirPublic');
    expectThrows(() => box(m, nonce, b.publicKey, short as BoxSecretKey), KeyError, 'crypto.key', 'mySecret');
    expectThrows(() => box('x' as unknown as Uint8Array, nonce, b.publicKey, a.secretKey), InputError, 'crypto.input', 'message');
    expectThrows(() => boxOpen(c, new Uint8Array(25), a.publicKey, b.secretKey), InputError, 'crypto.input', 'nonce');
    expectThrows(() => boxOpen(c, nonce, short as BoxPublicKey, b.secretKey), KeyError, 'crypto.key', 'theirPublic');
    expectThrows(() => boxOpen(c, nonce, a.publicKey, short as BoxSecretKey), KeyError, 'crypto.key', 'mySecret');
    expectThrows(() => boxOpen(new Uint8Array(15), nonce, a.publicKey, b.secretKey), AuthError, 'crypto.auth');
  });
  it('boxBefore / boxAfter / boxOpenAfter', () => {
    expectThrows(() => boxBefore(short as BoxPublicKey, a.secretKey), KeyError, 'crypto.key', 'theirPublic');
    expectThrows(() => boxBefore(b.publicKey, short as BoxSecretKey), KeyError, 'crypto.key', 'mySecret');
    expectThrows(() => boxAfter(m, nonce, short as SharedKey), KeyError, 'crypto.key', 'shared');
    expectThrows(() => boxAfter(m, short, shared), InputError, 'crypto.input', 'nonce');
    expectThrows(() => boxOpenAfter(boxAfter(m, nonce, shared), nonce, short as SharedKey), KeyError, 'crypto.key', 'shared');
    expectThrows(() => boxOpenAfter(new Uint8Array(0), nonce, shared), AuthError, 'crypto.auth');
  });
  it('secretbox / secretboxOpen', () => {
    expectThrows(() => secretbox(m, nonce, short as SecretboxKey), KeyError, 'crypto.key', 'key');
    expectThrows(() => secretbox(m, new Uint8Array(0), key), InputError, 'crypto.input', 'nonce');
    expectThrows(() => secretboxOpen(secretbox(m, nonce, key), nonce, short as SecretboxKey), KeyError, 'crypto.key');
    expectThrows(() => secretboxOpen(new Uint8Array(10), nonce, key), AuthError, 'crypto.auth');
  });
});

describe('tamper detection (opens throw AuthError, never return null)', () => {
  const a = generateBoxKeyPair();
  const b = generateBoxKeyPair();
  const eve = generateBoxKeyPair();
  const key = generateSecretboxKey();
  it('wrong key / wrong nonce / wrong sender', () => {
    const nonce = randomNonce();
    const m = new Uint8Array([7, 7, 7]);
    const sb = secretbox(m, nonce, key);
    expectThrows(() => secretboxOpen(sb, nonce, generateSecretboxKey()), AuthError, 'crypto.auth');
    expectThrows(() => secretboxOpen(sb, randomNonce(), key), AuthError, 'crypto.auth');
    const bx = box(m, nonce, b.publicKey, a.secretKey);
    expectThrows(() => boxOpen(bx, nonce, eve.publicKey, b.secretKey), AuthError, 'crypto.auth');
    expectThrows(() => boxOpen(bx, nonce, a.publicKey, eve.secretKey), AuthError, 'crypto.auth');
    expectThrows(() => boxOpenAfter(bx, nonce, boxBefore(a.publicKey, eve.secretKey)), AuthError, 'crypto.auth');
  });
  it('secretbox: round trip, any single-byte change, any truncation (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, mask) => {
        const nonce = randomNonce();
        const c = secretbox(m, nonce, key);
        expect(c.length).toBe(m.length + 16);
        expect(secretboxOpen(c, nonce, key)).toEqual(m);
        expectThrows(() => secretboxOpen(flipByte(c, pos % c.length, mask), nonce, key), AuthError, 'crypto.auth');
        expectThrows(() => secretboxOpen(c.subarray(0, pos % c.length), nonce, key), AuthError, 'crypto.auth');
        expectThrows(() => secretboxOpen(c, flipByte(nonce, pos % 24, mask), key), AuthError, 'crypto.auth');
      }),
      { numRuns: 200 },
    );
  });
  it("secretbox and box.after give the bytes of tweetnacl's own high-level calls (they use its lowlevel primitives)", () => {
    const shared = boxBefore(b.publicKey, a.secretKey);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), (m) => {
        const nonce = randomNonce();
        const c = secretbox(m, nonce, key);
        expect(c).toEqual(new Uint8Array(nacl.secretbox(m, nonce, key)));
        expect(c.byteOffset).toBe(0);
        expect(c.buffer.byteLength).toBe(c.length); // its own ArrayBuffer (RTCDataChannel.send wants that)
        expect(boxAfter(m, nonce, shared)).toEqual(new Uint8Array(nacl.box.after(m, nonce, shared)));
        expect(boxOpenAfter(nacl.box.after(m, nonce, shared), nonce, shared)).toEqual(m);
        expect(secretboxOpen(nacl.secretbox(m, nonce, key), nonce, key).buffer.byteLength).toBe(m.length);
      }),
      { numRuns: 60 },
    );
  });
  it('box and box.after agree; any single-byte change or truncation is rejected (property)', () => {
    const shared = boxBefore(b.publicKey, a.secretKey);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, mask) => {
        const nonce = randomNonce();
        const c = boxAfter(m, nonce, shared);
        expect(boxOpen(c, nonce, a.publicKey, b.secretKey)).toEqual(m);
        expect(boxOpenAfter(c, nonce, shared)).toEqual(m);
        expectThrows(() => boxOpenAfter(flipByte(c, pos % c.length, mask), nonce, shared), AuthError, 'crypto.auth');
        expectThrows(() => boxOpenAfter(c.subarray(0, pos % c.length), nonce, shared), AuthError, 'crypto.auth');
      }),
      { numRuns: 200 },
    );
  });
});
