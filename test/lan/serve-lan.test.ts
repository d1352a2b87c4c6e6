// `zeroroom serve --lan ADDR`: https/wss on all interfaces with a local CA, LAN URLs in /config.json and
// invites whatever host the browser used, the CA served at /ca.crt, a CSP naming reachable origins.
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { lanAddresses } from '../../signaling/lan.ts';
import { type CliRun, type ServeRun, killAll, startServe } from '../cli/spawn-cli.ts';

const runs: Array<CliRun | undefined> = [];
let tmp: string;
let server: ServeRun;
let ca: Buffer;
let port: number;

async function serveLan(): Promise<ServeRun> {
  const run = await startServe(['--lan', '127.0.0.1', '--port', '0', '--quiet', '--key-file', path.join(tmp, 'server.key')], { cwd: tmp });
  runs.push(run);
  // The banner follows the start lines.
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (/^Accept it, or install/m.test(run.stdout())) resolve();
    };
    run.child.stdout?.on('data', check);
    check();
  });
  return run;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-serve-lan-'));
  server = await serveLan();
  ca = await readFile(path.join(tmp, 'lan-ca.crt'));
  port = Number(/:(\d+)$/.exec(server.url)?.[1]);
}, 60_000);

afterAll(async () => {
  await killAll(runs);
  await rm(tmp, { recursive: true, force: true });
});

function get(url: string, host?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, headers: host !== undefined ? { host } : {}, servername: 'localhost' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

describe('zeroroom serve --lan', () => {
  it('listens on all interfaces and prints the LAN URL, a terminal QR code and the CA fingerprint', () => {
    expect(server.url).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    const out = server.stdout();
    expect(out).toContain(`zeroroom: LAN URL https://127.0.0.1:${port}\n`);
    expect(out).toMatch(/^zeroroom: LAN CA fingerprint \(SHA-256\) ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
    expect(out).toContain(`zeroroom: LAN CA certificate https://127.0.0.1:${port}/ca.crt`);
    expect(out).toContain('▄'); // the terminal QR code (half-block characters)
  });

  it('verifies against its own CA for the address and for localhost', async () => {
    const health = await get(`https://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers['strict-transport-security']).toBe('max-age=31536000');
    const viaLocalhost = await get(`https://localhost:${port}/healthz`);
    expect(viaLocalhost.status).toBe(200);
  });

  it('announces the LAN URLs in /config.json whatever host the browser used', async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `evil.example:${port}`, undefined]) {
      const config = JSON.parse((await get(`https://127.0.0.1:${port}/config.json`, host)).body.toString()) as Record<string, string>;
      expect(config['appUrl']).toBe(`https://127.0.0.1:${port}`);
      expect(config['signalingUrl']).toBe(`wss://127.0.0.1:${port}`);
    }
  });

  it('names reachable origins in the CSP, never the bind address', async () => {
    const csp = String((await get(`https://127.0.0.1:${port}/`)).headers['content-security-policy']);
    const connect = /connect-src ([^;]*)/.exec(csp)?.[1] ?? '';
    expect(connect.split(' ')).toContain(`wss://127.0.0.1:${port}`);
    expect(connect.split(' ')).toContain(`wss://localhost:${port}`);
    expect(connect).not.toContain('0.0.0.0');
  });

  it('serves the CA certificate (DER) whose fingerprint the banner printed', async () => {
    const res = await get(`https://127.0.0.1:${port}/ca.crt`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-x509-ca-cert');
    const der = res.body;
    expect(new X509Certificate(der).ca).toBe(true);
    const printed = /LAN CA fingerprint \(SHA-256\) (\S+)/.exec(server.stdout())?.[1];
    const fp = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)?.join(':');
    expect(fp).toBe(printed);
  });

  it('speaks SaltyRTC over wss', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/${randomBytes(32).toString('hex')}`, 'v1.saltyrtc.org', { ca });
    const first = await new Promise<Buffer>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data));
      ws.once('error', reject);
    });
    expect(first.length).toBeGreaterThan(24);
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });

  it('keeps its CA across restarts (same fingerprint)', async () => {
    const before = /LAN CA fingerprint \(SHA-256\) (\S+)/.exec(server.stdout())?.[1];
    expect(await server.stop()).toBe(0);
    const again = await serveLan();
    expect(/LAN CA fingerprint \(SHA-256\) (\S+)/.exec(again.stdout())?.[1]).toBe(before);
    expect(await again.stop()).toBe(0);
  });
});

describe('zeroroom serve --host 0.0.0.0 (no --lan)', () => {
  it('never hands a loopback name to invites and names reachable origins in the CSP', async () => {
    const run = await startServe(['--host', '0.0.0.0', '--port', '0', '--quiet', '--key-file', path.join(tmp, 'wild.key')], { cwd: tmp });
    runs.push(run);
    const p = Number(/:(\d+)$/.exec(run.url)?.[1]);
    // fetch() sets Host itself; http.get sends the one a browser would have sent.
    const config = (host: string): Promise<Record<string, string>> =>
      new Promise((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${p}/config.json`, { headers: { host } }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (c: string) => (body += c));
            res.on('end', () => resolve(JSON.parse(body) as Record<string, string>));
          })
          .on('error', reject);
      });
    const lan = lanAddresses(os.networkInterfaces())[0];
    // On a machine without any LAN address there is nothing better than the name the browser used.
    const expected = lan !== undefined ? `http://${lan}:${p}` : `http://localhost:${p}`;
    expect((await config(`localhost:${p}`))['appUrl']).toBe(expected);
    expect((await config(`127.0.0.1:${p}`))['signalingUrl']).toBe(expected.replace('http', 'ws'));
    expect((await config(`laptop.example:${p}`))['appUrl']).toBe(`http://laptop.example:${p}`);
    const csp = (await fetch(`http://127.0.0.1:${p}/healthz`)).headers.get('content-security-policy') ?? '';
    expect(csp).toContain(`ws://127.0.0.1:${p}`);
    expect(csp).toContain(`ws://localhost:${p}`);
    expect(csp).not.toContain('0.0.0.0');
    expect(await run.stop()).toBe(0);
  });
});
