// --state DIR: sealed records round-trip, wrong password and tampered or swapped files are refused,
// files are 0600, no password means no state (fail closed), and a PBKDF2 directory is migrated. A
// partial directory is refused and never overwritten; wrong kinds of paths and a tampered KDF cost
// are typed errors.
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthError,
  cellOpen,
  cellSeal,
  deriveLegacyStorageKey,
  deriveStorageKey,
  generateBoxKeyPair,
  generateIdentity,
  initCrypto,
  LEGACY_MAX_ITERATIONS,
  LEGACY_MIN_ITERATIONS,
  newDataKey,
  newKdfParams,
  systemRandom,
  toBase64url,
  utf8Encode,
  wrapDataKey,
  type SymmetricKey,
} from '../../crypto/index.ts';
import { createRoom, ownerStep } from '../../protocol/room/index.ts';
import type { OwnerState } from '../../protocol/room/types.ts';
import { encode } from '../../protocol/msgpack.ts';
import { MAX_OUTBOX, RecordError, type RoomIdentity, type RoomRecord } from '../../protocol/room/records.ts';
import { StateDir, StateDirError } from '../../signaling/state-dir.ts';

let tmp: string;
let keys: RoomIdentity;
let state: OwnerState;
const record = (): RoomRecord => ({
  role: 'owner',
  server: 'ws://127.0.0.1:1',
  serverKey: '',
  appUrl: 'http://127.0.0.1:1/',
  createdAt: 5,
  state,
});

