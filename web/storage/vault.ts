/**
 * Encrypted records (docs/PROTOCOL.md section 6). Each record is stored as
 *   cellSeal(dataKey, plaintext, context = utf8("<store>/<recordKey>"))
 * so a record copied to another key or store fails to open. The data key D is random and stored only
 * wrapped by the password key P = Argon2id(password) (`meta/key`, next to the clear `meta/kdf`), so a
 * password change rewraps one key. Stores written before Argon2id (PBKDF2 key = record key, a
 * `meta/check` record) are migrated on their next successful unlock, in one transaction.
 */
import {
  AuthError,
  cellOpen,
  cellSeal,
  checkKdfParams,
  checkLegacyKdfParams,
  deriveLegacyStorageKey,
  deriveStorageKey,
  newDataKey,
  newKdfParams,
  unwrapDataKey,
  utf8Decode,
  utf8Encode,
  wrapDataKey,
  type KdfParams,
  type LegacyKdfParams,
  type SymmetricKey,
} from '../../crypto/index.ts';
import { ZeroRoomError } from '../../protocol/errors.ts';
import { openDb, SEALED_STORES, type Db, type SealedStore, type StoredKdfParams } from './db.ts';
import { deriveFilesKey, IdbFileStore } from './file-store.ts';

/** The check record of stores written before Argon2id (PROTOCOL.md 6.2, legacy). */
const LEGACY_CHECK_TEXT = 'zeroroom storage check v1';
const LEGACY_CHECK_CONTEXT = utf8Encode('meta/check');
const MIN_PASSWORD_LENGTH = 8;
/** zxcvbn score a new password needs (0..4): "safely unguessable" against offline slow-hash guessing. */
export const MIN_PASSWORD_SCORE = 3;

export class StorageError extends ZeroRoomError {}

export function recordContext(store: SealedStore, key: string): Uint8Array {
  return utf8Encode(`${store}/${key}`);
}

function storedParams(params: KdfParams): StoredKdfParams {
  return { alg: params.alg, memoryKiB: params.memoryKiB, passes: params.passes, parallelism: params.parallelism, salt: params.salt };
}

/** The stored KDF params: Argon2id, or legacy PBKDF2 (strict decoders; anything else is storage.meta). */
function decodeStoredParams(stored: unknown): { kind: 'argon2id'; params: KdfParams } | { kind: 'legacy'; params: LegacyKdfParams } {
  if (typeof stored !== 'object' || stored === null) throw new StorageError('storage.meta', 'KDF parameters are missing or corrupt');
  // Strict and bounded (KdfParamsError, crypto.kdf-params): a tampered meta store can neither weaken nor stall the unlock.
  if ((stored as { alg?: unknown }).alg === 'pbkdf2-sha256') {
    checkLegacyKdfParams(stored);
    return { kind: 'legacy', params: stored };
  }
  checkKdfParams(stored);
  return { kind: 'argon2id', params: stored };
}

/** Length rule only: synchronous, for the form (the strength check loads its estimator). */
export function checkNewPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new StorageError('storage.password', `choose a password of at least ${MIN_PASSWORD_LENGTH} characters`);
  }
}

/**
 * A new password must be at least 8 characters and score MIN_PASSWORD_SCORE with zxcvbn-ts
 * (PROTOCOL.md 6.1); the estimator is a chunk of its own, loaded here on demand.
 */
export async function checkPasswordStrength(password: string): Promise<void> {
  checkNewPassword(password);
  const { estimate } = await import('./password-estimator.ts');
  const e = estimate(password);
  if (e.score >= MIN_PASSWORD_SCORE) return;
  const advice = [e.warning, ...e.suggestions].filter((x): x is string => x !== null && x !== '').join(' ');
  throw new StorageError('storage.weak-password', `this password is too easy to guess.${advice === '' ? '' : ` ${advice}`}`);
}

function openOrWrongPassword<T>(f: () => T, what: string): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AuthError) throw new StorageError('storage.password', what, { cause: e });
    throw e;
  }
}

