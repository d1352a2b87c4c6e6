/**
 * What a person sees (issue #13): every room state in words (a reused, a revoked and an expired
 * invite, the owner's tab closed, the signaling server stopped), delivery marks, unread counts and
 * the page title, leave, a reload returning to the room, notifications while the tab is hidden, the
 * invite QR code's shape and size, dark mode, 44 px tap targets on touch screens, an insecure
 * context caught before any password, and axe-core on every page in both colour schemes.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import QRCode from 'qrcode';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  buildApp,
  createRoom,
  enterRoom,
  joinByLink,
  launchChromium,
  messageTexts,
  newContext,
  newInvite,
  openApp,
  printLogsOnFailure,
  sendMessage,
  startServer,
  unlock,
  waitMembers,
  waitMessage,
  watchErrors,
  type ServerHandle,
} from './harness.ts';
import { decodeQrPng } from './qr.ts';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Issue #13: at most 200 characters, so the QR code is version 10 or lower at level M (invite v2, PROTOCOL.md 5.3). */
const MAX_INVITE_CHARS = 200;
const MAX_QR_VERSION = 10;

let webDir: string;
let server: ServerHandle;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pageErrors: string[][] = [];

beforeAll(async () => {
  webDir = await buildApp();
  server = await startServer(webDir);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
});

async function device(label: string, opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context =
    Object.keys(opts).length === 0
      ? await newContext(browser)
      : await browser.newContext({ permissions: ['camera', 'microphone'], viewport: { width: 900, height: 900 }, ...opts });
  contexts.push(context);
  const page = await context.newPage();
  pageErrors.push(watchErrors(page, label));
  return { context, page };
}

/**
 * axe-core in the page: injected through the DevTools protocol (page.evaluate), which the page's
 * strict CSP does not govern, so no context needs bypassCSP. Every rule axe runs by default
 * (WCAG 2.x A/AA and best practices); no violations allowed.
 */
async function axe(page: Page, label: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const run = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: AxeViolation[] }> } }).axe.run;
    interface AxeViolation {
      id: string;
      impact: string;
      nodes: { target: string[]; failureSummary: string }[];
    }
    const r = await run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
    }));
  });
  expect(violations, `axe on ${label}`).toEqual([]);
}

/** axe in the light and the dark scheme; the dark one must really be dark. */
async function axeBothSchemes(page: Page, label: string): Promise<void> {
  await page.emulateMedia({ colorScheme: 'light' });
  await axe(page, `${label} (light)`);
  await page.emulateMedia({ colorScheme: 'dark' });
  expect(await backgroundLuminance(page)).toBeLessThan(0.1);
  await axe(page, `${label} (dark)`);
  await page.emulateMedia({ colorScheme: 'light' });
  expect(await backgroundLuminance(page)).toBeGreaterThan(0.8);
}

/** Relative luminance (0 black .. 1 white) of the page background. */
function backgroundLuminance(page: Page): Promise<number> {
  return page.evaluate(() => {
    const m = /rgba?\((\d+), (\d+), (\d+)/.exec(getComputedStyle(document.documentElement).backgroundColor);
    if (m === null) return -1;
    const [r, g, b] = [m[1], m[2], m[3]].map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  });
}

/** Tab through the page; every visible, enabled control must get the focus at some point. */
async function everythingReachableByTab(page: Page, label: string): Promise<void> {
  await page.locator('body').focus();
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (el !== null) el.dataset['tabbed'] = 'yes';
    });
  }
  const missed = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('a[href], button, input, select, textarea, summary, [tabindex="0"]')]
      .filter((el) => el.offsetParent !== null && !(el as HTMLButtonElement).disabled && el.dataset['tabbed'] !== 'yes')
      .map((el) => el.dataset['testid'] ?? el.textContent ?? el.tagName),
  );
  expect(missed, `not reachable with Tab on ${label}`).toEqual([]);
}

