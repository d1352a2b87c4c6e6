import { pbkdf2Sync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  argon2idRaw,
  AuthError,
  checkKdfParams,
  checkLegacyKdfParams,
  deriveLegacyStorageKey,
  deriveStorageKey,
  initCrypto,
  InputError,
  KdfParamsError,
  KeyError,
  LEGACY_MIN_ITERATIONS,
  MAX_MEMORY_KIB,
  MAX_PASSES,
  MIN_MEMORY_KIB,
  MIN_PASSES,
  newDataKey,
  newKdfParams,
  pbkdf2Sha256,
  toHex,
  unwrapDataKey,
  utf8Encode,
  wrapDataKey,
  type KdfParams,
  type LegacyKdfParams,
} from '../../crypto/index.ts';
import argon2Vectors from '../vectors/argon2id.json' with { type: 'json' };
import vectors from '../vectors/pbkdf2_sha256.json' with { type: 'json' };
import { expectRejects, expectThrows } from './expect-error.ts';

beforeAll(async () => {
  await initCrypto();
});

// Tests use the cheapest params the policy accepts (64 MiB, 2 passes): ~0.2-0.5 s per derivation here.
const cheap = (salt = new Uint8Array(16).fill(1)): KdfParams => ({
  alg: 'argon2id',
  memoryKiB: MIN_MEMORY_KIB,
  passes: MIN_PASSES,
  parallelism: 1,
  salt,
});
const legacy = (salt = new Uint8Array(16).fill(1)): LegacyKdfParams => ({ alg: 'pbkdf2-sha256', iterations: LEGACY_MIN_ITERATIONS, salt });

describe('PBKDF2-HMAC-SHA256 (WebCrypto, legacy stores only)', () => {
  for (const v of vectors.vectors) {
    it(`RFC 7914 section 11: P=${v.password} S=${v.salt} c=${v.iterations}`, async () => {
      const dk = await pbkdf2Sha256(utf8Encode(v.password), utf8Encode(v.salt), v.iterations, v.dkLen);
      expect(toHex(dk)).toBe(v.dk);
    });
  }
});

describe('Argon2id (hash-wasm)', () => {
  for (const v of argon2Vectors.vectors) {
    it(`reference vector: P=${v.password} S=${v.salt} t=${v.passes} m=${v.memoryKiB} p=${v.parallelism}`, async () => {
      const out = await argon2idRaw(utf8Encode(v.password), utf8Encode(v.salt), {
        memoryKiB: v.memoryKiB,
        passes: v.passes,
        parallelism: v.parallelism,
        length: 32,
      });
      expect(toHex(out)).toBe(v.hash);
    });
  }
});

describe('newKdfParams / checkKdfParams', () => {
  it('creates Argon2id params with at least 64 MiB and a 16-byte salt from the given random source', () => {
    const p = newKdfParams(() => new Uint8Array(16).fill(9));
    expect(p).toEqual({ alg: 'argon2id', memoryKiB: 65536, passes: 3, parallelism: 1, salt: new Uint8Array(16).fill(9) });
    expect(newKdfParams().salt).not.toEqual(newKdfParams().salt);
  });

  it('refuses malformed params, unknown fields, and costs below the policy or above the maximum', () => {
    const good = cheap();
    const bad: unknown[] = [
      null,
      'argon2id',
      [],
      {},
      { ...good, alg: 'argon2i' },
      { ...good, alg: 'pbkdf2-sha256' },
      { ...good, memoryKiB: MIN_MEMORY_KIB - 1 }, // a tampered record cannot weaken the KDF
      { ...good, memoryKiB: MAX_MEMORY_KIB + 1 }, // ... nor ask for gigabytes
      { ...good, memoryKiB: 4 * 1024 * 1024 },
      { ...good, memoryKiB: 65536.5 },
      { ...good, memoryKiB: '65536' },
      { ...good, passes: MIN_PASSES - 1 },
      { ...good, passes: MAX_PASSES + 1 }, // ... nor for minutes
      { ...good, passes: 1e6 },
      { ...good, parallelism: 0 },
      { ...good, parallelism: 5 },
      { ...good, salt: new Uint8Array(15) },
      { ...good, salt: new Uint8Array(65) },
      { ...good, salt: [1, 2, 3] },
      { ...good, extra: 1 },
      { alg: 'argon2id', memoryKiB: 65536, passes: 3, salt: good.salt }, // parallelism missing
    ];
    for (const p of bad) expectThrows(() => checkKdfParams(p), KdfParamsError, 'crypto.kdf-params');
    expect(() => checkKdfParams(good)).not.toThrow();
    expect(() => checkKdfParams({ ...good, memoryKiB: MAX_MEMORY_KIB, passes: MAX_PASSES, parallelism: 4 })).not.toThrow();
    expectThrows(() => newKdfParams(undefined, { passes: 1 }), KdfParamsError, 'crypto.kdf-params', 'below the minimum');
    expectThrows(() => newKdfParams(() => new Uint8Array(8)), KdfParamsError, 'crypto.kdf-params', 'salt');
  });

  it('accepts legacy PBKDF2 params only through checkLegacyKdfParams, with the old bounds', () => {
    expect(() => checkLegacyKdfParams(legacy())).not.toThrow();
    expectThrows(() => checkKdfParams(legacy()), KdfParamsError, 'crypto.kdf-params');
    for (const p of [
      { ...legacy(), iterations: LEGACY_MIN_ITERATIONS - 1 },
      { ...legacy(), iterations: 1e9 },
      { ...legacy(), alg: 'pbkdf2-sha1' },
      { ...legacy(), check: new Uint8Array(4) },
      cheap(),
    ]) {
      expectThrows(() => checkLegacyKdfParams(p), KdfParamsError, 'crypto.kdf-params');
    }
  });
});

