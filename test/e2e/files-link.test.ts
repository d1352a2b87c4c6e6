/**
 * The files channel of a peer link in Chromium (docs/PROTOCOL.md 5.17.3): two pages with a real
 * PeerLink each (owner and member through our signaling server on 127.0.0.1) open it, frames cross
 * it, and FileTransfers with WebCrypto AES-GCM moves a file over it whose SHA-256 matches. The page
 * is bench:files' browser page (bench/browser/files-page.ts), bundled with esbuild.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, systemRandom, toHex } from '../../crypto/index.ts';
import { attachSignalingServer, type SignalingServer } from '../../signaling/server.ts';
import type { Bench } from '../../bench/browser/files-page.ts';
import { launchChromium, newContext, watchErrors } from './harness.ts';

declare const bench: Bench;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGE = '<!doctype html><meta charset="utf-8"><title>files</title><script type="module" src="/page.js"></script>';

let server: http.Server;
let signaling: SignalingServer;
let browser: Browser;
const serverKeys = generateBoxKeyPair();

beforeAll(async () => {
  const out = await build({
    entryPoints: [path.join(ROOT, 'bench/browser/files-page.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'error',
    alias: { 'simple-peer': 'simple-peer/simplepeer.min.js', ws: path.join(ROOT, 'web/shims/empty.ts') },
    external: ['wasm-themis'],
  });
  const js = out.outputFiles[0]?.text ?? '';
  server = http.createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  signaling = attachSignalingServer({ server, permanentKeys: [serverKeys] });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await signaling?.close();
  server?.closeAllConnections();
  await new Promise<void>((r) => server?.close(() => r()));
});

describe('files channel in Chromium', () => {
  it('opens on owner and member pages; a file goes member -> owner over it with WebCrypto AES-GCM, hash verified', async () => {
    const port = (server.address() as AddressInfo).port;
    const open = async (label: string): Promise<{ page: Page; errors: string[] }> => {
      const page = await (await newContext(browser)).newPage();
      const errors = watchErrors(page, label);
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => 'bench' in globalThis);
      return { page, errors };
    };
    const owner = await open('owner');
    const member = await open('member');
    const ws = `ws://127.0.0.1:${port}`;
    const key = toHex(serverKeys.publicKey);
    const token = toHex(systemRandom(32));
    const ownerKey = await owner.page.evaluate(([u, k, t]) => bench.owner(u, k, [t]), [ws, key, token] as const);
    const memberKey = await member.page.evaluate(([u, k, o, t]) => bench.member(u, k, o, t), [ws, key, ownerKey, token] as const);
    await owner.page.evaluate((k) => bench.ownerLinkReady(k), memberKey);

    // Raw frames on the files channel, member -> owner.
    const got = owner.page.evaluate((k) => bench.rawReceive(k, 20), memberKey);
    await member.page.evaluate(() => bench.rawSend('owner', 20));
    expect(await got).toBeGreaterThanOrEqual(0);

    // A file through FileTransfers (5.17.2) over the channel; the receiver checks SHA-256.
    const offer = await member.page.evaluate(() => bench.makeOffer(3 * 65_536 + 777));
    await member.page.evaluate((o) => bench.serve('owner', o), offer);
    const r = await owner.page.evaluate(([k, o]) => bench.receive(k, o), [memberKey, offer] as const);
    expect(r.errors).toEqual([]);
    const peek = await owner.page.evaluate(() => bench.peek());
    expect(peek.progress).toBe(4);
    expect(owner.errors).toEqual([]);
    expect(member.errors).toEqual([]);
  }, 120_000);
});
