// `zeroroom serve` as a child process: start lines, HTTP endpoints, options from flags and variables,
// the WebSocket side as seen through /metrics, and clean stops on SIGTERM and SIGINT.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type CliRun, type ServeRun, REPO_ROOT, cleanEnv, killAll, runCli, startServe } from './spawn-cli.ts';

const SUBPROTOCOL = 'v1.saltyrtc.org';
const runs: CliRun[] = [];
const sockets: WebSocket[] = [];
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-serve-'));
});

afterAll(async () => {
  for (const s of sockets) s.terminate();
  await killAll(runs);
  await rm(tmp, { recursive: true, force: true });
});

async function serve(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<ServeRun> {
  const run = await startServe(args, { cwd: tmp, ...opts });
  runs.push(run);
  return run;
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  if (line === undefined) throw new Error(`no ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

/** Opens a SaltyRTC client socket and resolves on its first message (the server-hello). */
function connectClient(wsUrl: string): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(`${wsUrl}/${randomBytes(32).toString('hex')}`, SUBPROTOCOL);
  sockets.push(ws);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

describe('zeroroom serve', () => {
  let main: ServeRun;

  beforeAll(async () => {
    main = await serve(['--port', '0', '--quiet']);
  });

  it('prints its URL and a 32-byte public key, and creates the key file with mode 0600', async () => {
    expect(main.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(main.publicKeyHex).toMatch(/^[0-9a-f]{64}$/);
    const info = await stat(path.join(tmp, '.zeroroom', 'server.key'));
    expect(info.mode & 0o777).toBe(0o600);
  });

  it('answers /healthz', async () => {
    const r = await fetch(`${main.url}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok' });
  });

  it('announces the default STUN server, its own URLs and key in /config.json', async () => {
    const r = await fetch(`${main.url}/config.json`);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(await r.json()).toEqual({
      iceServers: [{ urls: 'stun:stun.l.google.com:19302' }],
      appUrl: main.url,
      signalingUrl: main.wsUrl,
      serverKey: main.publicKeyHex,
    });
  });

  it('answers /config.json with the host name the browser used, and ignores a malformed Host', async () => {
    const port = new URL(main.url).port;
    const ask = (host: string) =>
      new Promise<{ appUrl: string; signalingUrl: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/config.json', headers: { host } }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (s: string) => (body += s));
            res.on('end', () => resolve(JSON.parse(body) as { appUrl: string; signalingUrl: string }));
          })
          .on('error', reject);
      });
    expect(await ask(`localhost:${port}`)).toMatchObject({ appUrl: `http://localhost:${port}`, signalingUrl: `ws://localhost:${port}` });
    expect(await ask('evil.example/"x')).toMatchObject({ appUrl: main.url, signalingUrl: main.wsUrl });
  });

  it('serves the built app or, without one, a real placeholder page with no inline script', async () => {
    const r = await fetch(`${main.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('content-security-policy')).toContain(`connect-src 'self' ${main.wsUrl};`);
    const body = await r.text();
    if (main.servingLine.startsWith('the placeholder page')) {
      expect(body).toContain('web app is not built');
      expect(body).not.toMatch(/<script|style=|<style/i);
      expect((await fetch(`${main.url}/placeholder.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    } else {
      expect(main.servingLine).toMatch(/^web app from .*web[/\\]dist$/);
    }
  });

  it('refuses path traversal on the real server, with the security headers', async () => {
    const port = new URL(main.url).port;
    for (const rawPath of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2f..%2fetc%2fpasswd']) {
      const r = await new Promise<{ status: number; csp: unknown; body: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: rawPath }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (s: string) => (body += s));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, csp: res.headers['content-security-policy'], body }));
          })
          .on('error', reject);
      });
      expect(r.status, rawPath).toBe(400);
      expect(r.body).not.toContain('root:');
      expect(r.csp).toContain("default-src 'self'");
    }
  });

  it('counts connections and rejects in /metrics without IPs or keys', async () => {
    const before = await (await fetch(`${main.url}/metrics`)).text();
    expect(metricValue(before, 'zeroroom_connections_open')).toBe(0);
    const client = await connectClient(main.wsUrl);
    const bad = new WebSocket(`${main.wsUrl}/not-a-path`, SUBPROTOCOL);
    sockets.push(bad);
    await new Promise<void>((resolve) => bad.once('error', () => resolve()));
    const r = await fetch(`${main.url}/metrics`);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    expect(metricValue(text, 'zeroroom_connections_open')).toBe(1);
    expect(metricValue(text, 'zeroroom_connections_total')).toBe(1);
    expect(metricValue(text, 'zeroroom_paths_open')).toBe(1);
    expect(metricValue(text, 'zeroroom_rejects_total{reason="bad-path"}')).toBe(1);
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain(main.publicKeyHex);
    client.ws.close(1000);
    expect(await client.closed).toBe(1000);
  });

  it('refuses to start a second server on a port in use, exiting 1 with one line', async () => {
    const port = new URL(main.url).port;
    const run = runCli(['serve', '--port', port, '--key-file', path.join(tmp, 'second.key')], { cwd: tmp });
    runs.push(run);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(/^zeroroom: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*\n$/);
  });

  it('on SIGTERM closes clients with 1001 (going away) and exits 0', async () => {
    const client = await connectClient(main.wsUrl);
    const code = await main.stop();
    expect(await client.closed).toBe(1001);
    expect(code).toBe(0);
    expect(main.stdout()).toMatch(/zeroroom: SIGTERM, shutting down\nzeroroom: stopped\n$/);
    expect(main.stderr()).toBe('');
  });
});