beforeAll(async () => {
  await initCrypto();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-state-'));
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
  const dir = () => path.join(tmp, 'a');

  it('round-trips keys and an owner state with a log, files mode 0600', async () => {
    const store = await StateDir.open(dir(), 'correct horse');
    expect(await store.load()).toBeNull();
    await store.create({ keys, record: record() });

    const again = await StateDir.open(dir(), 'correct horse');
    expect(await again.load()).toEqual({ keys, record: record() });
    for (const f of ['kdf.json', 'identity.bin', 'room.bin']) expect((await stat(path.join(dir(), f))).mode & 0o777).toBe(0o600);
    expect((await stat(dir())).mode & 0o777).toBe(0o700);
    expect((await readFile(path.join(dir(), 'room.bin'))).includes(Buffer.from('kept in the log'))).toBe(false);
  });

  it('a new room never replaces existing files', async () => {
    const store = await StateDir.open(dir(), 'correct horse');
    const before = await readFile(path.join(dir(), 'room.bin'));
    expect(await codeOf(store.create({ keys, record: { ...record(), createdAt: 6 } }))).toBe('state.partial');
    expect(await readFile(path.join(dir(), 'room.bin'))).toEqual(before);
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
    await rename(path.join(dir(), 'identity.bin'), file);
    await rename(path.join(dir(), 'saved.bin'), path.join(dir(), 'identity.bin'));
    expect(await store.load()).toEqual({ keys, record: record() });
  });

  it('keeps Argon2id params and the wrapped data key in kdf.json, nothing else', async () => {
    const m = JSON.parse(await readFile(path.join(dir(), 'kdf.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(m).sort()).toEqual(['alg', 'key', 'memoryKiB', 'parallelism', 'passes', 'salt']);
    expect(m).toMatchObject({ alg: 'argon2id', memoryKiB: 65536, passes: 3, parallelism: 1 });
  });

  it('refuses KDF parameters weakened or made costly in kdf.json, and unknown fields', async () => {
    const meta = path.join(dir(), 'kdf.json');
    const good = await readFile(meta, 'utf8');
    const m = JSON.parse(good) as Record<string, unknown>;
    for (const [change, code] of [
      [{ memoryKiB: 1024 }, 'crypto.kdf-params'],
      [{ memoryKiB: 4 * 1024 * 1024 }, 'crypto.kdf-params'],
      [{ passes: 1 }, 'crypto.kdf-params'],
      [{ passes: 1000 }, 'crypto.kdf-params'],
      [{ parallelism: 64 }, 'crypto.kdf-params'],
      [{ alg: 'scrypt' }, 'crypto.kdf-params'],
      [{ extra: true }, 'state.corrupt'],
      [{ key: 'not base64!' }, 'state.corrupt'],
    ] as const) {
      await writeFile(meta, JSON.stringify({ ...m, ...change }));
      await expect(StateDir.open(dir(), 'correct horse'), JSON.stringify(change)).rejects.toMatchObject({ code });
    }
    await writeFile(meta, good);
    await StateDir.open(dir(), 'correct horse');
  });

  it('refuses a partial directory, naming the missing file, and leaves the rest untouched', async () => {
    const store = await StateDir.open(dir(), 'correct horse');
    for (const [gone, kept] of [
      ['identity.bin', 'room.bin'],
      ['room.bin', 'identity.bin'],
    ] as const) {
      await rename(path.join(dir(), gone), path.join(dir(), 'aside'));
      const keptBytes = await readFile(path.join(dir(), kept));
      const e = await store.load().catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'state.partial' });
      expect((e as Error).message).toContain(`no ${gone}`);
      expect(await codeOf(store.create({ keys, record: record() }))).toBe('state.partial');
      expect(await readFile(path.join(dir(), kept))).toEqual(keptBytes);
      await rename(path.join(dir(), 'aside'), path.join(dir(), gone));
    }
    // An outbox without its room is half a room too.
    const lone = await StateDir.open(path.join(tmp, 'lone-outbox'), 'correct horse');
    await lone.writeOutbox([]);
    expect(await codeOf(lone.load())).toBe('state.partial');
  });

  it('a --state that is a file, or a room.bin that is a directory, is a typed one-line error', async () => {
    const file = path.join(tmp, 'plain-file');
    await writeFile(file, 'not a directory');
    expect(await codeOf(StateDir.open(file, 'correct horse'))).toBe('state.path');
    expect(await codeOf(StateDir.open(path.join(file, 'below'), 'correct horse'))).toBe('state.path');
    const d = path.join(tmp, 'room-dir');
    const store = await StateDir.open(d, 'correct horse');
    await mkdir(path.join(d, 'room.bin'));
    const e = await store.load().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'state.path' });
    expect((e as Error).message).toMatch(/room\.bin is a directory/);
  });

  it('keeps a member outbox: empty when absent, round-trips sealed, refuses malformed, reordered or oversized lists', async () => {
    const store = await StateDir.open(path.join(tmp, 'outbox'), 'correct horse');
    expect(await store.readOutbox()).toEqual([]);
    const entries = [
      { seq: 3, text: 'waiting for the owner', at: 1, wire: new Uint8Array([1, 2, 3]) },
      { seq: 4, text: 'and another', at: 2, wire: new Uint8Array([4]) },
    ];
    await store.writeOutbox(entries);
    expect(await store.readOutbox()).toEqual(entries);
    const file = path.join(tmp, 'outbox', 'outbox.bin');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file)).includes(Buffer.from('waiting for the owner'))).toBe(false);

    // Sealed but wrong inside: the shared record codec's typed error, nothing half-read.
    const writeRaw = (value: unknown) =>
      (store as unknown as { writeSealed(n: string, b: Uint8Array): Promise<void> }).writeSealed('outbox.bin', encode(value as never));
    // The CLI's first layout (no `at`) still reads.
    await writeRaw({ v: 1, entries: [{ seq: 3, text: 'old', wire: new Uint8Array([1]) }] });
    expect(await store.readOutbox()).toEqual([{ seq: 3, text: 'old', at: 0, wire: new Uint8Array([1]) }]);
    for (const bad of [
      { v: 2, entries: [entries[1], entries[0]] },
      { v: 3, entries: [] },
      { v: 2, entries: [{ seq: 0, text: 'x', at: 0, wire: new Uint8Array([1]) }] },
      { v: 2, entries: [{ seq: 1, text: 'x', at: 0, wire: new Uint8Array(0) }] },
      { v: 2, entries: [{ seq: 1, text: 'x', at: 0, wire: new Uint8Array([1]), extra: 1 }] },
      { v: 2, entries: Array.from({ length: MAX_OUTBOX + 1 }, (_, i) => ({ seq: i + 1, text: 'x', at: 0, wire: new Uint8Array([1]) })) },
    ]) {
      await writeRaw(bad);
      await expect(store.readOutbox()).rejects.toBeInstanceOf(RecordError);
    }
    await writeFile(file, Buffer.concat([await readFile(file), Buffer.from([0])]));
    expect(await codeOf(store.readOutbox())).toBe('state.corrupt');
  });

  it('is a room driver store: the state is room.bin, the outbox is outbox.bin, upserts by seq', async () => {
    const d = path.join(tmp, 'driver-store');
    const store = await StateDir.open(d, 'correct horse');
    await store.create({ keys, record: record() });
    const { state: _, ...meta } = record();
    const rs = store.roomStore<OwnerState>(meta);
    const next = ownerStep(
      {
        random: systemRandom,
        identity: keys.identity,
        peerKey: keys.peer.publicKey,
        invites: { appUrl: meta.appUrl, server: meta.server },
      },
      state,
      { kind: 'rotate', now: 4000 },
    ).state;
    await rs.save(next);
    expect((await store.readRoom())?.state).toEqual(next);
    const o = (seq: number, text = 't') => ({ seq, text, at: seq, wire: new Uint8Array([seq]) });
    await rs.putOutbox(o(2));
    await rs.putOutbox(o(1));
    await rs.putOutbox(o(2, 'again'));
    expect(await store.readOutbox()).toEqual([o(1), o(2, 'again')]);
    await rs.removeOutbox(1);
    await rs.removeOutbox(9);
    expect(await rs.listOutbox()).toEqual([o(2, 'again')]);
    expect(await (await StateDir.open(d, 'correct horse')).readOutbox()).toEqual([o(2, 'again')]);
  });
});

