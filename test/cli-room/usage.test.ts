// `zeroroom host` / `zeroroom join` refuse bad command lines with one line on stderr and a status
// (2: usage, 1: runtime), before touching the network or the disk.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, killAll, runCli } from '../cli/spawn-cli.ts';

const runs: CliRun[] = [];
let tmp: string;
beforeAll(async () => {
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
});
