/**
 * The IndexedDB schema (docs/PROTOCOL.md section 6). Only `meta` is in clear (KDF parameters and the
 * check record); every other store holds Secure Cell sealed bytes (web/storage/vault.ts).
 * This module has no crypto import: the lock screen reads `meta` before Themis is loaded.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

export const DB_NAME = 'zeroroom';
/** 2: adds `files` (sealed file chunks, docs/PROTOCOL.md 6.7). */
export const DB_VERSION = 2;

/** Encrypted stores; the record key is part of each record's Secure Cell context. */
export const SEALED_STORES = ['identities', 'rooms', 'keys', 'history', 'outbox', 'settings'] as const;
export type SealedStore = (typeof SEALED_STORES)[number];

/** KDF parameters as stored (structured clone, in clear); decoded strictly by crypto's checkKdfParams. */
export type StoredKdfParams = Readonly<Record<string, unknown>>;

/**
 * `kdf`: the KDF parameters; `key`: the data key wrapped by the password key (docs/PROTOCOL.md 6.2);
 * `check`: only in stores written before Argon2id (deleted by their migration).
 */
interface ZeroRoomDb extends DBSchema {
  meta: { key: 'kdf' | 'key' | 'check'; value: StoredKdfParams | Uint8Array };
  identities: { key: string; value: Uint8Array };
  rooms: { key: string; value: Uint8Array };
  keys: { key: string; value: Uint8Array };
  history: { key: string; value: Uint8Array };
  outbox: { key: string; value: Uint8Array };
  settings: { key: string; value: Uint8Array };
  /** File chunks, each sealed with AES-256-GCM under the storage file key (web/storage/file-store.ts). */
  files: { key: string; value: Uint8Array };
}

export type Db = IDBPDatabase<ZeroRoomDb>;

let opened: Promise<Db> | undefined;

export function openDb(): Promise<Db> {
  opened ??= openDB<ZeroRoomDb>(DB_NAME, DB_VERSION, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('meta');
        for (const name of SEALED_STORES) db.createObjectStore(name);
      }
      if (oldVersion < 2) db.createObjectStore('files');
    },
  });
  return opened;
}

/** Close the database and forget the connection (the next openDb opens it again). */
export async function closeDb(): Promise<void> {
  const db = opened;
  opened = undefined;
  if (db !== undefined) (await db).close();
}

/** True once a password has been chosen (the KDF parameters exist). */
export async function hasVault(): Promise<boolean> {
  const db = await openDb();
  return (await db.get('meta', 'kdf')) !== undefined;
}