export class Vault {
  /** The file-chunk key F (PROTOCOL.md 6.7), derived from D on first use after the unlock. */
  private filesKey: ReturnType<typeof deriveFilesKey> | undefined;

  private constructor(
    private readonly db: Db,
    private readonly key: SymmetricKey,
  ) {}

  /** Room `roomId`'s file chunks (web/storage/file-store.ts), sealed under F = HKDF(D). */
  async fileStore(roomId: string): Promise<IdbFileStore> {
    this.filesKey ??= deriveFilesKey(this.key);
    return new IdbFileStore(this.db, await this.filesKey, roomId);
  }

  /** Forget a room: its file chunks too. */
  async deleteFiles(roomId: string): Promise<void> {
    await this.db.delete('files', IDBKeyRange.bound(`${roomId}/`, `${roomId}/\uffff`));
  }

  /** First run: a random data key, wrapped by the password key of new Argon2id params. */
  static async create(password: string): Promise<Vault> {
    await checkPasswordStrength(password);
    const db = await openDb();
    if ((await db.get('meta', 'kdf')) !== undefined) throw new StorageError('storage.exists', 'a password is already set; unlock instead');
    const params = newKdfParams();
    const passwordKey = await deriveStorageKey(password, params);
    const dataKey = newDataKey();
    const tx = db.transaction('meta', 'readwrite');
    await tx.store.put(storedParams(params), 'kdf');
    await tx.store.put(wrapDataKey(passwordKey, dataKey), 'key');
    await tx.done;
    return new Vault(db, dataKey);
  }

  /** Later runs: derive the password key, unwrap the data key (a wrong password fails there). */
  static async unlock(password: string): Promise<Vault> {
    const db = await openDb();
    const stored = decodeStoredParams(await db.get('meta', 'kdf'));
    if (stored.kind === 'legacy') return Vault.migrate(db, password, stored.params);
    const wrapped = await db.get('meta', 'key');
    if (!(wrapped instanceof Uint8Array)) throw new StorageError('storage.meta', 'the wrapped data key is missing or corrupt');
    const passwordKey = await deriveStorageKey(password, stored.params);
    return new Vault(
      db,
      openOrWrongPassword(() => unwrapDataKey(passwordKey, wrapped), 'wrong password'),
    );
  }

  /**
   * PROTOCOL.md 6.4: a store written before Argon2id opens with its PBKDF2 key K once; then, in ONE
   * transaction, every record moves from K to a fresh random data key and the meta records are
   * replaced (an aborted transaction leaves the legacy store intact for the next try).
   */
  private static async migrate(db: Db, password: string, legacy: LegacyKdfParams): Promise<Vault> {
    const check = await db.get('meta', 'check');
    if (!(check instanceof Uint8Array)) throw new StorageError('storage.meta', 'check record is missing or corrupt');
    const oldKey = await deriveLegacyStorageKey(password, legacy);
    const text = openOrWrongPassword(() => utf8Decode(cellOpen(oldKey, check, LEGACY_CHECK_CONTEXT)), 'wrong password');
    if (text !== LEGACY_CHECK_TEXT) throw new StorageError('storage.meta', 'check record has wrong content');
    // Everything slow happens before the transaction (an IndexedDB transaction ends when it idles).
    const params = newKdfParams();
    const passwordKey = await deriveStorageKey(password, params);
    const dataKey = newDataKey();
    const tx = db.transaction(['meta', ...SEALED_STORES], 'readwrite');
    try {
      for (const store of SEALED_STORES) {
        const s = tx.objectStore(store);
        for (let cursor = await s.openCursor(); cursor; cursor = await cursor.continue()) {
          const ctx = recordContext(store, cursor.key);
          await cursor.update(cellSeal(dataKey, cellOpen(oldKey, cursor.value, ctx), ctx));
        }
      }
      const meta = tx.objectStore('meta');
      await meta.put(storedParams(params), 'kdf');
      await meta.put(wrapDataKey(passwordKey, dataKey), 'key');
      await meta.delete('check');
    } catch (e) {
      // A thrown error does not abort an IndexedDB transaction by itself: the updates made so far
      // would commit, leaving records under two keys. Abort, so nothing moves.
      tx.abort();
      await tx.done.catch(() => undefined); // rejects with the AbortError asked for on the line above
      throw e;
    }
    await tx.done;
    return new Vault(db, dataKey);
  }

