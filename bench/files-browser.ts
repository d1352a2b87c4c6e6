/**
 * bench:files (browser part, `npm run bench:files:browser`; `npm run bench:files` runs it after the
 * Node part). Chromium pages on 127.0.0.1 with a real PeerLink each (owner + members through our
 * signaling server, in this process) and FileTransfers with WebCrypto AES-GCM over the link's files
 * channel (docs/PROTOCOL.md 5.17.3), the page bundled from bench/browser/files-page.ts with esbuild:
 * - a MIB (default 256) MiB file member -> owner, against the same RTCDataChannel between the same
 *   two pages sending 65,573-byte messages without sealing (the ratio; target >= 0.6x);
 * - where the time goes: AES-GCM seal/open and SHA-256 alone in the page, and the time the
 *   transfer spent in each step;
 * - the owner relaying one MIB/4 MiB file from that member to three other member pages;
 * - the receiving page's peak JS heap (CDP Performance.getMetrics JSHeapUsedSize, sampled).
 * The received bytes are hashed and dropped (the app stores them in IndexedDB), as in the Node part.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { CDPSession, Page } from 'playwright-core';
import { generateBoxKeyPair, systemRandom, toHex } from '../crypto/index.ts';
import { attachSignalingServer } from '../signaling/server.ts';
import { launchChromium, newContext } from '../test/e2e/harness.ts';
import type { Bench, WireOffer } from './browser/files-page.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MIB = Number(process.env['MIB'] ?? 256);
const TOTAL = MIB * 1024 * 1024;
const CHUNK = 65_536;

declare const bench: Bench;

async function bundle(): Promise<{ dir: string; js: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zr-bench-files-'));
  await build({
    entryPoints: [path.join(ROOT, 'bench/browser/files-page.ts')],
    outfile: path.join(dir, 'page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: false,
    logLevel: 'error',
    // As web/vite.config.ts: simple-peer's prebuilt file; wasm-themis (loaded lazily by crypto/init.ts) is never used here.
    alias: { 'simple-peer': 'simple-peer/simplepeer.min.js', ws: path.join(ROOT, 'web/shims/empty.ts') },
    external: ['wasm-themis'],
  });
  return { dir, js: await readFile(path.join(dir, 'page.js'), 'utf8') };
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>bench:files</title><script type="module" src="/page.js"></script>';

/** Peak JSHeapUsedSize of a page, sampled every 100 ms while `during` runs. */
async function peakHeap<T>(cdp: CDPSession, during: () => Promise<T>): Promise<{ result: T; peak: number; before: number }> {
  const heap = async (): Promise<number> => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
  };
  const before = await heap();
  let peak = before;
  let sampling = true;
  let samplerError: unknown = null;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await heap());
      await new Promise((r) => setTimeout(r, 100));
    }
  })().catch((e: unknown) => (samplerError = e));
  try {
    const result = await during();
    if (samplerError !== null) throw samplerError;
    return { result, peak, before };
  } finally {
    sampling = false;
    await sampler;
  }
}

const step = (what: string): void => {
  if (process.env['BENCH_DEBUG'] !== undefined) console.error(`[bench:files:browser] ${what}`);
};
const mbs = (bytes: number, ms: number): number => bytes / (ms / 1000) / 1e6;
const mb = (n: number): string => `${(n / 1e6).toFixed(0)} MB`;

/**
 * Chromium gathers host candidates on every interface once a page has a media permission, and on
 * this machine picked the eth0 IPv6 address, whose UDP sends then failed with EAGAIN. As root, run
 * in a loopback-only network namespace (platform notes): nothing leaves 127.0.0.1.
 */
if (process.env['ZR_BENCH_NETNS'] === undefined && process.getuid?.() === 0) {
  const r = spawnSync(
    'unshare',
    ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url)],
    { stdio: 'inherit', env: { ...process.env, ZR_BENCH_NETNS: '1' } },
  );
  process.exit(r.status ?? 1);
}

const { dir, js } = await bundle();
const serverKeys = generateBoxKeyPair();
const server = http.createServer((req, res) => {
  if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
  else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
});
const signaling = attachSignalingServer({ server, permanentKeys: [serverKeys] });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;
const httpUrl = `http://127.0.0.1:${port}/`;
const wsUrl = `ws://127.0.0.1:${port}`;
const serverKey = toHex(serverKeys.publicKey);

