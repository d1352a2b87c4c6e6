/**
 * The web vault's part of a member key update (docs/PROTOCOL.md 5.8.1, web/session/vault-store.ts)
 * on an in-memory IndexedDB: the pending keys are stored (sealed) and loaded back as pending; the
 * switch makes them the room's identity and removes the pending record; a crash between those two
 * writes still loads the new keys with nothing pending; forgetting the room deletes them.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom } from '../../crypto/index.ts';
import { createRoom } from '../../protocol/room/index.ts';
import { encodeRoomIdentity, type RoomIdentity, type RoomRecord } from '../../protocol/room/records.ts';
import type { OwnerState } from '../../protocol/room/types.ts';
import { loadRoom, pendingKey, saveNewRoom, vaultStore } from '../../web/session/vault-store.ts';
import * as dbm from '../../web/storage/db.ts';
import { Vault } from '../../web/storage/vault.ts';

vi.setConfig({ testTimeout: 90_000 });

let keys: RoomIdentity;
let next: RoomIdentity;
let state: OwnerState;
let vault: Vault;

beforeAll(async () => {
  await initCrypto();
  keys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  next = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  state = createRoom(
    {
      random: systemRandom,
      identity: keys.identity,
      peerKey: keys.peer.publicKey,
      invites: { appUrl: 'http://127.0.0.1:1/', server: 'ws://127.0.0.1:1' },
    },
    { now: 1000, ownerName: 'o' },
  ).state;
});

beforeEach(async () => {
  await dbm.closeDb();
  vi.stubGlobal('indexedDB', new IDBFactory());
  vault = await Vault.create('key update store password');
});

const meta: Omit<RoomRecord, 'state'> = { role: 'owner', server: 'ws://127.0.0.1:1', serverKey: '', appUrl: '', createdAt: 1 };
const noRefusal = () => () => {
  throw new Error('no record should be refused');
};

describe('key update records in the vault (5.8.1)', () => {
  it('pending keys load as pending; the switch makes them the identity; a crash in between loads the new keys', async () => {
    const id = Buffer.from(state.room).toString('hex');
    await saveNewRoom(vault, keys, { ...meta, state });
    const store = vaultStore<OwnerState>(vault, id, meta, () => undefined);
    expect((await loadRoom(vault, id, noRefusal)).pending).toBeNull();

    await store.saveKeys!({ identity: keys, pending: next });
    const asked = await loadRoom(vault, id, noRefusal);
    expect(asked.keys).toEqual(keys);
    expect(asked.pending).toEqual(next);
    // Sealed like every record: the plaintext key is not in the database.
    const raw = await (await dbm.openDb()).get('keys', pendingKey(id));
    expect(Buffer.from(raw!).includes(Buffer.from(next.peer.secretKey))).toBe(false);

    // A crash after the identity write, before the pending record went: the new keys, none pending.
    await vault.put('identities', id, encodeRoomIdentity(next));
    const crashed = await loadRoom(vault, id, noRefusal);
    expect(crashed.keys).toEqual(next);
    expect(crashed.pending).toBeNull();

    await store.saveKeys!({ identity: next, pending: null });
    const switched = await loadRoom(vault, id, noRefusal);
    expect(switched.keys).toEqual(next);
    expect(switched.pending).toBeNull();
    expect(await vault.get('keys', pendingKey(id))).toBeUndefined();
  });
});
