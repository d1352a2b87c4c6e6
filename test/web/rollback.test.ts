/**
 * The rollback guard of the web vault (docs/PROTOCOL.md 6.6, web/session/vault-store.ts) on an
 * in-memory IndexedDB (fake-indexeddb): a validly sealed OLDER room record written back over the
 * newest one (it would bring back a revoked invite) is refused on load with `storage.rollback`, and
 * nothing is deleted; a crash between the record and its mark, and a store written before marks,
 * still load.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom } from '../../crypto/index.ts';
import { createRoom, ownerStep } from '../../protocol/room/index.ts';
import {
  RollbackError,
  decodeGenerationMark,
  decodeStoredRoom,
  encodeGenerationMark,
  encodeRoomRecord,
  type RoomIdentity,
  type RoomRecord,
} from '../../protocol/room/records.ts';
import type { OwnerState } from '../../protocol/room/types.ts';
import { loadRoom, markKey, saveNewRoom, vaultStore } from '../../web/session/vault-store.ts';
import * as dbm from '../../web/storage/db.ts';
import { Vault } from '../../web/storage/vault.ts';

const PASSWORD = 'correct horse battery';
vi.setConfig({ testTimeout: 90_000 });

let keys: RoomIdentity;
let withInvite: OwnerState;
let revoked: OwnerState;
let vault: Vault;

beforeAll(async () => {
  await initCrypto();
  keys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  const ctx = {
    random: systemRandom,
    identity: keys.identity,
    peerKey: keys.peer.publicKey,
    invites: { appUrl: 'http://127.0.0.1:1/', server: 'ws://127.0.0.1:1' },
  };
  const created = createRoom(ctx, { now: 1000, ownerName: 'o' }).state;
  withInvite = ownerStep(ctx, created, { kind: 'invite', now: 2000 }).state;
  const invite = withInvite.invites[withInvite.invites.length - 1]!;
  revoked = ownerStep(ctx, withInvite, { kind: 'revoke', invite: invite.id, now: 3000 }).state;
  expect(revoked).not.toEqual(withInvite);
});

beforeEach(async () => {
  await dbm.closeDb();
  vi.stubGlobal('indexedDB', new IDBFactory());
  vault = await Vault.create(PASSWORD);
});

const meta: Omit<RoomRecord, 'state'> = { role: 'owner', server: 'ws://127.0.0.1:1', serverKey: '', appUrl: '', createdAt: 1 };
const noRefusal = () => () => {
  throw new Error('no record should be refused');
};

async function raw(store: 'rooms' | 'keys', key: string): Promise<Uint8Array | undefined> {
  return (await dbm.openDb()).get(store, key);
}

async function setRaw(store: 'rooms' | 'keys', key: string, value: Uint8Array): Promise<void> {
  await (await dbm.openDb()).put(store, value, key);
}

/** A new room, then two saves (invite created, invite revoked); returns the room id. */
async function roomWithHistory(): Promise<{ id: string; olderRecord: Uint8Array }> {
  const id = Buffer.from(withInvite.room).toString('hex');
  await saveNewRoom(vault, keys, { ...meta, state: withInvite });
  const store = vaultStore<OwnerState>(vault, id, meta, () => undefined);
  await store.save(withInvite);
  const olderRecord = (await raw('rooms', id))!;
  await store.save(revoked);
  return { id, olderRecord };
}