const browser = await launchChromium();
try {
  const open = async (label: string): Promise<Page> => {
    const page = await (await newContext(browser)).newPage();
    page.on('pageerror', (e) => console.error(`${label}: ${e.message}`));
    page.on('console', (m) => step(`${label} console: ${m.text()}`));
    page.on('crash', () => console.error(`${label}: page crashed`));
    page.on('close', () => step(`${label}: page closed`));
    await page.goto(httpUrl);
    await page.waitForFunction(() => 'bench' in globalThis);
    return page;
  };
  step('browser up');
  const owner = await open('owner');
  step('owner page loaded');
  const members = await Promise.all(['m1', 'm2', 'm3', 'm4'].map(open));
  const tokens = members.map(() => toHex(systemRandom(32)));
  const ownerKey = await owner.evaluate(([u, k, t]) => bench.owner(u, k, t), [wsUrl, serverKey, tokens] as const);
  const keys = await Promise.all(
    members.map((m, i) =>
      m.evaluate(([u, k, o, t]) => bench.member(u, k, o, t), [wsUrl, serverKey, ownerKey, tokens[i] as string] as const),
    ),
  );
  step('members joined');
  await Promise.all(keys.map((k) => owner.evaluate((key) => bench.ownerLinkReady(key), k)));
  step('owner links ready');
  const [m1, ...others] = members as [Page, Page, Page, Page];
  const m1Key = keys[0] as string;
  const count = Math.ceil(TOTAL / CHUNK);

  // Where the time can go, each part alone in a page.
  const aead = await m1.evaluate(() => bench.aeadRate(64));
  const hash = await owner.evaluate(() => bench.hashRate(64));
  step(`aead ${JSON.stringify(aead)}, hash ${hash}`);

  // Raw: the files RTCDataChannel between member 1 and the owner, 65,573-byte messages.
  const rawGot = owner.evaluate(([k, n]) => bench.rawReceive(k, n), [m1Key, count] as const);
  const r0 = performance.now();
  await m1.evaluate((n) => bench.rawSend('owner', n), count);
  await rawGot;
  const rawMBs = mbs(count * CHUNK, performance.now() - r0);
  step(`raw ${rawMBs}`);

  // The file path over the same channel: member 1 -> owner, receiver's heap sampled.
  const offer: WireOffer = await m1.evaluate((size) => bench.makeOffer(size), TOTAL);
  const cdp = await owner.context().newCDPSession(owner);
  await cdp.send('Performance.enable');
  await owner.evaluate(() => void bench.spent());
  await m1.evaluate(() => void bench.spent());
  const f0 = performance.now();
  const watch =
    process.env['BENCH_DEBUG'] === undefined
      ? null
      : setInterval(() => {
          void Promise.all([m1.evaluate(() => bench.peek()), owner.evaluate(() => bench.peek())]).then(([a, b]) =>
            step(`sender ${JSON.stringify(a)} receiver ${JSON.stringify(b)}`),
          );
        }, 3000);
  // The sender serves before the receiver's first want can reach it (in a room the offer comes first).
  await m1.evaluate((o) => bench.serve('owner', o), offer);
  const got = await peakHeap(cdp, () => owner.evaluate(([k, o]) => bench.receive(k, o), [m1Key, offer] as const));
  if (watch !== null) clearInterval(watch);
  const fileMs = performance.now() - f0;
  step(`file path ${fileMs} ms`);
  const fileMBs = mbs(TOTAL, fileMs);
  const sendSpent = await m1.evaluate(() => bench.spent());
  const recvSpent = await owner.evaluate(() => bench.spent());
  if (got.result.errors.length > 0) throw new Error(`transfer errors: ${got.result.errors.join('; ')}`);

  console.log(`bench:files (Chromium pages on 127.0.0.1, real PeerLink + files channel), ${MIB} MiB in 64 KiB chunks`);
  console.log(
    `  in a page alone: AES-256-GCM (WebCrypto) seal ${aead.seal.toFixed(0)} MB/s, open ${aead.open.toFixed(0)} MB/s; SHA-256 (hash-wasm) ${hash.toFixed(0)} MB/s`,
  );
  console.log(`raw RTCDataChannel (the files channel, 65,573-byte messages): ${rawMBs.toFixed(1)} MB/s`);
  console.log(`file path (FileTransfers, AES-256-GCM chunks, grants, SHA-256 check): ${fileMBs.toFixed(1)} MB/s`);
  console.log(`  ratio (file / raw): ${(fileMBs / rawMBs).toFixed(2)}`);
  console.log(
    `  sender: ${(sendSpent.seal / 1000).toFixed(1)} s awaiting seal (${sendSpent.sealCalls} chunks), ${(sendSpent.send / 1000).toFixed(1)} s in send(); receiver: ${(recvSpent.open / 1000).toFixed(1)} s awaiting open, ${(recvSpent.hash / 1000).toFixed(1)} s hashing; of ${(fileMs / 1000).toFixed(1)} s`,
  );
  console.log(`  receiving page JS heap: ${mb(got.before)} before, peak ${mb(got.peak)}`);

  // The owner relays one file from member 1 to members 2-4, serving what it has verified so far.
  const relayOffer: WireOffer = await m1.evaluate((size) => bench.makeOffer(size), TOTAL / 4);
  await m1.evaluate((o) => bench.serve('owner', o), relayOffer);
  await Promise.all(keys.slice(1).map((k) => owner.evaluate(([key, o]) => bench.relay(key, o), [k, relayOffer] as const)));
  const t1 = performance.now();
  const results = await Promise.all([
    owner.evaluate(([k, o]) => bench.receive(k, o, true), [m1Key, relayOffer] as const),
    ...others.map((m) => m.evaluate((o) => bench.receive('owner', o), relayOffer)),
  ]);
  const relayS = (performance.now() - t1) / 1000;
  for (const r of results) if (r.errors.length > 0) throw new Error(`relay errors: ${r.errors.join('; ')}`);
  console.log(
    `owner relay: ${(relayOffer.size / 1024 / 1024).toFixed(0)} MiB from a member to 3 members in ${relayS.toFixed(1)} s (${mbs(3 * relayOffer.size, relayS * 1000).toFixed(1)} MB/s delivered in total, ${mbs(relayOffer.size, relayS * 1000).toFixed(1)} MB/s per member)`,
  );
  await owner.evaluate(() => bench.dropKept());
} catch (e) {
  console.error('bench:files:browser failed:', e);
  process.exitCode = 1;
} finally {
  await browser.close();
  await signaling.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
}