async function h1Count(page: Page): Promise<number> {
  return page.locator('h1').count();
}

async function roomState(page: Page): Promise<string | null> {
  return page.getByTestId('room-status').getAttribute('data-state');
}

async function waitState(page: Page, state: string): Promise<void> {
  await expect.poll(() => roomState(page), { timeout: 30_000 }).toBe(state);
}

async function confirm(page: Page): Promise<void> {
  await page.getByTestId('confirm-yes').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'detached' });
}

async function unreadOf(page: Page, roomName: string): Promise<number> {
  const badge = page.getByTestId('room-entry').filter({ hasText: roomName }).getByTestId('unread-count');
  if ((await badge.count()) === 0) return 0;
  return Number(await badge.getAttribute('data-count'));
}

describe('pages without a second person', { timeout: 90_000 }, () => {
  it('an insecure context (plain http on a LAN name) is explained before any password is asked', async () => {
    // lan.test resolves to 127.0.0.1 for this browser only: the origin is not potentially
    // trustworthy, so Chromium withholds crypto.subtle exactly as on http://192.168.x.y.
    const lanBrowser = await launchChromium(['--host-resolver-rules=MAP lan.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']);
    try {
      const page = await lanBrowser.newPage();
      const port = new URL(server.url).port;
      await page.goto(`http://lan.test:${port}/`);
      await page.getByTestId('insecure-context').waitFor();
      expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
      expect(await page.getByTestId('password-input').count()).toBe(0);
      const text = (await page.getByTestId('insecure-context').textContent()) ?? '';
      expect(text).toContain('https://lan.test');
      expect(text).toContain(`http://localhost:${port}/`);
      expect(text).not.toMatch(/subtle|WebCrypto/);
      expect(await h1Count(page)).toBe(1);
      await axe(page, 'insecure context page');
    } finally {
      await lanBrowser.close();
    }
  });

  it('lock, home, settings and an owner room page: one h1 each, no axe violations in light and dark', async () => {
    const { page } = await device('axe-owner');
    await page.goto(server.url);
    await page.getByTestId('password-input').waitFor();
    expect(await h1Count(page)).toBe(1);
    await axeBothSchemes(page, 'first-run lock page');
    await unlock(page);
    expect(await h1Count(page)).toBe(1);
    await axeBothSchemes(page, 'home');
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('save-settings').waitFor();
    expect(await h1Count(page)).toBe(1);
    await axeBothSchemes(page, 'settings');
    await page.getByTestId('nav-home').click();
    await createRoom(page, 'Axe room', 'Olivia');
    await sendMessage(page, 'a message so the log is not empty');
    await newInvite(page);
    expect(await h1Count(page)).toBe(1);
    await axeBothSchemes(page, 'owner room page');
    await everythingReachableByTab(page, 'owner room page');
    // Only new messages and alerts are announced: nothing on <main>, the message list is a log.
    expect(await page.locator('main[aria-live], #app[aria-live]').count()).toBe(0);
    expect(await page.getByTestId('message-list').getAttribute('role')).toBe('log');
    // The unlock page after a reload too.
    await page.reload();
    await page.getByTestId('password-input').waitFor();
    await axeBothSchemes(page, 'unlock page');
  });

  it('the invite QR code stays square at any width, decodes to the link, and says when it expires', async () => {
    const { page } = await device('qr-owner', { viewport: { width: 320, height: 700 } });
    await openApp(page, server.url);
    await createRoom(page, 'QR shape room', 'Olivia');
    const invite = await newInvite(page);
    await expect.poll(() => page.getByTestId('invite-expires').textContent()).toMatch(/^Expires in (9|10) minutes$/);
    // A loopback invite cannot reach another device, so the code is behind a button (invite-reach).
    await page.getByTestId('show-invite-qr').click();
    for (const width of [320, 600, 1200]) {
      await page.setViewportSize({ width, height: 900 });
      const box = await page.getByTestId('invite-qr').boundingBox();
      expect(box).not.toBeNull();
      expect(Math.abs((box?.width ?? 0) - (box?.height ?? 1))).toBeLessThanOrEqual(1);
      expect(box?.width ?? 0).toBeLessThanOrEqual(width);
      expect(decodeQrPng(await page.getByTestId('invite-qr').screenshot())).toBe(invite);
    }
    // Size: measured on whatever inviteUrl() produces; level M and the smallest version for it.
    const png = PNG.sync.read(await page.getByTestId('invite-qr').screenshot());
    const code = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height);
    const expected = QRCode.create(invite, { errorCorrectionLevel: 'M' }).version;
    console.log(`invite: ${invite.length} characters, QR version ${code?.version} (level M)`);
    expect(code?.version).toBe(expected);
    expect(invite.length).toBeLessThanOrEqual(MAX_INVITE_CHARS);
    expect(code?.version).toBeLessThanOrEqual(MAX_QR_VERSION);

    // Share: only where the browser has the Web Share API (Linux Chromium has not; a stand-in
    // records what the app hands to the share sheet).
    const hasShare = await page.evaluate(() => typeof navigator.share === 'function');
    expect(await page.getByTestId('share-invite').isVisible()).toBe(hasShare);
    await page.context().addInitScript(() => {
      const w = window as unknown as { __shared: unknown[] };
      w.__shared = [];
      Object.defineProperty(navigator, 'share', {
        configurable: true,
        value: (data: unknown) => {
          w.__shared.push(data);
          return Promise.resolve();
        },
      });
    });
    await page.reload();
    await unlock(page);
    // The reload returned to the room, and the open invite is still shown.
    await expect.poll(() => page.getByTestId('invite-link').textContent()).toBe(invite);
    await page.getByTestId('share-invite').click();
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { __shared: unknown[] }).__shared))
      .toEqual([{ title: 'Join "QR shape room" on ZeroRoom', url: invite }]);
  });

  it('touch screens get tap targets of at least 44 px', async () => {
    const { page } = await device('touch', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await openApp(page, server.url);
    expect(await page.evaluate(() => matchMedia('(pointer: coarse)').matches)).toBe(true);
    await createRoom(page, 'Touch room', 'Tess');
    await newInvite(page);
    for (const view of ['room', 'home', 'settings'] as const) {
      if (view === 'home') await page.getByTestId('nav-home').click();
      if (view === 'settings') await page.getByTestId('nav-settings').click();
      await page.locator('h1').first().waitFor();
      const small = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('button, input:not([type=checkbox]), select, textarea, summary')]
          .filter((el) => el.offsetParent !== null)
          .map((el) => ({ what: el.dataset['testid'] ?? el.textContent ?? el.tagName, h: el.getBoundingClientRect().height }))
          .filter((t) => t.h < 44),
      );
      expect(small, view).toEqual([]);
    }
  });
});

