/**
 * The web vault (web/storage/vault.ts, docs/PROTOCOL.md 6.1-6.4) on an in-memory IndexedDB
 * (fake-indexeddb): a random data key wrapped by an Argon2id password key, a password change that
 * rewraps one key, the migration of a store written before Argon2id, strict and bounded KDF params,
 * and the password-strength check.
 */
import 'fake-indexeddb/auto'; // every IndexedDB global idb uses (IDBRequest, IDBKeyRange, ...)
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import * as dbm from '../../web/storage/db.ts';
import * as vault from '../../web/storage/vault.ts';
import {
  AuthError,
  cellOpen,
  cellSeal,
  deriveLegacyStorageKey,
  initCrypto,
  LEGACY_MIN_ITERATIONS,
  utf8Encode,
  type SymmetricKey,
} from '../../crypto/index.ts';

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new password';

beforeAll(async () => {
  await initCrypto();
});

// Each Argon2id derivation takes 64 MiB and ~0.3-2 s on this shared machine; a test makes up to six.
vi.setConfig({ testTimeout: 90_000 });

/** A fresh, empty database for every test. */
beforeEach(async () => {
  await dbm.closeDb();
  vi.stubGlobal('indexedDB', new IDBFactory());
});

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).not.toBeNull();
  return (e as { code: string }).code;
}

async function rawMeta(): Promise<Record<string, unknown>> {
  const db = await dbm.openDb();
  return {
    kdf: await db.get('meta', 'kdf'),
    key: await db.get('meta', 'key'),
    check: await db.get('meta', 'check'),
  };
}

describe('Vault: Argon2id password key wrapping a random data key', () => {
  it('creates, unlocks, refuses a wrong password; meta holds only the params and the wrapped key', async () => {
    const v = await vault.Vault.create(PASSWORD);
    await v.put('settings', 'settings', utf8Encode('hello'));
    const meta = await rawMeta();
    expect(meta.check).toBeUndefined();
    expect(meta.key).toBeInstanceOf(Uint8Array);
    expect(meta.kdf).toMatchObject({ alg: 'argon2id', memoryKiB: 65536, passes: 3, parallelism: 1 });
    expect(Object.keys(meta.kdf as object).sort()).toEqual(['alg', 'memoryKiB', 'parallelism', 'passes', 'salt']);
    const again = await vault.Vault.unlock(PASSWORD);
    expect(new TextDecoder().decode(await again.get('settings', 'settings'))).toBe('hello');
    expect(await code(vault.Vault.unlock('wrong horse battery'))).toBe('storage.password');
    expect(await code(vault.Vault.create(PASSWORD))).toBe('storage.exists');
  });

  it('a password change rewraps one key: no record changes, the old password stops working', async () => {
    const v = await vault.Vault.create(PASSWORD);
    await v.put('history', 'r/1', utf8Encode('one'));
    await v.put('rooms', 'r', utf8Encode('room'));
    const db = await dbm.openDb();
    const before = { h: await db.get('history', 'r/1'), r: await db.get('rooms', 'r'), key: await db.get('meta', 'key') };
    expect(await code(v.changePassword('wrong horse battery', NEW_PASSWORD))).toBe('storage.password');
    await v.changePassword(PASSWORD, NEW_PASSWORD);
    // The sealed records are byte for byte the same; only meta/kdf and meta/key changed.
    expect(await db.get('history', 'r/1')).toEqual(before.h);
    expect(await db.get('rooms', 'r')).toEqual(before.r);
    expect(await db.get('meta', 'key')).not.toEqual(before.key);
    expect(await code(vault.Vault.unlock(PASSWORD))).toBe('storage.password');
    const after = await vault.Vault.unlock(NEW_PASSWORD);
    expect(new TextDecoder().decode(await after.get('history', 'r/1'))).toBe('one');
    // The same vault object keeps working with its (unchanged) data key.
    expect(new TextDecoder().decode(await v.get('rooms', 'r'))).toBe('room');
  });

  it('THREAT-MODEL "A stolen device": a copy taken before a password change still opens, with the old password, records written after it', async () => {
    const v = await vault.Vault.create(PASSWORD);
    const db = await dbm.openDb();
    const stolen = { kdf: await db.get('meta', 'kdf'), key: await db.get('meta', 'key') }; // the thief's copy of meta
    await v.changePassword(PASSWORD, NEW_PASSWORD);
    await v.put('history', 'r/7', utf8Encode('written after the change'));
    // The thief later gets the new records too (a second copy), and puts its old meta next to them.
    await db.put('meta', stolen.kdf!, 'kdf');
    await db.put('meta', stolen.key!, 'key');
    const opened = await vault.Vault.unlock(PASSWORD);
    expect(new TextDecoder().decode(await opened.get('history', 'r/7'))).toBe('written after the change');
  });

  it('refuses stored KDF params outside the bounds (weaker, or minutes/gigabytes) and unknown fields', async () => {
    await vault.Vault.create(PASSWORD);
    const db = await dbm.openDb();
    const good = (await db.get('meta', 'kdf')) as Record<string, unknown>;
    for (const bad of [
      { ...good, memoryKiB: 1024 },
      { ...good, memoryKiB: 8 * 1024 * 1024 },
      { ...good, passes: 1 },
      { ...good, passes: 10_000 },
      { ...good, parallelism: 255 },
      { ...good, extra: 1 },
      { ...good, alg: 'argon2d' },
    ]) {
      await db.put('meta', bad, 'kdf');
      expect(await code(vault.Vault.unlock(PASSWORD)), JSON.stringify({ ...bad, salt: undefined })).toBe('crypto.kdf-params');
    }
    await db.put('meta', good, 'kdf');
    await db.delete('meta', 'key');
    expect(await code(vault.Vault.unlock(PASSWORD))).toBe('storage.meta');
  });
});

