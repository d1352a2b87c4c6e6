// --state DIR: sealed records round-trip, wrong password and tampered or swapped files are refused,
// files are 0600, and no password means no state (fail closed).
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom } from '../../crypto/index.ts';
import { createRoom, ownerStep } from '../../protocol/room/index.ts';
import type { OwnerState } from '../../protocol/room/types.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { encode } from '../../protocol/msgpack.ts';
import { MAX_OUTBOX, StateDir, StateDirError } from '../../signaling/state-dir.ts';

let tmp: string;
beforeAll(async () => {
  await initCrypto();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-state-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StateDirError);
  return (e as StateDirError).code;
}

describe('StateDir', () => {
  let keys: { identity: ReturnType<typeof generateIdentity>; peer: ReturnType<typeof generateBoxKeyPair> };
  const dir = () => path.join(tmp, 'a');
  let state: OwnerState;

  it('round-trips keys and an owner state with a log, files mode 0600', async () => {
    keys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    const ctx = {
      random: systemRandom,
      identity: keys.identity,
      peerKey: keys.peer.publicKey,
      invites: { appUrl: 'http://127.0.0.1:1/', server: 'ws://127.0.0.1:1' },
    };
    state = createRoom(ctx, { now: 1000, ownerName: 'o' }).state;
    state = ownerStep(ctx, state, { kind: 'send', text: 'kept in the log', now: 2000 }).state;
    state = ownerStep(ctx, state, { kind: 'invite', now: 3000 }).state;
    const store = await StateDir.open(dir(), 'correct horse');
    await store.writeKeys(keys);
    await store.writeRoom({ role: 'owner', server: 'ws://127.0.0.1:1', serverKey: '', appUrl: 'http://127.0.0.1:1/', state });

    const again = await StateDir.open(dir(), 'correct horse');
    expect(await again.readKeys()).toEqual(keys);
    const room = await again.readRoom();
    expect(room?.state).toEqual(state);
    for (const f of ['kdf.json', 'identity.bin', 'room.bin']) expect((await stat(path.join(dir(), f))).mode & 0o777).toBe(0o600);
    expect((await readFile(path.join(dir(), 'room.bin'))).includes(Buffer.from('kept in the log'))).toBe(false);
  });

  it('refuses a wrong password', async () => {
    expect(await codeOf(StateDir.open(dir(), 'wrong horse'))).toBe('state.password');
  });

  it('refuses no password at all', async () => {
    expect(await codeOf(StateDir.open(path.join(tmp, 'b'), undefined))).toBe('state.password');
    expect(await codeOf(StateDir.open(path.join(tmp, 'b'), ''))).toBe('state.password');
  });

  it('refuses a tampered file and a file moved to another name', async () => {
    const store = await StateDir.open(dir(), 'correct horse');
    const file = path.join(dir(), 'room.bin');
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 5]! ^= 1;
    await writeFile(file, bad);
    expect(await codeOf(store.readRoom())).toBe('state.corrupt');
    await writeFile(file, good);
    await rename(path.join(dir(), 'identity.bin'), path.join(dir(), 'saved.bin'));
    await rename(file, path.join(dir(), 'identity.bin'));
    expect(await codeOf(store.readKeys())).toBe('state.corrupt');
  });

  it('refuses KDF parameters weakened in kdf.json', async () => {
    const meta = path.join(dir(), 'kdf.json');
    const m = JSON.parse(await readFile(meta, 'utf8')) as { iterations: number };
    await writeFile(meta, JSON.stringify({ ...m, iterations: 1000 }));
    await expect(StateDir.open(dir(), 'correct horse')).rejects.toMatchObject({ code: 'crypto.kdf-params' });
  });

  it('keeps a member outbox: empty when absent, round-trips sealed, refuses malformed, reordered or oversized lists', async () => {
    const store = await StateDir.open(path.join(tmp, 'outbox'), 'correct horse');
    expect(await store.readOutbox()).toEqual([]);
    const entries = [
      { seq: 3, text: 'waiting for the owner', wire: new Uint8Array([1, 2, 3]) },
      { seq: 4, text: 'and another', wire: new Uint8Array([4]) },
    ];
    await store.writeOutbox(entries);
    expect(await store.readOutbox()).toEqual(entries);
    const file = path.join(tmp, 'outbox', 'outbox.bin');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file)).includes(Buffer.from('waiting for the owner'))).toBe(false);

    // Sealed but wrong inside: the same typed errors as any decoder, nothing half-read.
    const writeRaw = (value: unknown) =>
      (store as unknown as { writeSealed(n: string, b: Uint8Array): Promise<void> }).writeSealed('outbox.bin', encode(value as never));
    await writeRaw({ v: 1, entries: [entries[1], entries[0]] });
    expect(await codeOf(store.readOutbox())).toBe('state.corrupt');
    for (const bad of [
      { v: 2, entries: [] },
      { v: 1, entries: [{ seq: 0, text: 'x', wire: new Uint8Array([1]) }] },
      { v: 1, entries: [{ seq: 1, text: 'x', wire: new Uint8Array(0) }] },
      { v: 1, entries: [{ seq: 1, text: 'x', wire: new Uint8Array([1]), extra: 1 }] },
      { v: 1, entries: Array.from({ length: MAX_OUTBOX + 1 }, (_, i) => ({ seq: i + 1, text: 'x', wire: new Uint8Array([1]) })) },
    ]) {
      await writeRaw(bad);
      await expect(store.readOutbox()).rejects.toBeInstanceOf(DecodeError);
    }
    await writeFile(file, Buffer.concat([await readFile(file), Buffer.from([0])]));
    expect(await codeOf(store.readOutbox())).toBe('state.corrupt');
  });
});
