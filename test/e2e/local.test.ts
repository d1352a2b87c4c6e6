/**
 * Browser tests that need no second peer: first run and unlock, encrypted persistence across a
 * browser restart, change password, HTML payloads rendered inert, the invite QR code (screenshot and
 * in-app scanner with a fake camera), CSP and security headers, PWA manifest and offline shell.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildApp,
  CHROMIUM,
  CHROMIUM_ARGS,
  createRoom,
  enterRoom,
  launchChromium,
  messageTexts,
  newContext,
  newInvite,
  openApp,
  PASSWORD,
  sendMessage,
  startServer,
  unlock,
  watchErrors,
  type ServerHandle,
} from './harness.ts';
import { decodeQrPng, writeY4m } from './qr.ts';

const XSS = [
  '<img src=x onerror="window.__xss=1">',
  '<script>window.__xss=2</script>',
  '"><svg onload="window.__xss=3">',
  '<b>bold</b> &amp; <a href="javascript:window.__xss=4">link</a>',
];

let webDir: string;
let server: ServerHandle;
let browser: Browser;
const cleanups: Array<() => Promise<unknown>> = [];

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  webDir = await buildApp();
  server = await startServer(webDir);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await browser?.close();
  await server?.stop();
});

async function freshPage(): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await newContext(browser);
  cleanups.push(() => context.close());
  const page = await context.newPage();
  return { context, page, errors: watchErrors(page) };
}

// Browser steps under a loaded 2-core machine: generous per-test limits (no timed assertions).
describe('web app without peers', { timeout: 60_000 }, () => {
  it('first run asks for a password twice, refuses a mismatch, then shows home', async () => {
    const { page, errors } = await freshPage();
    await page.goto(server.url);
    await page.getByTestId('password-input').fill(PASSWORD);
    await page.getByTestId('password-confirm-input').fill(PASSWORD + 'x');
    await page.getByTestId('unlock-button').click();
    await expect.poll(() => page.getByTestId('lock-error').textContent()).toContain('not the same');
    await unlock(page);
    await expect(page.getByTestId('create-room').isVisible()).resolves.toBe(true);
    expect(errors).toEqual([]);
  });

  it('renders HTML and script payloads in room names, display names and messages as inert text', async () => {
    const { page, errors } = await freshPage();
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    await openApp(page, server.url);
    await createRoom(page, XSS[0] as string, XSS[1] as string);
    for (const payload of XSS) await sendMessage(page, payload);
    await expect.poll(() => messageTexts(page)).toEqual(XSS);
    expect(await page.getByTestId('room-name').textContent()).toBe(XSS[0]);
    expect(await page.getByTestId('member').first().locator('.name').textContent()).toBe(XSS[1]);
    const injected = await page.evaluate(() => ({
      xss: (window as unknown as { __xss?: number }).__xss,
      tags: document.querySelectorAll('#app img, #app script, #app svg, #app b, #app a').length,
    }));
    expect(injected).toEqual({ xss: undefined, tags: 0 });
    expect(dialogs).toBe(0);
    expect(errors).toEqual([]);
  });

  it('serves a strict CSP with the security headers, and the CSP blocks an inline script', async () => {
    const { page } = await freshPage();
    const response = await page.goto(server.url);
    const headers = response?.headers() ?? {};
    const csp = headers['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('no-referrer');
    const result = await page.evaluate(async () => {
      const violation = new Promise<string>((resolve) =>
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true }),
      );
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.append(s);
      return { directive: await violation, ran: (window as unknown as { __inline?: number }).__inline ?? null };
    });
    expect(result.ran).toBeNull();
    expect(result.directive).toMatch(/^script-src/);
  });

  it('the invite QR code decodes to the invite link, and the in-app scanner reads it from a fake camera', async () => {
    const { page } = await freshPage();
    await openApp(page, server.url);
    await createRoom(page, 'QR room', 'Owner');
    await page.getByTestId('new-invite').click();
    const link = page.getByTestId('invite-link');
    await link.waitFor();
    const invite = (await link.textContent()) ?? '';
    expect(invite).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#join=/);
    // An invite naming 127.0.0.1 works on this computer only: a warning replaces the QR code until asked.
    await expect.poll(() => page.getByTestId('invite-warning').textContent()).toContain('this computer only');
    expect(await page.getByTestId('invite-qr').isVisible()).toBe(false);
    await page.getByTestId('show-invite-qr').click();
    const png = await page.getByTestId('invite-qr').screenshot();
    expect(decodeQrPng(png)).toBe(invite);

    const dir = await mkdtemp(path.join(tmpdir(), 'zr-cam-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const y4m = path.join(dir, 'qr.y4m');
    writeY4m(y4m, png);
    const camBrowser = await launchChromium([
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-video-capture=${y4m}`,
    ]);
    cleanups.push(() => camBrowser.close());
    const camContext = await newContext(camBrowser);
    const camPage = await camContext.newPage();
    await openApp(camPage, server.url);
    await camPage.getByTestId('scan-button').click();
    await expect.poll(() => camPage.getByTestId('join-link-input').inputValue(), { timeout: 15_000 }).toBe(invite);
  });

  it('keeps rooms and history encrypted across a browser restart; a wrong password does not unlock', async () => {
    const port = await freePort();
    const fixed = await startServer(webDir, [], port);
    cleanups.push(() => fixed.stop());
    const profile = await mkdtemp(path.join(tmpdir(), 'zr-profile-'));
    cleanups.push(() => rm(profile, { recursive: true, force: true }));
    const launch = (): Promise<BrowserContext> =>
      chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        headless: true,
        permissions: ['camera', 'microphone'],
      });

    let ctx = await launch();
    let page = ctx.pages()[0] ?? (await ctx.newPage());
    await openApp(page, fixed.url);
    await createRoom(page, 'Persistent room', 'Alice');
    await sendMessage(page, 'first');
    await sendMessage(page, 'second');
    await expect.poll(() => messageTexts(page)).toEqual(['first', 'second']);
    // Nothing readable in IndexedDB: every record is sealed bytes.
    const plaintextFound = await page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open('zeroroom');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const dump: string[] = [];
      for (const name of ['rooms', 'history', 'identities', 'settings']) {
        const values = await new Promise<unknown[]>((resolve) => {
          const r = db.transaction(name).objectStore(name).getAll();
          r.onsuccess = () => resolve(r.result);
        });
        for (const v of values) dump.push(new TextDecoder('latin1').decode(v as Uint8Array));
      }
      db.close();
      return {
        count: dump.length,
        leaks: dump.filter((s) => s.includes('Persistent') || s.includes('first') || s.includes('Alice')).length,
      };
    });
    expect(plaintextFound.count).toBeGreaterThanOrEqual(4);
    expect(plaintextFound.leaks).toBe(0);
    await ctx.close();

    ctx = await launch();
    page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(fixed.url);
    await page.getByTestId('password-input').fill('not the password');
    await page.getByTestId('unlock-button').click();
    await expect.poll(() => page.getByTestId('lock-error').textContent()).toContain('password is not right');
    await unlock(page);
    await enterRoom(page, 'Persistent room');
    await expect.poll(() => messageTexts(page)).toEqual(['first', 'second']);
    await ctx.close();
  });

  it('a tampered or moved record is refused on unlock and its plaintext never shown', async () => {
    const { page } = await freshPage();
    await openApp(page, server.url);
    await createRoom(page, 'Tamper room', 'Eve');
    for (const t of ['one', 'two', 'three']) await sendMessage(page, `message ${t}`);
    await expect.poll(() => messageTexts(page)).toEqual(['message one', 'message two', 'message three']);
    // Flip a byte in the first history record; swap the ciphertexts of the second and third.
    await page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open('zeroroom');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const store = db.transaction('history', 'readwrite').objectStore('history');
      const keys = await new Promise<IDBValidKey[]>((resolve) => {
        const r = store.getAllKeys();
        r.onsuccess = () => resolve(r.result);
      });
      const values = await new Promise<Uint8Array[]>((resolve) => {
        const r = store.getAll();
        r.onsuccess = () => resolve(r.result as Uint8Array[]);
      });
      const flipped = values[0]!.slice();
      flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 1;
      store.put(flipped, keys[0]!);
      store.put(values[2]!, keys[1]!);
      store.put(values[1]!, keys[2]!);
      await new Promise<void>((resolve) => (store.transaction.oncomplete = () => resolve()));
      db.close();
    });
    await page.reload();
    await unlock(page);
    await expect.poll(() => page.getByTestId('notice-error').textContent()).toContain('3 stored records failed their integrity check');
    await enterRoom(page, 'Tamper room');
    await page.getByTestId('room-name').waitFor();
    expect(await messageTexts(page)).toEqual([]);
  });

  it('is usable with the keyboard alone: unlock, name, create a room, send', async () => {
    const { page } = await freshPage();
    await page.goto(server.url);
    await page.getByTestId('password-input').waitFor();
    const tabTo = async (testid: string): Promise<void> => {
      for (let i = 0; i < 15; i++) {
        if ((await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset['testid'])) === testid) return;
        await page.keyboard.press('Tab');
      }
      throw new Error(`Tab never reached ${testid}`);
    };
    await tabTo('password-input');
    await page.keyboard.type(PASSWORD);
    await tabTo('password-confirm-input');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByTestId('nav-home').waitFor();
    await tabTo('display-name-input');
    await page.keyboard.type('Keys');
    await tabTo('room-name-input');
    await page.keyboard.type('Keyboard room');
    await page.keyboard.press('Enter');
    await page.getByTestId('room-name').waitFor();
    await tabTo('message-input');
    await page.keyboard.type('sent with Enter');
    await page.keyboard.press('Enter');
    await expect.poll(() => messageTexts(page)).toEqual(['sent with Enter']);
  });

  it('forget a room deletes its records; an open invite survives a reload', async () => {
    const { page } = await freshPage();
    await openApp(page, server.url);
    await createRoom(page, 'Keep room', 'Fay');
    const invite = await newInvite(page);
    expect(invite).toContain('#join=');
    await page.reload();
    await unlock(page);
    await enterRoom(page, 'Keep room');
    await expect.poll(() => page.getByTestId('invite-link').textContent()).toBe(invite);

    await page.getByTestId('nav-home').click();
    await createRoom(page, 'Doomed room', 'Fay');
    await sendMessage(page, 'to be forgotten');
    await expect.poll(() => messageTexts(page)).toEqual(['to be forgotten']);
    await page.getByTestId('forget-room').click();
    await page.getByTestId('confirm-yes').click();
    await page.getByTestId('create-room').waitFor();
    expect(await page.getByTestId('room-entry').allTextContents()).toEqual([expect.stringContaining('Keep room')]);
    const counts = await page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open('zeroroom');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const count = (name: string): Promise<number> =>
        new Promise((resolve) => {
          const r = db.transaction(name).objectStore(name).count();
          r.onsuccess = () => resolve(r.result);
        });
      const out = { rooms: await count('rooms'), identities: await count('identities'), history: await count('history') };
      db.close();
      return out;
    });
    expect(counts).toEqual({ rooms: 1, identities: 1, history: 0 });
  });

  it('change password re-encrypts everything: the old password stops working, the new one restores the rooms', async () => {
    const { page } = await freshPage();
    await openApp(page, server.url);
    await createRoom(page, 'Rekeyed room', 'Bob');
    await sendMessage(page, 'kept');
    await expect.poll(() => messageTexts(page)).toEqual(['kept']);
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('old-password-input').fill(PASSWORD);
    await page.getByTestId('new-password-input').fill('a brand new password');
    await page.getByTestId('change-password').click();
    // Re-encrypting derives a new key (PBKDF2, 2,000,000 iterations): slow on a loaded machine.
    await page.getByText('Password changed').waitFor({ timeout: 60_000 });
    await page.reload();
    await page.getByTestId('password-input').fill(PASSWORD);
    await page.getByTestId('unlock-button').click();
    await expect.poll(() => page.getByTestId('lock-error').textContent()).toContain('password is not right');
    await unlock(page, 'a brand new password');
    await enterRoom(page, 'Rekeyed room');
    await expect.poll(() => messageTexts(page)).toEqual(['kept']);
  });

  it('is installable (manifest, icons, service worker) and the app shell loads offline', async () => {
    const { context, page } = await freshPage();
    await page.goto(server.url);
    const manifest = (await (await page.request.get(`${server.url}/manifest.webmanifest`)).json()) as {
      icons: Array<{ src: string }>;
      start_url: string;
      display: string;
    };
    expect(manifest.display).toBe('standalone');
    for (const icon of manifest.icons) expect((await page.request.get(`${server.url}${icon.src}`)).status()).toBe(200);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    // The worker claims the page on activate; wait until it controls it before going offline.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await context.setOffline(true);
    await page.reload();
    await unlock(page);
    await expect(page.getByTestId('create-room').isVisible()).resolves.toBe(true);
    await context.setOffline(false);
  });
});