describe('zeroroom serve options', () => {
  it('keeps its identity across restarts, takes flags over ZEROROOM_* variables, and stops on SIGINT', async () => {
    const keyFile = path.join(tmp, 'id.key');
    const first = await serve(['--port', '0', '--key-file', keyFile, '--quiet']);
    expect(await first.stop()).toBe(0);

    const site = path.join(tmp, 'site');
    await mkdir(site, { recursive: true });
    await writeFile(path.join(site, 'index.html'), '<!doctype html><title>built app</title>');
    const secret = randomBytes(24).toString('base64');
    const second = await serve(
      [
        '--port',
        '0',
        '--web',
        site,
        '--max-connections',
        '1',
        '--turn-url',
        'turn:turn.example:3478?transport=udp',
        '--app-url',
        'https://chat.example',
      ],
      {
        env: {
          ZEROROOM_PORT: '1', // the flag wins; port 1 would fail
          ZEROROOM_KEY_FILE: keyFile,
          ZEROROOM_ICE_SERVER: 'stun:stun.a.example:3478,stun:stun.b.example',
          ZEROROOM_TURN_SECRET: secret,
          ZEROROOM_TURN_TTL: '600',
          ZEROROOM_SIGNALING_URL: 'wss://signal.example/',
          ZEROROOM_CONNECT_ORIGIN: 'wss://other.example',
          ZEROROOM_QUIET: '1',
        },
      },
    );
    expect(second.publicKeyHex).toBe(first.publicKeyHex);
    expect(second.servingLine).toBe(`web app from ${await import('node:fs/promises').then((f) => f.realpath(site))}`);

    const index = await fetch(`${second.url}/`);
    expect(await index.text()).toBe('<!doctype html><title>built app</title>');
    expect(index.headers.get('content-security-policy')).toContain(
      `connect-src 'self' ${second.wsUrl} wss://signal.example wss://other.example;`,
    );

    const nowS = Math.floor(Date.now() / 1000);
    const config = (await (await fetch(`${second.url}/config.json`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({ appUrl: 'https://chat.example', signalingUrl: 'wss://signal.example/', serverKey: first.publicKeyHex });
    const ice = config.iceServers as Array<{ urls: unknown; username?: string; credential?: string }>;
    expect(ice.slice(0, 2)).toEqual([{ urls: 'stun:stun.a.example:3478' }, { urls: 'stun:stun.b.example' }]);
    const turn = ice[2];
    expect(turn?.urls).toEqual(['turn:turn.example:3478?transport=udp']);
    const [expiry, id] = (turn?.username ?? '').split(':');
    expect(Number(expiry)).toBeGreaterThanOrEqual(nowS + 600 - 5);
    expect(Number(expiry)).toBeLessThanOrEqual(nowS + 600 + 5);
    expect(config.iceServersExpireAt).toBe(Number(expiry));
    expect(id).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(turn?.credential).toMatch(/^[A-Za-z0-9+/]{27}=$/); // base64 of a 20-byte HMAC-SHA1
    const again = (await (await fetch(`${second.url}/config.json`)).json()) as { iceServers: Array<{ username?: string }> };
    expect(again.iceServers[2]?.username).not.toBe(turn?.username);
    expect(JSON.stringify(config)).not.toContain(secret);

    // --max-connections 1 reached the signaling server: the second client is refused.
    const client = await connectClient(second.wsUrl);
    const refused = new WebSocket(`${second.wsUrl}/${randomBytes(32).toString('hex')}`, SUBPROTOCOL);
    sockets.push(refused);
    await new Promise<void>((resolve) => {
      refused.once('error', () => resolve());
      refused.once('close', () => resolve());
    });
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metricValue(metrics, 'zeroroom_rejects_total{reason="too-many-connections"}')).toBe(1);

    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
    expect(await client.closed).toBe(1001);
    expect(second.stdout()).toContain('zeroroom: SIGINT, shutting down');
  });
});

describe('zeroroom serve behind a reverse proxy', () => {
  it('counts per-IP limits by the last X-Forwarded-For hop when the peer is a trusted proxy', async () => {
    const server = await serve([
      '--port',
      '0',
      '--quiet',
      '--key-file',
      path.join(tmp, 'proxy.key'),
      '--trust-proxy',
      '127.0.0.1',
      '--max-connections-per-ip',
      '1',
    ]);
    const open = (forwardedFor: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${server.wsUrl}/${randomBytes(32).toString('hex')}`, SUBPROTOCOL, {
          headers: { 'X-Forwarded-For': forwardedFor },
        });
        sockets.push(ws);
        ws.once('message', () => resolve(ws));
        ws.once('error', reject);
      });
    await open('198.51.100.1');
    await open('203.0.113.9, 198.51.100.2'); // a different last hop: another client
    await expect(open('198.51.100.2')).rejects.toThrow('Unexpected server response: 429');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricValue(metrics, 'zeroroom_rejects_total{reason="too-many-per-ip"}')).toBe(1);
    expect(await server.stop()).toBe(0);
  });
});

describe('zeroroom serve with several key files (rotation)', () => {
  it('presents the first key and announces the others as still accepted', async () => {
    const oldKey = path.join(tmp, 'rotate-old.key');
    const newKey = path.join(tmp, 'rotate-new.key');
    const before = await serve(['--port', '0', '--quiet', '--key-file', oldKey]);
    expect(await before.stop()).toBe(0);
    const during = await serve(['--port', '0', '--quiet', '--key-file', newKey, '--key-file', oldKey]);
    expect(during.publicKeyHex).not.toBe(before.publicKeyHex);
    expect(during.stdout()).toContain(`zeroroom: also accepting server key ${before.publicKeyHex}\n`);
    const config = (await (await fetch(`${during.url}/config.json`)).json()) as { serverKey: string };
    expect(config.serverKey).toBe(during.publicKeyHex);
    expect(await during.stop()).toBe(0);
  });
});

describe('zeroroom command line errors', () => {
  it('prints help and exits 0', async () => {
    const run = runCli(['--help']);
    runs.push(run);
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toContain('usage: zeroroom <command>');
    const serveHelp = runCli(['serve', '--help']);
    runs.push(serveHelp);
    expect(await serveHelp.exited).toBe(0);
    expect(serveHelp.stdout()).toContain('--turn-secret');
  });

  it('runs as `npx zeroroom` from the checkout, with no build step', async () => {
    // npm exec resolves the package's own `bin` entry when run inside the package (no install needed).
    const child = spawn('npx', ['--no-install', 'zeroroom', '--help'], {
      cwd: REPO_ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | string>((resolve) => child.once('exit', (c, sig) => resolve(c ?? sig ?? 'unknown')));
    runs.push({ child, stdout: () => out, stderr: () => '', exited }); // killed in afterAll if it hangs
    expect(await exited).toBe(0);
    expect(out).toContain('usage: zeroroom <command>');
  });

  it('exits 2 with one line on stderr for a usage error', async () => {
    for (const [args, message] of [
      [['serve', '--port', 'eighty'], /^zeroroom: --port: expected a non-negative integer, got "eighty"\n$/],
      [['frobnicate'], /^zeroroom: unknown command "frobnicate" \(commands: serve(, [a-z]+)*\)\n$/],
    ] as const) {
      const run = runCli(args);
      runs.push(run);
      expect(await run.exited).toBe(2);
      expect(run.stderr()).toMatch(message);
      expect(run.stdout()).toBe('');
    }
  });

  it('exits 1 with a clear line when a file it needs is missing', async () => {
    const run = runCli(['serve', '--port', '0', '--key-file', path.join(tmp, 'k1.key'), '--web', path.join(tmp, 'no-such-dir')], {
      cwd: tmp,
    });
    runs.push(run);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(/^zeroroom: --web .*no-such-dir: .*ENOENT.*\n$/);
  });
});

describe('zeroroom serve with a bad key file', () => {
  const cases: Array<[name: string, content: string, mode: number, message: RegExp]> = [
    ['short.key', 'ab'.repeat(31) + '\n', 0o600, /expected exactly 64 lowercase hex characters/],
    ['long.key', 'ab'.repeat(33) + '\n', 0o600, /expected exactly 64 lowercase hex characters/],
    ['nothex.key', 'zz'.repeat(32) + '\n', 0o600, /expected exactly 64 lowercase hex characters/],
    ['open.key', 'ab'.repeat(32) + '\n', 0o644, /permissions 644 are too open; run chmod 600/],
  ];
  for (const [name, content, mode, message] of cases) {
    it(`refuses ${name} with a one-line message naming the file and exits 1`, async () => {
      const file = path.join(tmp, name);
      await writeFile(file, content, { mode });
      const run = runCli(['serve', '--port', '0', '--key-file', file], { cwd: tmp });
      runs.push(run);
      expect(await run.exited).toBe(1);
      const lines = run
        .stderr()
        .split('\n')
        .filter((l) => l !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toMatch(message);
      expect(run.stdout()).not.toContain('listening');
    });
  }
});
