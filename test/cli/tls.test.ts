// `zeroroom serve --tls-cert/--tls-key`: https and wss on one port, with HSTS and wss URLs in /config.json.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type CliRun, type ServeRun, REPO_ROOT, killAll, runCli, startServe } from './spawn-cli.ts';

const FIXTURES = path.join(REPO_ROOT, 'test', 'cli', 'fixtures');
const CERT = path.join(FIXTURES, 'tls-test.crt');
const KEY = path.join(FIXTURES, 'tls-test.key');
const ca = readFileSync(CERT);
const runs: Array<CliRun | undefined> = [];
let tmp: string;
let server: ServeRun;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-tls-'));
  server = await startServe(['--port', '0', '--quiet', '--tls-cert', CERT, '--tls-key', KEY, '--key-file', path.join(tmp, 'server.key')], {
    cwd: tmp,
  });
  runs.push(server);
});

afterAll(async () => {
  await killAll(runs);
  await rm(tmp, { recursive: true, force: true });
});

function get(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

describe('zeroroom serve over TLS', () => {
  it('serves https with HSTS and announces wss', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await get(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers['strict-transport-security']).toBe('max-age=31536000');
    const config = JSON.parse((await get(`${server.url}/config.json`)).body) as { signalingUrl: string; appUrl: string };
    expect(config.signalingUrl).toBe(server.url.replace('https://', 'wss://'));
    expect(config.appUrl).toBe(server.url);
    expect(health.headers['content-security-policy']).toContain(`connect-src 'self' ${config.signalingUrl};`);
  });

  it('speaks SaltyRTC over wss (server-hello arrives)', async () => {
    const ws = new WebSocket(`${server.wsUrl}/${randomBytes(32).toString('hex')}`, 'v1.saltyrtc.org', { ca });
    const first = await new Promise<Buffer>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data));
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('v1.saltyrtc.org');
    expect(first.length).toBeGreaterThan(24);
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    ws.close(1000);
    expect(await closed).toBe(1000);
  });

  it('exits 1 with one line when the certificate file is not a certificate', async () => {
    const run = runCli(['serve', '--port', '0', '--tls-cert', KEY, '--tls-key', KEY, '--key-file', path.join(tmp, 'other.key')], {
      cwd: tmp,
    });
    runs.push(run);
    expect(await run.exited).toBe(1);
    expect(
      run
        .stderr()
        .split('\n')
        .filter((l) => l !== ''),
    ).toHaveLength(1);
    expect(run.stderr()).toMatch(/^zeroroom: /);
  });
});
