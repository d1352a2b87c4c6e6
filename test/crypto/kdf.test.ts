import { pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkKdfParams,
  deriveStorageKey,
  InputError,
  KdfParamsError,
  MIN_ITERATIONS,
  newKdfParams,
  pbkdf2Sha256,
  toHex,
  utf8Encode,
  type KdfParams,
} from '../../crypto/index.ts';
import vectors from '../vectors/pbkdf2_sha256.json' with { type: 'json' };
import { expectRejects, expectThrows } from './expect-error.ts';

// Derivations at production cost take ~0.3 s each; tests use the minimum accepted cost where they can.
const cheap = (salt = new Uint8Array(16).fill(1)): KdfParams => ({ alg: 'pbkdf2-sha256', iterations: MIN_ITERATIONS, salt });

describe('PBKDF2-HMAC-SHA256 (WebCrypto)', () => {
  for (const v of vectors.vectors) {
    it(`RFC 7914 section 11: P=${v.password} S=${v.salt} c=${v.iterations}`, async () => {
      const dk = await pbkdf2Sha256(utf8Encode(v.password), utf8Encode(v.salt), v.iterations, v.dkLen);
      expect(toHex(dk)).toBe(v.dk);
    });
  }
});

describe('newKdfParams / checkKdfParams', () => {
  it('creates strong params with a 16-byte salt from the given random source', () => {
    const p = newKdfParams(() => new Uint8Array(16).fill(9));
    expect(p.alg).toBe('pbkdf2-sha256');
    expect(p.iterations).toBeGreaterThanOrEqual(MIN_ITERATIONS);
    expect(p.salt).toEqual(new Uint8Array(16).fill(9));
    expect(newKdfParams().salt).not.toEqual(newKdfParams().salt);
  });
  it('refuses weak or malformed params', () => {
    const good = cheap();
    const bad: unknown[] = [
      null,
      'pbkdf2',
      {},
      { ...good, alg: 'pbkdf2-sha1' },
      { ...good, iterations: MIN_ITERATIONS - 1 },
      { ...good, iterations: 1 },
      { ...good, iterations: 1e9 },
      { ...good, iterations: 700_000.5 },
      { ...good, iterations: '700000' },
      { ...good, salt: new Uint8Array(15) },
      { ...good, salt: new Uint8Array(65) },
      { ...good, salt: [1, 2, 3] },
    ];
    for (const p of bad) expectThrows(() => checkKdfParams(p), KdfParamsError, 'crypto.kdf-params');
    expect(() => checkKdfParams(good)).not.toThrow();
    expectThrows(() => newKdfParams(undefined, 1000), KdfParamsError, 'crypto.kdf-params', 'below the minimum');
    expectThrows(() => newKdfParams(() => new Uint8Array(8)), KdfParamsError, 'crypto.kdf-params', 'salt');
  });
});

describe('deriveStorageKey', () => {
  it('is PBKDF2-SHA256(NFC(password), salt, iterations, 32) and deterministic', async () => {
    const params = cheap();
    const key = await deriveStorageKey('correct horse', params);
    expect(key.length).toBe(32);
    expect(Buffer.from(key).equals(pbkdf2Sync('correct horse', Buffer.from(params.salt), MIN_ITERATIONS, 32, 'sha256'))).toBe(true);
    expect(await deriveStorageKey('correct horse', params)).toEqual(key);
  });
  it('depends on password, salt and iterations; normalises to NFC', async () => {
    const params = cheap();
    const key = await deriveStorageKey('pässword', params);
    expect(await deriveStorageKey('pa\u0308ssword', params)).toEqual(key); // NFD form of the same text
    expect(await deriveStorageKey('passwörd', params)).not.toEqual(key);
    expect(await deriveStorageKey('pässword', cheap(new Uint8Array(16).fill(2)))).not.toEqual(key);
    expect(await deriveStorageKey('pässword', { ...params, iterations: MIN_ITERATIONS + 1 })).not.toEqual(key);
  });
  it('rejects empty or oversized passwords and weak params', async () => {
    await expectRejects(deriveStorageKey('', cheap()), InputError, 'crypto.input', 'password');
    await expectRejects(deriveStorageKey('x'.repeat(5000), cheap()), InputError, 'crypto.input', 'password');
    await expectRejects(deriveStorageKey(42 as unknown as string, cheap()), InputError, 'crypto.input');
    await expectRejects(deriveStorageKey('pw', { ...cheap(), iterations: 1000 }), KdfParamsError, 'crypto.kdf-params');
  });
});