describe('web vault: a sealed generation counter per room record refuses rollback (PROTOCOL.md 6.6)', () => {
  it('each save raises the record generation and its mark together', async () => {
    const { id } = await roomWithHistory();
    const { gen } = decodeStoredRoom((await vault.get('rooms', id))!);
    expect(gen).toBe(3); // new room 1, two saves
    expect(decodeGenerationMark((await vault.get('keys', markKey(id)))!)).toBe(3);
    const loaded = await loadRoom(vault, id, noRefusal);
    expect(loaded.record.state).toEqual({ ...revoked, log: [] });
  });

  it('an older, validly sealed room record written back (restoring a revoked invite) is refused; nothing is deleted', async () => {
    const { id, olderRecord } = await roomWithHistory();
    const newest = (await raw('rooms', id))!;
    await setRaw('rooms', id, olderRecord);
    // The older record still opens and decodes: only the generation tells it apart.
    const older = decodeStoredRoom((await vault.get('rooms', id))!);
    expect((older.record.state as OwnerState).invites).toEqual(withInvite.invites);
    const e = await loadRoom(vault, id, noRefusal).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RollbackError);
    expect(e).toMatchObject({ code: 'storage.rollback' });
    expect((e as Error).message).toMatch(/generation 2 but generation 3/);
    // Nothing was removed: the records stay, and putting the newest one back opens the room again.
    expect(await raw('rooms', id)).toEqual(olderRecord);
    expect(await vault.get('identities', id)).toBeDefined();
    await setRaw('rooms', id, newest);
    expect(((await loadRoom(vault, id, noRefusal)).record.state as OwnerState).invites).toEqual(revoked.invites);
  });

  it('a deleted mark next to a record that saved past its first generation is refused', async () => {
    const { id } = await roomWithHistory();
    await vault.delete('keys', markKey(id));
    await expect(loadRoom(vault, id, noRefusal)).rejects.toMatchObject({ code: 'storage.rollback' });
  });

  it('a mark moved from another room does not open (its sealed context names the room)', async () => {
    const { id } = await roomWithHistory();
    const mark = (await raw('keys', markKey(id)))!;
    await setRaw('keys', markKey('00'.repeat(32)), mark);
    await expect(vault.get('keys', markKey('00'.repeat(32)))).rejects.toMatchObject({ code: 'crypto.auth' });
  });

  it('a record one generation ahead of its mark (a crash between the two) loads, and the mark catches up', async () => {
    const { id } = await roomWithHistory();
    await vault.put('keys', markKey(id), encodeGenerationMark(2));
    await loadRoom(vault, id, noRefusal);
    expect(decodeGenerationMark((await vault.get('keys', markKey(id)))!)).toBe(3);
  });

  it('a record written before generations (format 2, no mark) loads; the next save starts the count', async () => {
    const id = Buffer.from(withInvite.room).toString('hex');
    await vault.put('identities', id, (await import('../../protocol/room/records.ts')).encodeRoomIdentity(keys));
    const ungenerated = encodeRoomRecord({ ...meta, state: withInvite }, 0); // reads like format 2: generation 0
    await vault.put('rooms', id, ungenerated);
    await loadRoom(vault, id, noRefusal);
    expect(await vault.get('keys', markKey(id))).toBeUndefined();
    const store = vaultStore<OwnerState>(vault, id, meta, () => undefined);
    await store.save(revoked);
    expect(decodeStoredRoom((await vault.get('rooms', id))!).gen).toBe(1);
    expect(decodeGenerationMark((await vault.get('keys', markKey(id)))!)).toBe(1);
  });

  it('the app (Session.open) leaves a rolled-back room closed and says why, deleting nothing', async () => {
    const { id, olderRecord } = await roomWithHistory();
    await setRaw('rooms', id, olderRecord);
    const { Session } = await import('../../web/session/session.ts');
    const { S } = await import('../../web/strings.ts');
    const reports: string[] = [];
    const config = { iceServers: [], appUrl: 'http://127.0.0.1:1/', signalingUrl: 'ws://127.0.0.1:1', serverKey: '' };
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const session = await Session.open(vault, config, (t) => reports.push(t));
    errors.mockRestore();
    expect(reports).toEqual([S.rollbackRefused(1)]);
    let shown: ReadonlyMap<string, unknown> | null = null;
    session.onChange((rooms) => (shown = rooms));
    expect(shown!.size).toBe(0);
    session.close();
    expect(await raw('rooms', id)).toEqual(olderRecord);
    expect(await vault.get('identities', id)).toBeDefined();
  });

  it('refuses a malformed mark with storage.record', async () => {
    const { id } = await roomWithHistory();
    const { encode } = await import('../../protocol/msgpack.ts');
    for (const bad of [{ v: 1, gen: 0 }, { v: 2, gen: 3 }, { v: 1, gen: 3, x: 1 }, { v: 1, gen: 1.5 }, { v: 1 }]) {
      await vault.put('keys', markKey(id), encode(bad));
      await expect(loadRoom(vault, id, noRefusal)).rejects.toMatchObject({ code: 'storage.record' });
    }
  });
});
