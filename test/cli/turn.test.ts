// TURN credentials from `zeroroom serve`'s /config.json are accepted by a real coturn started with the
// same --static-auth-secret: a long-term-credential Allocate over UDP on 127.0.0.1 succeeds, while a
// tampered, expired or wrongly keyed credential gets 401.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTR, METHOD, StunClient, allocate, encodeRequest, errorCode, xorAddress } from './stun-client.ts';
import { type ServeRun, killAll, startServe } from './spawn-cli.ts';

const SECRET = randomBytes(24).toString('hex');
const RELAY_MIN = 50_000 + randomInt(0, 200) * 40;
const RELAY_MAX = RELAY_MIN + 39;

let tmp: string;
let turnPort: number;
let coturn: { child: ChildProcess; exited: Promise<unknown>; output: () => string } | undefined;
let server: ServeRun | undefined;
let client: StunClient | undefined;

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir !== '' && existsSync(path.join(dir, name))) return path.join(dir, name);
  return undefined;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  const turnserver = findOnPath('turnserver');
  if (turnserver === undefined) {
    // Not a skip: without coturn this test proves nothing, and CI (.ci/run) installs it.
    throw new Error('coturn is not installed: `apt-get install -y coturn` (needed to check TURN credentials against a real turnserver)');
  }
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-turn-'));
  turnPort = await freeUdpPort();
  // Flags from ../shared/notes/platform.md, with TURN REST API auth instead of a static user.
  const child = spawn(
    turnserver,
    [
      '-n',
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${turnPort}`,
      `--min-port=${RELAY_MIN}`,
      `--max-port=${RELAY_MAX}`,
      '--use-auth-secret',
      `--static-auth-secret=${SECRET}`,
      '--realm=zeroroom.test',
      '--fingerprint',
      '--no-tls',
      '--no-dtls',
      '--no-tcp',
      '--no-cli',
      '--allow-loopback-peers',
      '--no-multicast-peers',
      `--pidfile=${path.join(tmp, 'turnserver.pid')}`,
      `--userdb=${path.join(tmp, 'turndb')}`,
      '--log-file=stdout',
      '--simple-log',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s));
  coturn = { child, exited: new Promise((resolve) => child.once('exit', resolve)), output: () => output };

  client = new StunClient('127.0.0.1', turnPort);
  await client.open();
  // coturn has no readiness signal: ask Binding until it answers (retransmits inside, 10 s deadline).
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const answer = await client.transact(encodeRequest(METHOD.binding, []), 1000);
      expect(answer.cls).toBe('success');
      break;
    } catch (e) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`turnserver did not answer on 127.0.0.1:${turnPort}: ${String(e)}\n${output}`);
    }
  }

  const secretFile = path.join(tmp, 'turn.secret');
  await writeFile(secretFile, SECRET + '\n', { mode: 0o600 });
  server = await startServe(
    [
      '--port',
      '0',
      '--quiet',
      '--key-file',
      path.join(tmp, 'server.key'),
      '--turn-secret-file',
      secretFile,
      '--turn-url',
      `turn:127.0.0.1:${turnPort}?transport=udp`,
    ],
    { cwd: tmp },
  );
});

afterAll(async () => {
  await client?.close();
  await killAll([server]);
  if (coturn !== undefined) {
    coturn.child.kill('SIGTERM'); // coturn takes 1-3 s to exit
    await coturn.exited;
  }
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

/** A fresh UDP socket per Allocate: coturn binds an allocation to the client's 5-tuple (else 437). */
async function allocateFromNewSocket(username: string, password: string) {
  const c = new StunClient('127.0.0.1', turnPort);
  await c.open();
  try {
    return await allocate(c, username, password);
  } finally {
    await c.close();
  }
}

async function turnEntry(): Promise<{ urls: string[]; username: string; credential: string }> {
  const config = (await (await fetch(`${server?.url}/config.json`)).json()) as {
    iceServers: Array<{ urls: string[]; username?: string; credential?: string }>;
  };
  const entry = config.iceServers.find((s) => s.username !== undefined);
  if (entry?.username === undefined || entry.credential === undefined) throw new Error(`no TURN entry in ${JSON.stringify(config)}`);
  return { urls: entry.urls, username: entry.username, credential: entry.credential };
}

describe('TURN credentials against coturn --use-auth-secret', () => {
  it('gets a relay allocation with the credentials from /config.json', async () => {
    const turn = await turnEntry();
    expect(turn.urls).toEqual([`turn:127.0.0.1:${turnPort}?transport=udp`]);
    const answer = await allocateFromNewSocket(turn.username, turn.credential);
    expect(answer.cls, `Allocate failed with ${errorCode(answer)}\n${coturn?.output()}`).toBe('success');
    expect(answer.method).toBe(METHOD.allocate);
    const relayed = xorAddress(answer, ATTR.xorRelayedAddress);
    expect(relayed?.address).toBe('127.0.0.1');
    expect(relayed?.port).toBeGreaterThanOrEqual(RELAY_MIN);
    expect(relayed?.port).toBeLessThanOrEqual(RELAY_MAX);
  });

  it('is refused (401) with a tampered credential', async () => {
    const turn = await turnEntry();
    const bad = Buffer.from(turn.credential, 'base64');
    bad[0] = (bad[0] as number) ^ 1;
    const answer = await allocateFromNewSocket(turn.username, bad.toString('base64'));
    expect(answer.cls).toBe('error');
    expect(errorCode(answer)).toBe(401);
  });

  it('is refused (401) with a credential made from another secret', async () => {
    const turn = await turnEntry();
    const forged = createHmac('sha1', 'not-the-shared-secret').update(turn.username).digest('base64');
    const answer = await allocateFromNewSocket(turn.username, forged);
    expect(errorCode(answer)).toBe(401);
  });

  it('is refused (401) once the expiry time in the username has passed', async () => {
    const username = `${Math.floor(Date.now() / 1000) - 60}:expired`;
    const credential = createHmac('sha1', SECRET).update(username).digest('base64');
    const answer = await allocateFromNewSocket(username, credential);
    expect(errorCode(answer)).toBe(401);
  });
});
