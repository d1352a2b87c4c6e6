// `zeroroom host` / `zeroroom join` refuse bad command lines with one line on stderr and a status
// (2: usage, 1: runtime), before touching the network or the disk.
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom } from '../../crypto/index.ts';
import { createRoom } from '../../protocol/room/owner.ts';
import { StateDir } from '../../signaling/state-dir.ts';
import { type CliRun, killAll, runCli } from '../cli/spawn-cli.ts';

const runs: CliRun[] = [];
let tmp: string;
beforeAll(async () => {
  await initCrypto();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-usage-'));
});
afterAll(async () => {
  await killAll(runs);
  await rm(tmp, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | string; out: string; err: string }> {
  const r = runCli(args, { env });
  runs.push(r);
  const code = await r.exited;
  return { code, out: r.stdout(), err: r.stderr() };
}

describe('host and join command lines', () => {
  it('--help lists the options and the JSON commands', async () => {
    const host = await run(['host', '--help']);
    expect(host.code).toBe(0);
    expect(host.out).toMatch(/--rotate-every N/);
    expect(host.out).toMatch(/\{"cmd":"kick","member":ID\}/);
    const top = await run(['--help']);
    expect(top.out).toMatch(/^ {2}host /m);
    expect(top.out).toMatch(/^ {2}join /m);
  });

  it('host without --server, with a non-ws server or a bad key is a usage error', async () => {
    expect(await run(['host'])).toMatchObject({ code: 2, err: expect.stringMatching(/--server is required/) });
    expect(await run(['host', '--server', 'http://127.0.0.1:1'])).toMatchObject({ code: 2, err: expect.stringMatching(/ws:\/\//) });
    expect(await run(['host', '--server', 'ws://127.0.0.1:1', '--server-key', 'abc'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/64 hex/),
    });
  });

  it('join with a malformed invite or none is refused', async () => {
    expect(await run(['join', 'http://127.0.0.1:1/#join=AAAA'])).toMatchObject({ code: 1, err: expect.stringMatching(/invite URL/) });
    expect(await run(['join'])).toMatchObject({ code: 2, err: expect.stringMatching(/invite URL is required/) });
  });

  it('--state without ZEROROOM_PASSWORD is refused and writes nothing', async () => {
    const dir = path.join(tmp, 'state');
    const r = await run(['host', '--server', 'ws://127.0.0.1:1', '--state', dir]);
    expect(r).toMatchObject({ code: 1, err: expect.stringMatching(/ZEROROOM_PASSWORD/) });
    await expect(readdir(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--help documents the exit statuses and the invite off the command line', async () => {
    const join = await run(['join', '--help']);
    expect(join.out).toMatch(/exit status:/);
    expect(join.out).toMatch(/^ {2}3 {2}join only: the owner refused us/m);
    expect(join.out).toMatch(/ZEROROOM_INVITE/);
    expect(join.out).toMatch(/--invite-file FILE/);
    expect((await run(['host', '--help'])).out).toMatch(/exit status:/);
  });
});

describe('--state DIR that is broken', () => {
  const PASSWORD = { ZEROROOM_PASSWORD: 'usage test password' };
  const hostArgs = (dir: string) => ['host', '--server', 'ws://127.0.0.1:1', '--state', dir];

  /** A complete owner state directory, as `zeroroom host --state` leaves it. */
  async function ownerDir(name: string): Promise<string> {
    const dir = path.join(tmp, name);
    const keys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    const ctx = {
      random: systemRandom,
      identity: keys.identity,
      peerKey: keys.peer.publicKey,
      invites: { appUrl: 'http://a/', server: 'ws://a' },
    };
    const state = createRoom(ctx, { now: 1, ownerName: 'o' }).state;
    const store = await StateDir.open(dir, PASSWORD.ZEROROOM_PASSWORD);
    await store.create({ keys, record: { role: 'owner', server: 'ws://a', serverKey: '', appUrl: 'http://a/', createdAt: 1, state } });
    return dir;
  }

  /** One line on stderr, no stack trace. */
  function oneLine(err: string): void {
    expect(
      err
        .trim()
        .split('\n')
        .filter((l) => !l.includes('unexpected operator')),
    ).toHaveLength(1);
    expect(err).not.toMatch(/^\s+at /m);
  }

  it('a missing identity.bin or room.bin is refused, naming it; the other file is left as it was', async () => {
    for (const gone of ['identity.bin', 'room.bin']) {
      const dir = await ownerDir(`partial-${gone}`);
      await rename(path.join(dir, gone), path.join(tmp, `${gone}.aside`));
      const before = await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(path.join(dir, f))] as const));
      const r = await run(hostArgs(dir), PASSWORD);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`no ${gone.replace('.', '\\.')}`));
      oneLine(r.err);
      const after = await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(path.join(dir, f))] as const));
      expect(after).toEqual(before);
    }
  });

  it('an older room.bin written back is refused with one line and status 1, and no file changes (PROTOCOL.md 6.6)', async () => {
    const dir = await ownerDir('rolled-back');
    const older = await readFile(path.join(dir, 'room.bin'));
    const store = await StateDir.open(dir, PASSWORD.ZEROROOM_PASSWORD);
    const saved = await store.load();
    await store.writeRoom(saved!.record);
    await writeFile(path.join(dir, 'room.bin'), older);
    const before = await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(path.join(dir, f))] as const));
    const r = await run(hostArgs(dir), PASSWORD);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/older copy than this directory saved/);
    oneLine(r.err);
    const after = await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(path.join(dir, f))] as const));
    expect(after).toEqual(before);
  });

  it('--state naming a file, or a room.bin that is a directory, is one line and status 1', async () => {
    const file = path.join(tmp, 'state-is-a-file');
    await writeFile(file, 'x');
    const r1 = await run(hostArgs(file), PASSWORD);
    expect(r1).toMatchObject({ code: 1, err: expect.stringMatching(/not a directory/) });
    oneLine(r1.err);
    const dir = path.join(tmp, 'room-bin-dir');
    await mkdir(path.join(dir, 'room.bin'), { recursive: true });
    const r2 = await run(['join', '--state', dir], PASSWORD);
    expect(r2).toMatchObject({ code: 1, err: expect.stringMatching(/room\.bin is a directory/) });
    oneLine(r2.err);
  });
});