describe('Vault: migration of a store written before Argon2id (PBKDF2)', () => {
  const legacyParams = { alg: 'pbkdf2-sha256', iterations: LEGACY_MIN_ITERATIONS, salt: new Uint8Array(16).fill(3) };
  const ctx = (store: string, key: string): Uint8Array => utf8Encode(`${store}/${key}`);

  /** The database exactly as the PBKDF2 code wrote it: K seals the check record and every record. */
  async function legacyStore(): Promise<SymmetricKey> {
    const db = await dbm.openDb();
    const k = await deriveLegacyStorageKey(PASSWORD, { ...legacyParams, alg: 'pbkdf2-sha256' });
    await db.put('meta', { ...legacyParams }, 'kdf');
    await db.put('meta', cellSeal(k, utf8Encode('zeroroom storage check v1'), utf8Encode('meta/check')), 'check');
    await db.put('settings', cellSeal(k, utf8Encode('settings v1'), ctx('settings', 'settings')), 'settings');
    for (let i = 0; i < 3; i++) await db.put('history', cellSeal(k, utf8Encode(`message ${i}`), ctx('history', `r/${i}`)), `r/${i}`);
    return k;
  }

  it('a wrong password changes nothing', async () => {
    await legacyStore();
    const before = await rawMeta();
    expect(await code(vault.Vault.unlock('wrong horse battery'))).toBe('storage.password');
    expect(await rawMeta()).toEqual(before);
  });

  it('the next successful unlock moves every record to a fresh random data key, in one transaction, and drops the PBKDF2 params', async () => {
    const k = await legacyStore();
    const v = await vault.Vault.unlock(PASSWORD);
    expect(new TextDecoder().decode(await v.get('settings', 'settings'))).toBe('settings v1');
    expect((await v.list('history', 'r/')).map((r) => new TextDecoder().decode(r.value))).toEqual(['message 0', 'message 1', 'message 2']);
    const meta = await rawMeta();
    expect(meta.check).toBeUndefined();
    expect(meta.kdf).toMatchObject({ alg: 'argon2id', memoryKiB: 65536, passes: 3 });
    expect(meta.key).toBeInstanceOf(Uint8Array);
    // The old PBKDF2 key opens nothing: the data key is random, not K.
    const db = await dbm.openDb();
    for (const key of ['r/0', 'r/1', 'r/2']) {
      const sealed = await db.get('history', key);
      expect(() => cellOpen(k, sealed!, ctx('history', key))).toThrow(AuthError);
    }
    // Later unlocks take the Argon2id path; a password change then works as usual.
    const again = await vault.Vault.unlock(PASSWORD);
    expect(new TextDecoder().decode(await again.get('history', 'r/2'))).toBe('message 2');
    await again.changePassword(PASSWORD, NEW_PASSWORD);
    expect(new TextDecoder().decode(await (await vault.Vault.unlock(NEW_PASSWORD)).get('history', 'r/0'))).toBe('message 0');
  });

  it('a record that does not open under the old key aborts the whole migration: the legacy store stays as it was', async () => {
    const k = await legacyStore();
    const db = await dbm.openDb();
    await db.put('history', cellSeal(k, utf8Encode('moved'), ctx('history', 'elsewhere')), 'r/9'); // sealed for another key
    const before = { meta: await rawMeta(), r0: await db.get('history', 'r/0') };
    expect(await code(vault.Vault.unlock(PASSWORD))).toBe('crypto.auth');
    expect(await rawMeta()).toEqual(before.meta);
    expect(await db.get('history', 'r/0')).toEqual(before.r0);
  });

  it('refuses legacy params below the old policy', async () => {
    await legacyStore();
    const db = await dbm.openDb();
    await db.put('meta', { ...legacyParams, iterations: 1000 }, 'kdf');
    expect(await code(vault.Vault.unlock(PASSWORD))).toBe('crypto.kdf-params');
  });
});

describe('password strength (new passwords only)', () => {
  it('refuses short and common passwords with the estimator advice; accepts a strong one', async () => {
    expect(await code(vault.checkPasswordStrength('short'))).toBe('storage.password');
    for (const weak of ['password1', 'qwertyuiop', 'abcdefgh', 'P@ssw0rd!', '11111111', 'zeroroom']) {
      const e = await vault.checkPasswordStrength(weak).then(
        () => null,
        (x: unknown) => x as { code: string; message: string },
      );
      expect(e?.code, weak).toBe('storage.weak-password');
      expect(e?.message.length).toBeGreaterThan('this password is too easy to guess.'.length);
    }
    await vault.checkPasswordStrength(PASSWORD);
    await vault.checkPasswordStrength(NEW_PASSWORD);
    expect(await code(vault.Vault.create('password1'))).toBe('storage.weak-password');
    expect((await rawMeta()).kdf).toBeUndefined(); // nothing was stored
    const v = await vault.Vault.create(PASSWORD);
    expect(await code(v.changePassword(PASSWORD, 'qwertyuiop'))).toBe('storage.weak-password');
    // Unlocking never judges strength: only new passwords are checked.
    await vault.Vault.unlock(PASSWORD);
  });
});
