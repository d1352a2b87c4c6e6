/**
 * crypto/ in Chromium, bundled by Vite the way web/ bundles it: initCrypto with the `?url` wasm,
 * and data crossing between Node and the browser in both directions (same API, same bytes).
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as zr from '../../crypto/index.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../e2e/harness.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

let outDir = '';
let server: Server | undefined;
let browser: Browser | undefined;
let page: Page;

type Zr = typeof zr;
type Win = { zr: Zr; wasmUrl: string; ready: boolean };

beforeAll(async () => {
  outDir = await mkdtemp(path.join(tmpdir(), 'zr-crypto-browser-'));
  const { build } = await import('vite');
  await build({
    configFile: false,
    root: path.join(here, 'browser'),
    logLevel: 'error',
    resolve: { alias: [{ find: /^ws$/, replacement: path.join(here, 'browser/empty.ts') }] },
    build: { outDir, emptyOutDir: true },
  });
  server = createServer((req, res) => {
    const name = path.normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '') || 'index.html';
    const file = path.join(outDir, name);
    if (!file.startsWith(outDir) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  await zr.initCrypto();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  await page.waitForFunction(() => (window as unknown as Win).ready === true);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve, reject) => (server ? server.close((e) => (e ? reject(e) : resolve())) : resolve()));
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

const hex = zr.toHex;
const unhex = (s: string): Uint8Array => zr.fromHex(s);

describe('crypto/ in Chromium (Vite bundle)', () => {
  it('keeps the Themis glue out of the entry chunk (loaded by dynamic import)', () => {
    const js = readdirSync(path.join(outDir, 'assets')).filter((f) => f.endsWith('.js'));
    const sizes = js.map((f) => statSync(path.join(outDir, 'assets', f)).size).sort((a, b) => a - b);
    expect(js.length).toBeGreaterThanOrEqual(2);
    expect(sizes[0]).toBeLessThan(200_000); // entry: codecs, tweetnacl, wrappers
    expect(sizes[sizes.length - 1]).toBeGreaterThan(1_000_000); // the Emscripten glue
  });

  it('throws crypto.not-ready before init, then initCrypto(wasmUrl) is idempotent', async () => {
    const r = await page.evaluate(async () => {
      const w = window as unknown as Win;
      let before = '';
      try {
        w.zr.generateIdentity();
      } catch (e) {
        before = `${(e as { code: string }).code}:${e instanceof w.zr.CryptoError}`;
      }
      const p1 = w.zr.initCrypto({ wasmUrl: w.wasmUrl });
      const same = p1 === w.zr.initCrypto({ wasmUrl: w.wasmUrl });
      await p1;
      return { before, same };
    });
    expect(r).toEqual({ before: 'crypto.not-ready:true', same: true });
  });

  it('Secure Cell: Node seals, browser opens; browser seals, Node opens; tamper is crypto.auth', async () => {
    const key = zr.generateSymmetricKey();
    const ctx = zr.utf8Encode('room:x|epoch:3');
    const fromNode = zr.cellSeal(key, zr.utf8Encode('from node'), ctx);
    const r = await page.evaluate(
      async ([k, c, sealed]) => {
        const z = (window as unknown as Win).zr;
        const key = z.asSymmetricKey(z.fromHex(k));
        const ctx = z.fromHex(c);
        const opened = z.utf8Decode(z.cellOpen(key, z.fromHex(sealed), ctx));
        const mine = z.toHex(z.cellSeal(key, z.utf8Encode('from browser'), ctx));
        const bad = z.fromHex(sealed);
        bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
        let tamper = '';
        try {
          z.cellOpen(key, bad, ctx);
        } catch (e) {
          tamper = `${(e as { code: string }).code}:${e instanceof z.AuthError}`;
        }
        return { opened, mine, tamper };
      },
      [hex(key), hex(ctx), hex(fromNode)] as const,
    );
    expect(r.opened).toBe('from node');
    expect(r.tamper).toBe('crypto.auth:true');
    expect(zr.utf8Decode(zr.cellOpen(key, unhex(r.mine), ctx))).toBe('from browser');
  });

  it('Secure Message: identities made in either runtime sign and seal for the other', async () => {
    const nodeId = zr.generateIdentity();
    const sealedForBrowser = (pub: string) => hex(zr.sealTo(nodeId.privateKey, zr.asEcPublicKey(unhex(pub)), zr.utf8Encode('room key')));
    const r1 = await page.evaluate(() => {
      const z = (window as unknown as Win).zr;
      const id = z.generateIdentity();
      (window as unknown as { id: typeof id }).id = id;
      return { pub: z.toHex(id.publicKey), signed: z.toHex(z.sign(id.privateKey, z.utf8Encode('member list'))) };
    });
    expect(zr.utf8Decode(zr.verify(zr.asEcPublicKey(unhex(r1.pub)), unhex(r1.signed)))).toBe('member list');
    const r2 = await page.evaluate(
      ([nodePub, sealed]) => {
        const z = (window as unknown as Win).zr;
        const id = (window as unknown as { id: ReturnType<Zr['generateIdentity']> }).id;
        return z.utf8Decode(z.openFrom(id.privateKey, z.asEcPublicKey(z.fromHex(nodePub)), z.fromHex(sealed)));
      },
      [hex(nodeId.publicKey), sealedForBrowser(r1.pub)] as const,
    );
    expect(r2).toBe('room key');
  });

  it('NaCl, hashes and the storage KDFs (Argon2id, legacy PBKDF2) give the same bytes as Node', async () => {
    const params = {
      alg: 'argon2id' as const,
      memoryKiB: zr.MIN_MEMORY_KIB,
      passes: zr.MIN_PASSES,
      parallelism: 1,
      salt: new Uint8Array(16).fill(4),
    };
    const nodeKey = hex(await zr.deriveStorageKey('pässword', params));
    const legacy = { alg: 'pbkdf2-sha256' as const, iterations: zr.LEGACY_MIN_ITERATIONS, salt: new Uint8Array(16).fill(4) };
    const nodeLegacyKey = hex(await zr.deriveLegacyStorageKey('pässword', legacy));
    const sk = new Uint8Array(32).fill(8);
    const nonce = new Uint8Array(24).fill(2);
    const r = await page.evaluate(
      async ([memoryKiB, passes, iterations, sk, nonce]) => {
        const z = (window as unknown as Win).zr;
        const salt = new Uint8Array(16).fill(4);
        const key = await z.deriveStorageKey('pa\u0308ssword', { alg: 'argon2id', memoryKiB, passes, parallelism: 1, salt });
        const legacyKey = await z.deriveLegacyStorageKey('pa\u0308ssword', { alg: 'pbkdf2-sha256', iterations, salt });
        const pair = z.boxKeyPairFromSecret(z.asBoxSecretKey(z.fromHex(sk)));
        const sb = z.secretbox(z.utf8Encode('hi'), z.fromHex(nonce), z.asSecretboxKey(z.fromHex(sk)));
        let open = '';
        try {
          z.secretboxOpen(sb.subarray(1), z.fromHex(nonce), z.asSecretboxKey(z.fromHex(sk)));
        } catch (e) {
          open = (e as { code: string }).code;
        }
        return {
          key: z.toHex(key),
          legacyKey: z.toHex(legacyKey),
          pub: z.toHex(pair.publicKey),
          sb: z.toHex(sb),
          open,
          sha256: z.toHex(z.sha256(z.utf8Encode('abc'))),
          sha512: z.toHex(z.sha512(z.utf8Encode('abc'))).slice(0, 16),
          b64: z.toBase64url(z.fromHex('fbffbf')),
        };
      },
      [zr.MIN_MEMORY_KIB, zr.MIN_PASSES, zr.LEGACY_MIN_ITERATIONS, hex(sk), hex(nonce)] as const,
    );
    expect(r.key).toBe(nodeKey);
    expect(r.legacyKey).toBe(nodeLegacyKey);
    expect(r.pub).toBe(hex(zr.boxKeyPairFromSecret(zr.asBoxSecretKey(sk)).publicKey));
    expect(r.sb).toBe(hex(zr.secretbox(zr.utf8Encode('hi'), nonce, zr.asSecretboxKey(sk))));
    expect(r.open).toBe('crypto.auth');
    expect(r.sha256).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(r.sha512).toBe('ddaf35a193617aba');
    expect(r.b64).toBe('-_-_');
  });
});