describe('an owner and the people they invite', { timeout: 120_000 }, () => {
  let owner: Page;
  let ann: Page;
  let ownerContext: BrowserContext;
  let annInvite = '';

  beforeEach((ctx) =>
    printLogsOnFailure(
      ctx,
      () => ({ owner, ann }),
      () => server,
    ),
  );

  it('joining, delivery marks, unread counts and the page title, a member page without axe violations', async () => {
    ({ context: ownerContext, page: owner } = await device('owner'));
    ({ page: ann } = await device('ann', { permissions: ['camera', 'microphone', 'notifications'] }));
    await openApp(owner, server.url);
    await createRoom(owner, 'Team room', 'Olivia');
    await sendMessage(owner, 'before Ann joined');
    annInvite = await newInvite(owner);
    await joinByLink(ann, annInvite, 'Ann');
    await waitMembers(ann, 2);
    // System lines by time: "You joined" comes after the history from before the join.
    await waitMessage(ann, 'before Ann joined');
    const lines = await ann.locator('.message').allTextContents();
    const joinedAt = lines.findIndex((t) => t.includes('You joined the room'));
    expect(joinedAt).toBeGreaterThan(lines.findIndex((t) => t.includes('before Ann joined')));
    await waitState(ann, 'member');
    await waitState(owner, 'member');
    expect(await ann.getByTestId('room-status-text').isHidden()).toBe(true);

    // Ann's own message: a delivery mark that ends at "delivered to the room".
    await sendMessage(ann, 'hello from Ann');
    await waitMessage(owner, 'hello from Ann');
    const mark = ann.getByTestId('message').filter({ hasText: 'hello from Ann' }).getByTestId('delivery-state');
    await expect.poll(() => mark.getAttribute('data-state')).toBe('delivered');
    expect(await mark.textContent()).toContain('Delivered to the room');
    // Others' messages carry no mark.
    await sendMessage(owner, 'hello from Olivia');
    await waitMessage(ann, 'hello from Olivia');
    expect(await ann.getByTestId('message').filter({ hasText: 'hello from Olivia' }).getByTestId('delivery-state').count()).toBe(0);
    await axeBothSchemes(ann, 'member room page');
    expect(await h1Count(ann)).toBe(1);

    // Unread: the owner is on Home while Ann writes twice.
    await owner.getByTestId('nav-home').click();
    expect(await unreadOf(owner, 'Team room')).toBe(0);
    await sendMessage(ann, 'unread one');
    await sendMessage(ann, 'unread two');
    await expect.poll(() => unreadOf(owner, 'Team room'), { timeout: 30_000 }).toBe(2);
    expect(await owner.title()).toBe('(2) ZeroRoom');
    expect(await owner.getByTestId('nav-home').textContent()).toContain('(2)');
    await axeBothSchemes(owner, 'home with unread counts');
    await enterRoom(owner, 'Team room');
    await expect.poll(() => owner.title()).toBe('ZeroRoom');
    await owner.getByTestId('nav-home').click();
    expect(await unreadOf(owner, 'Team room')).toBe(0);
    // Read marks survive a reload.
    await owner.reload();
    await unlock(owner);
    expect(await unreadOf(owner, 'Team room')).toBe(0);
    await enterRoom(owner, 'Team room');
  });

  it('a reload returns a member to the room they were in', async () => {
    await ann.reload();
    await unlock(ann);
    await ann.getByTestId('room-name').waitFor();
    expect(await ann.getByTestId('room-name').textContent()).toBe('Team room');
    await waitState(ann, 'member');
    // Back goes to Home, as in any app with screens.
    await ann.getByTestId('nav-settings').click();
    await ann.goBack();
    await ann.getByTestId('room-name').waitFor();
  });

  it('notifications: off until turned on in the room; then a message in a hidden tab notifies', async () => {
    await ann.evaluate(() => {
      // Stands in for the browser's Notification (a headless browser shows none): records what the
      // app would show. The page has the real permission ('notifications' granted to this context).
      const w = window as unknown as { __notes: string[]; Notification: unknown };
      w.__notes = [];
      w.Notification = class {
        static permission = 'granted';
        static requestPermission(): Promise<string> {
          return Promise.resolve('granted');
        }
        constructor(title: string, opts?: { body?: string }) {
          w.__notes.push(`${title}|${opts?.body ?? ''}`);
        }
        addEventListener(): void {}
        close(): void {}
      };
    });
    const hide = (hidden: boolean): Promise<void> =>
      ann.evaluate((h) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    const notes = (): Promise<string[]> => ann.evaluate(() => (window as unknown as { __notes: string[] }).__notes);
    await hide(true);
    await sendMessage(owner, 'not notified: notifications are off');
    await waitMessage(ann, 'not notified: notifications are off');
    expect(await notes()).toEqual([]);
    await hide(false);
    await ann.getByTestId('notify-toggle').click();
    await expect.poll(() => ann.getByTestId('notify-toggle').getAttribute('aria-pressed')).toBe('true');
    await hide(true);
    await sendMessage(owner, 'ping while hidden');
    await expect.poll(notes, { timeout: 30_000 }).toEqual(['Team room|Olivia: ping while hidden']);
    await hide(false);
    await sendMessage(owner, 'visible again: no notification');
    await waitMessage(ann, 'visible again: no notification');
    expect(await notes()).toHaveLength(1);
  });

  it("owner's tab closed: the member sees 'owner offline', can still write, and the message is delivered later", async () => {
    await owner.close();
    await waitState(ann, 'owner-offline');
    const text = (await ann.getByTestId('room-status-text').textContent()) ?? '';
    expect(text).toContain('offline');
    expect(text).toContain('go out when the owner is back');
    expect(await ann.getByTestId('send-button').isDisabled()).toBe(false);
    await sendMessage(ann, 'written while the owner was away');
    const mark = ann.getByTestId('message').filter({ hasText: 'written while the owner was away' }).getByTestId('delivery-state');
    await expect.poll(() => mark.getAttribute('data-state')).toBe('queued');
    expect(await mark.textContent()).toContain('Waiting to be sent');

    owner = await ownerContext.newPage();
    pageErrors.push(watchErrors(owner, 'owner'));
    await openApp(owner, server.url);
    // The owner also returns to the room it was in? No: a closed tab has no history; Home first.
    await enterRoom(owner, 'Team room');
    await waitMessage(owner, 'written while the owner was away');
    await expect.poll(() => mark.getAttribute('data-state'), { timeout: 30_000 }).toBe('delivered');
    await waitState(ann, 'member');
  });

  it('a reused invite: refused, in words, with a button that removes the dead room', async () => {
    const { page: mallory } = await device('mallory');
    await joinByLink(mallory, annInvite, 'Mallory');
    await waitState(mallory, 'refused');
    expect(await mallory.getByTestId('room-status').textContent()).toBe('Not let in');
    const text = (await mallory.getByTestId('room-status-text').textContent()) ?? '';
    expect(text).toContain('Ask the owner for a new invite');
    expect(text).not.toMatch(/saltyrtc|room\./);
    // The code, if any, only in the details line.
    expect((await mallory.getByTestId('room-status-details').textContent()) ?? '').toMatch(/^(Details: [a-z.-]+)?$/);
    expect(await mallory.getByTestId('message-input').isVisible()).toBe(false);
    expect(await mallory.getByTestId('leave-room').isVisible()).toBe(false);
    await axe(mallory, 'refused room page');
    await mallory.getByTestId('forget-room').click();
    await confirm(mallory);
    await mallory.getByTestId('create-room').waitFor();
    expect(await mallory.getByTestId('room-entry').count()).toBe(0);
  });

  it('a revoked invite: refused, and the owner still lists only its members', async () => {
    const revoked = await newInvite(owner);
    await owner.getByTestId('revoke-invite').click();
    await owner.getByTestId('invite-link').waitFor({ state: 'hidden' });
    const { page: trudy } = await device('trudy');
    await joinByLink(trudy, revoked, 'Trudy');
    await waitState(trudy, 'refused');
    expect(await trudy.getByTestId('room-status-text').textContent()).toContain('new invite');
    // The dead room says so on Home too.
    await trudy.getByTestId('nav-home').click();
    expect(await trudy.getByTestId('room-entry').getAttribute('data-state')).toBe('refused');
    expect(await trudy.getByTestId('room-entry').textContent()).toContain('Not let in');
    expect(await owner.getByTestId('member').count()).toBe(2);
  });

  it('an expired invite: a sentence saying so, and no dead room', async () => {
    const invite = await newInvite(owner); // 10 minutes
    const { page: late } = await device('late');
    // This device's clock is 11 minutes ahead: the invite has expired for it.
    await late.clock.setFixedTime(Date.now() + 11 * 60_000);
    await late.goto(invite);
    await unlock(late);
    await late.getByTestId('display-name-input').fill('Late');
    await late.getByTestId('join-button').click();
    const notice = late.getByTestId('notice-error');
    await expect.poll(() => notice.textContent()).toContain('This invite has expired. Ask the owner for a new invite.');
    expect(await notice.textContent()).toContain('Details: room.invite-expired');
    expect(await late.getByTestId('room-entry').count()).toBe(0);
    await axe(late, 'home with an error notice');
  });

  it('leave: the member leaves after confirming, sees it, and the owner lists one member fewer', async () => {
    const { page: bob } = await device('bob');
    await joinByLink(bob, await newInvite(owner), 'Bob');
    await waitMembers(owner, 3);
    await waitMembers(ann, 3);
    await waitState(bob, 'member');
    // One member list, in one order, on every device; members show no guess about each other's
    // connection (only the owner, whom they are connected to, has a badge on their pages).
    const names = (p: Page): Promise<string[]> => p.getByTestId('member').locator('.name').allTextContents();
    expect(await names(owner)).toEqual(['Olivia', 'Ann', 'Bob']);
    expect(await names(ann)).toEqual(await names(owner));
    expect(await names(bob)).toEqual(await names(owner));
    for (const p of [ann, bob]) expect(await p.getByTestId('connection-status').count()).toBe(1);
    expect(await owner.getByTestId('connection-status').count()).toBe(2);
    // Cancel first: nothing happens.
    await bob.getByTestId('leave-room').click();
    await bob.getByTestId('confirm-no').click();
    expect(await roomState(bob)).toBe('member');
    // With the keyboard: the dialog opens on Cancel (the safe choice); Tab, Enter confirms.
    await bob.getByTestId('leave-room').focus();
    await bob.keyboard.press('Enter');
    await expect.poll(() => bob.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset['testid'])).toBe('confirm-no');
    await bob.keyboard.press('Tab');
    expect(await bob.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset['testid'])).toBe('confirm-yes');
    await bob.keyboard.press('Enter');
    await bob.getByTestId('confirm-dialog').waitFor({ state: 'detached' });
    await waitState(bob, 'left');
    expect(await bob.getByTestId('room-status-text').textContent()).toContain('You left this room');
    expect(await bob.getByTestId('message-input').isVisible()).toBe(false);
    expect(await bob.getByTestId('forget-room').isVisible()).toBe(true);
    await waitMembers(owner, 2);
    await sendMessage(owner, 'after Bob left');
    await waitMessage(ann, 'after Bob left');
    expect(await messageTexts(bob)).not.toContain('after Bob left');
  });

  it('the signaling server stopped: the owner is told what still works; a member who reloads is reconnecting', async () => {
    await server.stop();
    await waitState(owner, 'reconnecting');
    expect(await owner.getByTestId('room-status-text').textContent()).toContain('Connecting to the signaling server');
    // Connected people still chat over their direct links.
    await sendMessage(owner, 'still here without a server');
    await waitMessage(ann, 'still here without a server');
    expect(await roomState(ann)).toBe('member');
    // Ann reloads: the app shell comes from the service worker; the room cannot reconnect.
    await ann.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await ann.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await ann.reload();
    await unlock(ann);
    await ann.getByTestId('room-name').waitFor();
    await waitState(ann, 'reconnecting');
    expect(await ann.getByTestId('room-status-text').textContent()).toContain('trying again');
    expect(await ann.getByTestId('send-button').isDisabled()).toBe(false);
  });

  it('left no page errors', () => {
    // Failed WebSocket connections to the stopped server are expected console lines.
    const unexpected = pageErrors.flat().filter((e) => !e.includes('Permissions-Policy') && !/WebSocket|ERR_CONNECTION_REFUSED/.test(e));
    expect(unexpected).toEqual([]);
  });
});