describe('StateDir migration from PBKDF2 (docs/PROTOCOL.md 6.5)', () => {
  const legacyParams = { alg: 'pbkdf2-sha256' as const, iterations: LEGACY_MIN_ITERATIONS, salt: new Uint8Array(16).fill(7) };
  const seal = (key: SymmetricKey, name: string, plain: Uint8Array): Uint8Array => cellSeal(key, plain, utf8Encode(`zeroroom-cli/${name}`));
  let identity: ReturnType<typeof generateIdentity>;
  const peer = generateBoxKeyPair();
  let identityPlain: Uint8Array;
  beforeAll(() => {
    identity = generateIdentity();
    identityPlain = encode({ v: 1, ipub: identity.publicKey, ipriv: identity.privateKey, npub: peer.publicKey, nsec: peer.secretKey });
  });

  /** A directory exactly as the code before Argon2id wrote it: K = PBKDF2(password) seals every file. */
  async function legacyDir(name: string): Promise<{ dir: string; oldKey: SymmetricKey; legacyJson: string }> {
    const d = path.join(tmp, name);
    await mkdir(d, { recursive: true, mode: 0o700 });
    const oldKey = await deriveLegacyStorageKey('correct horse', legacyParams);
    const legacyJson = JSON.stringify({
      alg: 'pbkdf2-sha256',
      iterations: legacyParams.iterations,
      salt: toBase64url(legacyParams.salt),
      check: toBase64url(cellSeal(oldKey, utf8Encode('zeroroom cli state v1'), utf8Encode('meta/check'))),
    });
    await writeFile(path.join(d, 'kdf.json'), legacyJson + '\n', { mode: 0o600 });
    await writeFile(path.join(d, 'identity.bin'), seal(oldKey, 'identity.bin', identityPlain), { mode: 0o600 });
    await writeFile(path.join(d, 'outbox.bin'), seal(oldKey, 'outbox.bin', encode({ v: 1, entries: [] })), { mode: 0o600 });
    return { dir: d, oldKey, legacyJson };
  }

  it('refuses a legacy kdf.json that asks for far more iterations than the old code wrote, before deriving anything', async () => {
    const { dir, legacyJson } = await legacyDir('legacy-costly');
    const legacy = JSON.parse(legacyJson) as Record<string, unknown>;
    for (const iterations of [LEGACY_MAX_ITERATIONS + 1, 100_000_000]) {
      await writeFile(path.join(dir, 'kdf.json'), JSON.stringify({ ...legacy, iterations }));
      await expect(StateDir.open(dir, 'correct horse')).rejects.toMatchObject({ code: 'crypto.kdf-params' });
    }
    expect(LEGACY_MAX_ITERATIONS).toBeLessThanOrEqual(3_000_000);
  });

  it('a wrong password changes nothing', async () => {
    const { dir, legacyJson } = await legacyDir('legacy-wrong');
    expect(await codeOf(StateDir.open(dir, 'wrong horse'))).toBe('state.password');
    expect((await readFile(path.join(dir, 'kdf.json'), 'utf8')).trim()).toBe(legacyJson);
  });

  it('the next open with the right password moves every file to a random data key and drops the PBKDF2 params', async () => {
    const { dir, oldKey } = await legacyDir('legacy-ok');
    const store = await StateDir.open(dir, 'correct horse');
    expect((await store.readKeys())?.identity.publicKey).toEqual(identity.publicKey);
    expect(await store.readOutbox()).toEqual([]);
    const m = JSON.parse(await readFile(path.join(dir, 'kdf.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(m).sort()).toEqual(['alg', 'key', 'memoryKiB', 'parallelism', 'passes', 'salt']);
    expect(m.alg).toBe('argon2id');
    // A PBKDF2 guess opens nothing any more: the files are sealed under the new random data key.
    for (const f of ['identity.bin', 'outbox.bin']) {
      const sealed = new Uint8Array(await readFile(path.join(dir, f)));
      expect(() => cellOpen(oldKey, sealed, utf8Encode(`zeroroom-cli/${f}`))).toThrow(AuthError);
    }
    // Opens again (now the Argon2id path), and a wrong password is still refused.
    expect((await (await StateDir.open(dir, 'correct horse')).readKeys())?.peer.publicKey).toEqual(peer.publicKey);
    expect(await codeOf(StateDir.open(dir, 'wrong horse'))).toBe('state.password');
  });

  it('an interrupted migration (kdf.json replaced, one file moved, one not) is finished by the next open', async () => {
    const { dir, oldKey, legacyJson } = await legacyDir('legacy-crash');
    const params = newKdfParams();
    const dataKey = newDataKey();
    const wrapped = wrapDataKey(await deriveStorageKey('correct horse', params), dataKey);
    const legacy = JSON.parse(legacyJson) as Record<string, unknown>;
    await writeFile(
      path.join(dir, 'kdf.json'),
      JSON.stringify({
        alg: 'argon2id',
        memoryKiB: params.memoryKiB,
        passes: params.passes,
        parallelism: params.parallelism,
        salt: toBase64url(params.salt),
        key: toBase64url(wrapped),
        legacy: { iterations: legacy.iterations, salt: legacy.salt, check: legacy.check },
      }),
    );
    await writeFile(path.join(dir, 'identity.bin'), seal(dataKey, 'identity.bin', identityPlain)); // moved before the crash
    const store = await StateDir.open(dir, 'correct horse');
    expect((await store.readKeys())?.identity.publicKey).toEqual(identity.publicKey);
    expect(await store.readOutbox()).toEqual([]);
    const m = JSON.parse(await readFile(path.join(dir, 'kdf.json'), 'utf8')) as Record<string, unknown>;
    expect(m.legacy).toBeUndefined();
    const outbox = new Uint8Array(await readFile(path.join(dir, 'outbox.bin')));
    expect(() => cellOpen(oldKey, outbox, utf8Encode('zeroroom-cli/outbox.bin'))).toThrow(AuthError);
  });

  it('refuses a legacy kdf.json with weakened params or unknown fields', async () => {
    const { dir, legacyJson } = await legacyDir('legacy-bad');
    const m = JSON.parse(legacyJson) as Record<string, unknown>;
    await writeFile(path.join(dir, 'kdf.json'), JSON.stringify({ ...m, iterations: 1000 }));
    await expect(StateDir.open(dir, 'correct horse')).rejects.toMatchObject({ code: 'crypto.kdf-params' });
    await writeFile(path.join(dir, 'kdf.json'), JSON.stringify({ ...m, extra: 1 }));
    await expect(StateDir.open(dir, 'correct horse')).rejects.toMatchObject({ code: 'state.corrupt' });
  });
});

describe('StateDir: a sealed generation counter refuses a rolled-back room.bin (PROTOCOL.md 6.6)', () => {
  const ctx = () => ({
    random: systemRandom,
    identity: keys.identity,
    peerKey: keys.peer.publicKey,
    invites: { appUrl: 'http://127.0.0.1:1/', server: 'ws://127.0.0.1:1' },
  });

  it('an older, validly sealed room.bin written back (a revoked invite again pending) is refused; nothing changes', async () => {
    const d = path.join(tmp, 'rollback');
    const store = await StateDir.open(d, 'correct horse');
    await store.create({ keys, record: record() });
    const rs = store.roomStore<OwnerState>((({ state: _, ...m }) => m)(record()));
    const invite = state.invites[state.invites.length - 1]!;
    const revoked = ownerStep(ctx(), state, { kind: 'revoke', invite: invite.id, now: 4000 }).state;
    const older = await readFile(path.join(d, 'room.bin'));
    await rs.save(revoked);
    await writeFile(path.join(d, 'room.bin'), older);
    const before = await Promise.all(['room.bin', 'generation.bin', 'identity.bin'].map((f) => readFile(path.join(d, f))));

    const again = await StateDir.open(d, 'correct horse');
    const e = await again.load().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StateDirError);
    expect(e).toMatchObject({ code: 'state.rollback' });
    expect((e as Error).message).toMatch(/generation 1, generation\.bin says 2/);
    const after = await Promise.all(['room.bin', 'generation.bin', 'identity.bin'].map((f) => readFile(path.join(d, f))));
    expect(after).toEqual(before);
  });

  it('a missing generation.bin next to a room.bin saved more than once is refused; a crash before the mark loads', async () => {
    const d = path.join(tmp, 'rollback-mark');
    const store = await StateDir.open(d, 'correct horse');
    await store.create({ keys, record: record() });
    const mark1 = await readFile(path.join(d, 'generation.bin'));
    await store.writeRoom(record());
    // Crash between room.bin (generation 2) and its mark: the old mark (1) is still there.
    await writeFile(path.join(d, 'generation.bin'), mark1);
    expect(await (await StateDir.open(d, 'correct horse')).load()).toEqual({ keys, record: record() });
    await rm(path.join(d, 'generation.bin'));
    expect(await codeOf((await StateDir.open(d, 'correct horse')).load())).toBe('state.rollback');
  });

  it('a generation.bin from another directory does not open', async () => {
    const d = path.join(tmp, 'rollback-moved');
    const store = await StateDir.open(d, 'correct horse');
    await store.create({ keys, record: record() });
    await writeFile(path.join(d, 'generation.bin'), await readFile(path.join(tmp, 'rollback', 'generation.bin')));
    expect(await codeOf(store.readRoom())).toBe('state.corrupt');
  });
});
