// The HTTP side of `zeroroom serve` in-process: static lookup rules, content types and the headers
// every response carries. The spawned-CLI tests (serve.test.ts) check the same wiring end to end.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkedHost, contentSecurityPolicy, createHttpHandler, securityHeaders } from '../../signaling/http.ts';
import { SignalingMetrics } from '../../signaling/metrics.ts';
import { type StaticSite, lookupStatic, openStaticSite } from '../../signaling/static-files.ts';

let tmp: string;
let site: StaticSite;
let server: http.Server;
let base: string;
const errors: unknown[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-http-'));
  const root = path.join(tmp, 'site');
  await mkdir(path.join(root, 'assets'), { recursive: true });
  await mkdir(path.join(root, 'sub'));
  await writeFile(path.join(root, 'index.html'), '<!doctype html><title>app</title>');
  await writeFile(path.join(root, 'sub', 'index.html'), 'sub index');
  await writeFile(path.join(root, 'assets', 'app-1a2b.js'), 'export {};');
  await writeFile(path.join(root, 'assets', 'libthemis-9f.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  await writeFile(path.join(root, 'style.css'), 'body{}');
  await writeFile(path.join(root, 'a b.txt'), 'space');
  await writeFile(path.join(root, '.env'), 'SECRET=1');
  await writeFile(path.join(tmp, 'outside.txt'), 'outside the site');
  await symlink(path.join(tmp, 'outside.txt'), path.join(root, 'escape.txt'));
  await symlink(tmp, path.join(root, 'escape-dir'));
  await symlink(path.join(root, 'style.css'), path.join(root, 'alias.css'));
  site = await openStaticSite(root);
  const headers = securityHeaders({ connectOrigins: ['ws://127.0.0.1:1234', 'wss://signal.example'], tls: false });
  server = http.createServer(
    createHttpHandler({
      site,
      metrics: new SignalingMetrics(0),
      headers,
      configJson: () => ({ iceServers: [] }),
      onError: (_w, e) => errors.push(e),
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await rm(tmp, { recursive: true, force: true });
});

/** Sends `rawPath` exactly as written (fetch would normalise `..` away). */
function rawGet(rawPath: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + '/', { method, path: rawPath }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('static lookup', () => {
  it('refuses traversal, encoded separators, backslashes and NUL with 400', async () => {
    for (const p of [
      '/../outside.txt',
      '/sub/../../outside.txt',
      '/%2e%2e/outside.txt',
      '/..%2foutside.txt',
      '/sub%2f..%2f..%2foutside.txt',
      '/..%5coutside.txt',
      '/a%00.txt',
      '/./index.html',
      '//index.html',
      '/%zz',
      'index.html',
    ]) {
      expect(await lookupStatic(site, p), p).toEqual({ kind: 'refused', status: 400 });
    }
  });

  it('does not follow a symlink out of the site, but follows one that stays inside', async () => {
    expect(await lookupStatic(site, '/escape.txt')).toEqual({ kind: 'refused', status: 404 });
    expect(await lookupStatic(site, '/escape-dir/outside.txt')).toEqual({ kind: 'refused', status: 404 });
    expect(await lookupStatic(site, '/alias.css')).toMatchObject({ kind: 'file', contentType: 'text/css; charset=utf-8' });
  });

  it('never serves dot files and 404s what is missing or a directory', async () => {
    expect(await lookupStatic(site, '/.env')).toEqual({ kind: 'refused', status: 404 });
    expect(await lookupStatic(site, '/nope.js')).toEqual({ kind: 'refused', status: 404 });
    expect(await lookupStatic(site, '/index.html/x')).toEqual({ kind: 'refused', status: 404 });
    expect(await lookupStatic(site, '/sub')).toEqual({ kind: 'refused', status: 404 });
  });

  it('serves index.html for / and for directories, decoded names, and marks only hashed assets immutable', async () => {
    expect(await lookupStatic(site, '/')).toMatchObject({
      kind: 'file',
      file: path.join(site.root, 'index.html'),
      contentType: 'text/html; charset=utf-8',
      immutable: false,
    });
    expect(await lookupStatic(site, '/sub/')).toMatchObject({ kind: 'file', file: path.join(site.root, 'sub', 'index.html') });
    expect(await lookupStatic(site, '/a%20b.txt')).toMatchObject({ kind: 'file', contentType: 'text/plain; charset=utf-8' });
    expect(await lookupStatic(site, '/assets/libthemis-9f.wasm')).toMatchObject({
      kind: 'file',
      contentType: 'application/wasm',
      immutable: true,
    });
    expect(await lookupStatic(site, '/assets/app-1a2b.js')).toMatchObject({
      contentType: 'text/javascript; charset=utf-8',
      immutable: true,
    });
  });
});

describe('HTTP responses', () => {
  const expectSecurityHeaders = (h: http.IncomingHttpHeaders, what: string) => {
    expect(h['content-security-policy'], what).toBe(contentSecurityPolicy(['ws://127.0.0.1:1234', 'wss://signal.example']));
    expect(h['x-content-type-options'], what).toBe('nosniff');
    expect(h['referrer-policy'], what).toBe('no-referrer');
    expect(h['cross-origin-opener-policy'], what).toBe('same-origin');
    expect(h['permissions-policy'], what).toMatch(/^camera=\(self\), microphone=\(\)/);
  };

  it('puts the security headers on every response, errors included', async () => {
    for (const [p, method, status] of [
      ['/', 'GET', 200],
      ['/healthz', 'GET', 200],
      ['/metrics', 'GET', 200],
      ['/config.json', 'GET', 200],
      ['/nope', 'GET', 404],
      ['/../x', 'GET', 400],
      ['/', 'POST', 405],
      ['/', 'HEAD', 200],
    ] as const) {
      const r = await rawGet(p, method);
      expect(r.status, `${method} ${p}`).toBe(status);
      expectSecurityHeaders(r.headers, `${method} ${p}`);
    }
  });

  it('has the strict CSP the app is built for', () => {
    expect(contentSecurityPolicy(['ws://h:1'])).toBe(
      "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws://h:1; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'; manifest-src 'self'; worker-src 'self'",
    );
  });

  it('serves files with their content type and length, HEAD without a body, 405 with Allow', async () => {
    const wasm = await fetch(`${base}/assets/libthemis-9f.wasm`);
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect(wasm.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(new Uint8Array(await wasm.arrayBuffer())).toEqual(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    const index = await fetch(`${base}/?invite=x`);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(await index.text()).toBe('<!doctype html><title>app</title>');
    const head = await rawGet('/style.css', 'HEAD');
    expect(head.headers['content-length']).toBe('6');
    expect(head.body).toBe('');
    const post = await rawGet('/healthz', 'POST');
    expect(post.headers.allow).toBe('GET, HEAD');
    const dot = await rawGet('/.env');
    expect(dot.status).toBe(404);
    expect(dot.body).not.toContain('SECRET');
    const escape = await rawGet('/escape.txt');
    expect(escape.status).toBe(404);
    expect(escape.body).not.toContain('outside');
  });

  it('answers /healthz and /config.json as uncached JSON', async () => {
    const h = await fetch(`${base}/healthz`);
    expect(h.headers.get('content-type')).toBe('application/json');
    expect(h.headers.get('cache-control')).toBe('no-store');
    expect(await h.json()).toEqual({ status: 'ok' });
    const c = await fetch(`${base}/config.json`);
    expect(c.headers.get('cache-control')).toBe('no-store');
    expect(await c.json()).toEqual({ iceServers: [] });
    expect(errors).toEqual([]);
  });

  it('uses only a well-formed Host header for the URLs in /config.json', () => {
    for (const ok of ['localhost:8765', 'chat.example.com', '127.0.0.1:1', '[::1]:8765', 'a-b.example.'])
      expect(checkedHost(ok), ok).toBe(ok);
    for (const bad of [undefined, '', 'evil.example/path', 'a b', 'x"y', "x';", 'host:port', 'a..b', '[::1', 'user@host', 'x'.repeat(300)])
      expect(checkedHost(bad), String(bad)).toBeUndefined();
  });
});
