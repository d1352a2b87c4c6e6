/**
 * The app on its own origin (docs/PROTOCOL.md section 8, OPERATIONS.md "The app on its own origin"):
 * the signaling server runs with `--web none` and serves no app; the built files are served by a
 * plain static server on another origin with the production security headers and a static
 * config.json. Two browsers chat through it. The build hash: recomputed from the files, it equals
 * build-hash.txt and what Settings shows.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy, securityHeaders } from '../../signaling/http.ts';
import { BUILD_HASH_FILE, buildHashOfFiles, type BuiltFile } from '../../web/build-hash.ts';
import {
  buildApp,
  createRoom,
  joinByLink,
  launchChromium,
  newContext,
  newInvite,
  openApp,
  sendMessage,
  startServer,
  waitMembers,
  waitMessage,
  watchErrors,
  type ServerHandle,
} from './harness.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.txt': 'text/plain',
};

let webDir: string;
let signaling: ServerHandle;
let app: Server;
let appUrl: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

function filesUnder(dir: string, prefix = ''): BuiltFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`)
      : [{ path: `${prefix}${e.name}`, bytes: new Uint8Array(readFileSync(path.join(dir, e.name))) }],
  );
}

beforeAll(async () => {
  webDir = await buildApp();
  signaling = await startServer('none');
  const serverConfig = (await (await fetch(`${signaling.url}/config.json`)).json()) as Record<string, unknown>;
  const wsOrigin = signaling.url.replace(/^http/, 'ws');
  // Any static host: the built files, the production headers with the signaling server in
  // connect-src, and a static config.json naming the signaling server and its key.
  const headers = securityHeaders({ connectOrigins: [wsOrigin], tls: false });
  app = createServer((req, res) => {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    if (pathname === '/config.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ ...serverConfig, appUrl, iceServers: [] }));
      return;
    }
    const name = path.normalize(decodeURIComponent(pathname)).replace(/^\/+/, '') || 'index.html';
    const file = path.join(webDir, name);
    if (!file.startsWith(webDir) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
  await signaling?.stop();
});

describe('the build hash', () => {
  it('recomputed from the built files equals build-hash.txt; any changed byte changes it', () => {
    const claimed = readFileSync(path.join(webDir, BUILD_HASH_FILE), 'utf8').trim();
    expect(claimed).toMatch(/^[0-9a-f]{64}$/);
    const files = filesUnder(webDir);
    expect(buildHashOfFiles(files, claimed)).toBe(claimed);
    // The hash is in exactly one file, the chunk that shows it.
    const carriers = files.filter((f) => Buffer.from(f.bytes).includes(claimed) && f.path !== BUILD_HASH_FILE);
    expect(carriers).toHaveLength(1);
    expect(carriers[0]!.path).toMatch(/^assets\/.*\.js$/);
    for (const victim of [files.find((f) => f.path === 'index.html')!, files.find((f) => f.path.endsWith('.wasm'))!, carriers[0]!]) {
      const changed = files.map((f) => {
        if (f !== victim) return f;
        const bytes = f.bytes.slice();
        bytes[bytes.length - 2]! ^= 1;
        return { path: f.path, bytes };
      });
      expect(buildHashOfFiles(changed, claimed), victim.path).not.toBe(claimed);
    }
    expect(buildHashOfFiles([...files, { path: 'extra.js', bytes: new Uint8Array(1) }], claimed)).not.toBe(claimed);
    expect(buildHashOfFiles(files.slice(1), claimed)).not.toBe(claimed);
  });
});

describe('zeroroom serve --web none', () => {
  it('serves no app: / says the app is hosted elsewhere; the app files are not there', async () => {
    const root = await fetch(`${signaling.url}/`);
    expect(root.status).toBe(200);
    expect(await root.text()).toContain('--web none');
    expect((await fetch(`${signaling.url}/${BUILD_HASH_FILE}`)).status).toBe(404);
    expect((await fetch(`${signaling.url}/sw.js`)).status).toBe(404);
    expect(signaling.output()).toContain('serving no web app');
    // Its CSP still allows nothing but itself: the headers are the same for both roles.
    expect(root.headers.get('content-security-policy')).toBe(contentSecurityPolicy([signaling.url.replace(/^http/, 'ws')]));
  });

  it('two browsers on the app origin create a room, join by invite and chat through the separate signaling server', async () => {
    const ownerContext = await newContext(browser);
    const memberContext = await newContext(browser);
    contexts.push(ownerContext, memberContext);
    const owner = await ownerContext.newPage();
    const member = await memberContext.newPage();
    const errors = [watchErrors(owner, 'owner'), watchErrors(member, 'member')];

    await openApp(owner, appUrl);
    await createRoom(owner, 'Own origin', 'Olivia');
    const invite = await newInvite(owner);
    expect(new URL(invite).origin).toBe(appUrl); // invites point at the app's origin, not the server's
    await joinByLink(member, invite, 'Max');
    await waitMembers(owner, 2);
    await waitMembers(member, 2);
    await sendMessage(member, 'hello from the app origin');
    await waitMessage(owner, 'hello from the app origin');

    // Settings shows the published build hash.
    const claimed = readFileSync(path.join(webDir, BUILD_HASH_FILE), 'utf8').trim();
    await owner.getByTestId('nav-settings').click();
    await expect.poll(() => owner.getByTestId('build-hash').textContent()).toContain(claimed);
    expect(errors.flat().filter((e) => /Content.Security.Policy|Refused to/i.test(e))).toEqual([]);
  }, 180_000);
});