  async put(store: SealedStore, key: string, plaintext: Uint8Array): Promise<void> {
    await this.db.put(store, cellSeal(this.key, plaintext, recordContext(store, key)), key);
  }

  /** Several records in ONE transaction, written in the given order (all or none). */
  async putAll(records: ReadonlyArray<{ store: SealedStore; key: string; plaintext: Uint8Array }>): Promise<void> {
    const sealed = records.map((r) => ({ ...r, value: cellSeal(this.key, r.plaintext, recordContext(r.store, r.key)) }));
    const tx = this.db.transaction([...new Set(records.map((r) => r.store))], 'readwrite');
    for (const r of sealed) void tx.objectStore(r.store).put(r.value, r.key);
    await tx.done;
  }

  /** The record's plaintext, undefined if absent; AuthError if it was tampered with or moved. */
  async get(store: SealedStore, key: string): Promise<Uint8Array | undefined> {
    const sealed = await this.db.get(store, key);
    if (sealed === undefined) return undefined;
    return cellOpen(this.key, sealed, recordContext(store, key));
  }

  /**
   * Every record whose key starts with `prefix`, in key order. A record that does not open (tampered,
   * moved to another key, corrupt) is never returned: it goes to `refused` if given, else throws.
   */
  async list(
    store: SealedStore,
    prefix = '',
    refused?: (key: string, error: AuthError) => void,
  ): Promise<Array<{ key: string; value: Uint8Array }>> {
    const range = prefix === '' ? undefined : IDBKeyRange.bound(prefix, prefix + '\uffff');
    const tx = this.db.transaction(store, 'readonly');
    const out: Array<{ key: string; value: Uint8Array }> = [];
    for (let cursor = await tx.store.openCursor(range); cursor; cursor = await cursor.continue()) {
      try {
        out.push({ key: cursor.key, value: cellOpen(this.key, cursor.value, recordContext(store, cursor.key)) });
      } catch (e) {
        if (!(e instanceof AuthError) || refused === undefined) throw e;
        refused(cursor.key, e);
      }
    }
    await tx.done;
    return out;
  }

  async delete(store: SealedStore, key: string): Promise<void> {
    await this.db.delete(store, key);
  }

  async deletePrefix(store: SealedStore, prefix: string): Promise<void> {
    await this.db.delete(store, IDBKeyRange.bound(prefix, prefix + '\uffff'));
  }

  /**
   * Change password (PROTOCOL.md 6.4): check the current one by unwrapping the data key with it, check
   * the new one's strength, then rewrap the same data key under new params in one transaction. No
   * record is re-encrypted.
   */
  async changePassword(oldPassword: string, newPassword: string): Promise<void> {
    await checkPasswordStrength(newPassword);
    const stored = decodeStoredParams(await this.db.get('meta', 'kdf'));
    if (stored.kind !== 'argon2id') throw new StorageError('storage.meta', 'the store was not migrated');
    const wrapped = await this.db.get('meta', 'key');
    if (!(wrapped instanceof Uint8Array)) throw new StorageError('storage.meta', 'the wrapped data key is missing');
    const oldKey = await deriveStorageKey(oldPassword, stored.params);
    openOrWrongPassword(() => unwrapDataKey(oldKey, wrapped), 'current password is wrong');
    const params = newKdfParams();
    const passwordKey = await deriveStorageKey(newPassword, params);
    const tx = this.db.transaction('meta', 'readwrite');
    await tx.store.put(storedParams(params), 'kdf');
    await tx.store.put(wrapDataKey(passwordKey, this.key), 'key');
    await tx.done;
  }
}
