/**
 * Encrypted records (docs/PROTOCOL.md section 6). Each record is stored as
 *   cellSeal(storageKey, plaintext, context = utf8("<store>/<recordKey>"))
 * so a record copied to another key or store fails to open. The storage key is derived once per
 * unlock (PBKDF2 parameters and a sealed check record live in `meta`, in clear).
 */
import {
  AuthError,
  cellOpen,
  cellSeal,
  checkKdfParams,
  deriveStorageKey,
  newKdfParams,
  utf8Decode,
  utf8Encode,
  type KdfParams,
  type SymmetricKey,
} from '../../crypto/index.ts';
import { ZeroRoomError } from '../../protocol/errors.ts';
import { openDb, SEALED_STORES, type Db, type SealedStore, type StoredKdfParams } from './db.ts';

const CHECK_TEXT = 'zeroroom storage check v1';
const CHECK_CONTEXT = utf8Encode('meta/check');
const MIN_PASSWORD_LENGTH = 8;

export class StorageError extends ZeroRoomError {}

export function recordContext(store: SealedStore, key: string): Uint8Array {
  return utf8Encode(`${store}/${key}`);
}

function toKdfParams(stored: unknown): KdfParams {
  if (typeof stored !== 'object' || stored === null) throw new StorageError('storage.meta', 'KDF parameters are missing or corrupt');
  const s = stored as Partial<StoredKdfParams>;
  const params = { alg: s.alg, iterations: s.iterations, salt: s.salt };
  checkKdfParams(params); // throws on anything weaker than the policy (a tampered meta store)
  return params;
}

export function checkNewPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new StorageError('storage.password', `choose a password of at least ${MIN_PASSWORD_LENGTH} characters`);
  }
}

export class Vault {
  private constructor(
    private readonly db: Db,
    private key: SymmetricKey,
  ) {}

  /** First run: new KDF parameters, derive the key, store params + check record. */
  static async create(password: string): Promise<Vault> {
    checkNewPassword(password);
    const db = await openDb();
    if ((await db.get('meta', 'kdf')) !== undefined) throw new StorageError('storage.exists', 'a password is already set; unlock instead');
    const params = newKdfParams();
    const key = await deriveStorageKey(password, params);
    const tx = db.transaction('meta', 'readwrite');
    await tx.store.put({ alg: params.alg, iterations: params.iterations, salt: params.salt }, 'kdf');
    await tx.store.put(cellSeal(key, utf8Encode(CHECK_TEXT), CHECK_CONTEXT), 'check');
    await tx.done;
    return new Vault(db, key);
  }

  /** Later runs: derive with the stored parameters; a wrong password fails on the check record. */
  static async unlock(password: string): Promise<Vault> {
    const db = await openDb();
    const params = toKdfParams(await db.get('meta', 'kdf'));
    const check = await db.get('meta', 'check');
    if (!(check instanceof Uint8Array)) throw new StorageError('storage.meta', 'check record is missing or corrupt');
    const key = await deriveStorageKey(password, params);
    try {
      if (utf8Decode(cellOpen(key, check, CHECK_CONTEXT)) !== CHECK_TEXT)
        throw new StorageError('storage.meta', 'check record has wrong content');
    } catch (e) {
      if (e instanceof AuthError) throw new StorageError('storage.password', 'wrong password', { cause: e });
      throw e;
    }
    return new Vault(db, key);
  }

  async put(store: SealedStore, key: string, plaintext: Uint8Array): Promise<void> {
    await this.db.put(store, cellSeal(this.key, plaintext, recordContext(store, key)), key);
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
   * Change password: derive the new key, then in ONE transaction open every record with the old key,
   * seal it with the new one and replace the KDF params and check record. Either all records move to
   * the new key or none do (an aborted transaction leaves the old password working).
   */
  async changePassword(oldPassword: string, newPassword: string): Promise<void> {
    checkNewPassword(newPassword);
    const params = toKdfParams(await this.db.get('meta', 'kdf'));
    const oldKey = await deriveStorageKey(oldPassword, params);
    const check = await this.db.get('meta', 'check');
    if (!(check instanceof Uint8Array)) throw new StorageError('storage.meta', 'check record is missing');
    try {
      cellOpen(oldKey, check, CHECK_CONTEXT);
    } catch (e) {
      if (e instanceof AuthError) throw new StorageError('storage.password', 'current password is wrong', { cause: e });
      throw e;
    }
    const newParams = newKdfParams();
    const newKey = await deriveStorageKey(newPassword, newParams);
    const tx = this.db.transaction(['meta', ...SEALED_STORES], 'readwrite');
    for (const store of SEALED_STORES) {
      const s = tx.objectStore(store);
      for (let cursor = await s.openCursor(); cursor; cursor = await cursor.continue()) {
        const ctx = recordContext(store, cursor.key);
        await cursor.update(cellSeal(newKey, cellOpen(oldKey, cursor.value, ctx), ctx));
      }
    }
    const meta = tx.objectStore('meta');
    await meta.put({ alg: newParams.alg, iterations: newParams.iterations, salt: newParams.salt }, 'kdf');
    await meta.put(cellSeal(newKey, utf8Encode(CHECK_TEXT), CHECK_CONTEXT), 'check');
    await tx.done;
    this.key = newKey;
  }
}