describe('deriveStorageKey (Argon2id password key)', () => {
  it('is Argon2id(NFC(password), salt, t, m, p, 32) and deterministic', async () => {
    const params = cheap();
    const key = await deriveStorageKey('correct horse', params);
    expect(key.length).toBe(32);
    const direct = await argon2idRaw(utf8Encode('correct horse'), params.salt, {
      memoryKiB: MIN_MEMORY_KIB,
      passes: MIN_PASSES,
      parallelism: 1,
      length: 32,
    });
    expect(toHex(key)).toBe(toHex(direct));
    expect(await deriveStorageKey('correct horse', params)).toEqual(key);
  });

  it('depends on password, salt and cost; normalises to NFC', async () => {
    const params = cheap();
    const key = await deriveStorageKey('pässword', params);
    expect(await deriveStorageKey('pa\u0308ssword', params)).toEqual(key); // NFD form of the same text
    expect(await deriveStorageKey('passwörd', params)).not.toEqual(key);
    expect(await deriveStorageKey('pässword', cheap(new Uint8Array(16).fill(2)))).not.toEqual(key);
    expect(await deriveStorageKey('pässword', { ...params, passes: MIN_PASSES + 1 })).not.toEqual(key);
  });

  it('rejects empty or oversized passwords and out-of-policy params before any work', async () => {
    await expectRejects(deriveStorageKey('', cheap()), InputError, 'crypto.input', 'password');
    await expectRejects(deriveStorageKey('x'.repeat(5000), cheap()), InputError, 'crypto.input', 'password');
    await expectRejects(deriveStorageKey(42 as unknown as string, cheap()), InputError, 'crypto.input');
    await expectRejects(deriveStorageKey('pw', { ...cheap(), memoryKiB: 1024 }), KdfParamsError, 'crypto.kdf-params');
    await expectRejects(deriveStorageKey('pw', legacy() as unknown as KdfParams), KdfParamsError, 'crypto.kdf-params');
  });

  it('legacy: deriveLegacyStorageKey is PBKDF2-SHA256(NFC(password), salt, iterations, 32)', async () => {
    const params = legacy();
    const key = await deriveLegacyStorageKey('correct horse', params);
    expect(Buffer.from(key).equals(pbkdf2Sync('correct horse', Buffer.from(params.salt), LEGACY_MIN_ITERATIONS, 32, 'sha256'))).toBe(true);
    await expectRejects(deriveLegacyStorageKey('pw', { ...params, iterations: 1000 }), KdfParamsError, 'crypto.kdf-params');
  });
});

describe('data key wrapping', () => {
  it('round-trips a random data key; a wrong password key, a tampered or moved wrap fails closed', async () => {
    const params = cheap();
    const p = await deriveStorageKey('correct horse', params);
    const wrong = await deriveStorageKey('correct horsf', params);
    const d = newDataKey();
    expect(newDataKey()).not.toEqual(d);
    const wrapped = wrapDataKey(p, d);
    expect(unwrapDataKey(p, wrapped)).toEqual(d);
    expectThrows(() => unwrapDataKey(wrong, wrapped), AuthError, 'crypto.auth');
    for (let i = 0; i < wrapped.length; i += 7) {
      const t = wrapped.slice();
      t[i]! ^= 1;
      expectThrows(() => unwrapDataKey(p, t), AuthError, 'crypto.auth');
    }
    expectThrows(() => unwrapDataKey(p, wrapped.subarray(0, wrapped.length - 1)), AuthError, 'crypto.auth');
    // Only a 32-byte key is ever wrapped.
    expectThrows(() => wrapDataKey(p, new Uint8Array(16) as typeof d), KeyError, 'crypto.key');
  });
});
