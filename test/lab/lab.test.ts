/**
 * Real networks in the network lab (test/lab/lab.ts, issue #10): Chromium runs inside the owner's
 * and the phone's namespaces; pages get only what a real user gives them (no camera permission, so
 * host candidates are mDNS names; the certificate warning accepted once: ignoreHTTPSErrors).
 *
 * One lab for the whole file, scenarios in sequence:
 *  home Wi-Fi (server `--lan` on the owner's laptop): the phone opens the https LAN URL decoded from
 *  the owner's QR code, joins and chats directly; 5 % loss both ways; a 15 s partition; the server
 *  killed mid-chat and restarted.
 *  mobile (the phone behind NAT B, servers and coturn "on the internet"): UDP blocked -> TURN over
 *  TCP; UDP blocked and no TURN -> fallback through the server; routed LANs whose mDNS names do not
 *  resolve -> fallback.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeQrPng } from '../e2e/qr.ts';
import {
  buildApp,
  CHROMIUM_ARGS,
  createRoom,
  joinByLink,
  messageTexts,
  newInvite,
  openApp,
  printLogsOnFailure,
  ROOT,
  sendMessage,
  waitMembers,
  waitMessage,
  watchErrors,
} from '../e2e/harness.ts';
import { ADDR, createLab, NS, type Lab, type Ns } from './lab.ts';

// The e2e flags, except that `.local` names (WebRTC's mDNS host candidates) resolve normally.
const LAB_ARGS = [
  ...CHROMIUM_ARGS.filter((a) => !a.startsWith('--host-resolver-rules')),
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 10.99.*, EXCLUDE *.local',
];
const TURN_SECRET = 'lab-turn-secret-0123456789abcdef';

let lab: Lab;
let webDir: string;
let keyRoot: string;
let ownerBrowser: Browser;
let phoneBrowser: Browser;
const contexts: BrowserContext[] = [];
const pages: Record<string, Page | undefined> = {};
let current: LabServer | undefined;

interface LabServer {
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `zeroroom serve --lan ...` inside `ns`, keys and CA in `keyDir` (kept across restarts). */
async function serve(ns: Ns, keyDir: string, args: string[]): Promise<LabServer> {
  const child = lab.spawnIn(ns, process.execPath, [
    path.join(ROOT, 'bin/zeroroom.js'),
    'serve',
    '--web',
    webDir,
    '--key-file',
    path.join(keyDir, 'server.key'),
    ...args,
  ]);
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const m = /zeroroom: LAN URL (https:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`zeroroom serve in ${ns} exited with ${code}:\n${out}`)));
  });
  const server: LabServer = {
    url,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  current = server;
  return server;
}

async function startCoturn(dir: string): Promise<ChildProcess> {
  const child = lab.spawnIn(NS.inet, 'turnserver', [
    '-n',
    `--listening-ip=${ADDR.inet}`,
    `--relay-ip=${ADDR.inet}`,
    '--listening-port=3478',
    '--min-port=49160',
    '--max-port=49260',
    '--use-auth-secret',
    `--static-auth-secret=${TURN_SECRET}`,
    '--realm=lab.zeroroom.test',
    '--fingerprint',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--no-multicast-peers',
    `--pidfile=${path.join(dir, 'turnserver.pid')}`,
    `--userdb=${path.join(dir, 'turndb')}`,
    '--log-file=stdout',
    '--simple-log',
  ]);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (/Total General servers/.test(out)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`turnserver exited with ${code}:\n${out}`)));
  });
  return child;
}

function launchIn(ns: Ns): Promise<Browser> {
  return chromium.launch({ executablePath: lab.chromiumIn(ns), args: LAB_ARGS, headless: true });
}

/** A device: a fresh browser context with no permissions; the certificate warning accepted once. */
async function device(browser: Browser, label: string): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  watchErrors(page, label);
  pages[label] = page;
  return page;
}

/** The owner's invite as a phone camera sees it: the QR code on the owner's screen, decoded. */
async function scanInviteQr(owner: Page): Promise<string> {
  const link = await newInvite(owner);
  const canvas = owner.getByTestId('invite-qr');
  await canvas.waitFor({ state: 'visible' });
  let decoded = '';
  await expect
    .poll(async () => {
      try {
        decoded = decodeQrPng(await canvas.screenshot());
      } catch {
        decoded = '';
      }
      return decoded;
    })
    .toBe(link);
  return decoded;
}

/** The connection badge of the (only) other member on `page`. */
function badge(page: Page): Promise<string | null> {
  return page.getByTestId('connection-status').first().getAttribute('data-state');
}

async function chat(a: Page, b: Page, tag: string): Promise<void> {
  await sendMessage(a, `${tag}: from A`);
  await waitMessage(b, `${tag}: from A`);
  await sendMessage(b, `${tag}: from B`);
  await waitMessage(a, `${tag}: from B`);
}

/** Waits until `page` shows `count` messages starting with `prefix`. */
async function waitCount(page: Page, prefix: string, count: number, timeout = 120_000): Promise<void> {
  await page.waitForFunction(
    ([p, n]) =>
      [...document.querySelectorAll('[data-testid="message-text"]')].filter((e) => (e.textContent ?? '').startsWith(p as string)).length >=
      (n as number),
    [prefix, count] as const,
    { timeout, polling: 250 },
  );
}

/** Settings → Check connection; returns each row's data-ok and text, and the members' paths. */
async function diagnose(
  page: Page,
  roomName: string,
): Promise<{ rows: Record<string, { ok: string; text: string }>; paths: string[]; rtts: string[] }> {
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('run-diagnostics').click();
  await page.getByTestId('diag-turn-tcp').waitFor({ timeout: 60_000 });
  const rows: Record<string, { ok: string; text: string }> = {};
  for (const id of ['diag-signaling', 'diag-server-key', 'diag-stun', 'diag-turn-udp', 'diag-turn-tcp']) {
    const el = page.getByTestId(id);
    rows[id] = { ok: (await el.getAttribute('data-ok')) ?? '', text: (await el.textContent()) ?? '' };
  }
  const members = page.getByTestId('diag-member');
  const paths: string[] = [];
  const rtts: string[] = [];
  for (let i = 0; i < (await members.count()); i++) {
    paths.push((await members.nth(i).getAttribute('data-path')) ?? '');
    rtts.push((await members.nth(i).getAttribute('data-rtt')) ?? '');
  }
  await enterRoomFromHome(page, roomName);
  return { rows, paths, rtts };
}

async function enterRoomFromHome(page: Page, roomName: string): Promise<void> {
  await page.getByTestId('nav-home').click();
  await page.getByTestId('room-entry').filter({ hasText: roomName }).click();
  await page.getByTestId('room-name').waitFor();
}

async function texts(page: Page, prefix: string): Promise<string[]> {
  return (await messageTexts(page)).filter((t) => t.startsWith(prefix));
}

beforeAll(async () => {
  lab = createLab();
  webDir = await buildApp();
  keyRoot = await mkdtemp(path.join(tmpdir(), 'zrl-keys-'));
  ownerBrowser = await launchIn(NS.owner);
  phoneBrowser = await launchIn(NS.phone);
}, 240_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await ownerBrowser?.close();
  await phoneBrowser?.close();
  await current?.stop('SIGKILL');
  await lab?.teardown();
  if (keyRoot !== undefined) await rm(keyRoot, { recursive: true, force: true });
}, 60_000);

beforeEach((ctx) =>
  printLogsOnFailure(
    ctx,
    () => pages,
    () =>
      current === undefined
        ? undefined
        : { url: current.url, publicKeyHex: '', child: current.child, output: current.output, stop: () => current!.stop() },
  ),
);

describe('home Wi-Fi: the server runs on the laptop with --lan', () => {
  let server: LabServer;
  let owner: Page;
  let phone: Page;
  const keyDir = (): string => path.join(keyRoot, 'laptop');

  it('the phone opens the https LAN URL from the QR code, joins and chats both ways, directly (mDNS resolves on the LAN)', async () => {
    await mkdir(keyDir(), { recursive: true });
    server = await serve(NS.owner, keyDir(), ['--lan', '--port', '8443', '--ice-server', 'none']);
    // --lan found the laptop's LAN address by itself.
    expect(server.url).toBe(`https://${ADDR.owner}:8443`);
    owner = await device(ownerBrowser, 'owner');
    await openApp(owner, server.url);
    await createRoom(owner, 'Home', 'Olivia');
    const invite = await scanInviteQr(owner);
    expect(invite.startsWith(`https://${ADDR.owner}:8443/#join=`)).toBe(true);
    expect(await owner.getByTestId('invite-warning').isVisible()).toBe(false);

    phone = await device(phoneBrowser, 'phone');
    await joinByLink(phone, invite, 'Pia');
    await waitMembers(owner, 2);
    await waitMembers(phone, 2);
    await chat(owner, phone, 'lan');
    // The phone's link was started while it derived its storage key (web/session/prewarm.ts).
    expect(await phone.evaluate(() => performance.getEntriesByName('zr:link-open').length)).toBe(1);
    await expect.poll(() => badge(owner), { timeout: 30_000 }).toBe('direct');
    await expect.poll(() => badge(phone), { timeout: 30_000 }).toBe('direct');
  }, 180_000);

  it('5 % loss both ways: 200 messages each way arrive exactly once and in order', async () => {
    lab.setPhoneLoss(0.05);
    try {
      const fromOwner = Array.from({ length: 200 }, (_, i) => `loss o${String(i).padStart(3, '0')}`);
      const fromPhone = Array.from({ length: 200 }, (_, i) => `loss p${String(i).padStart(3, '0')}`);
      for (let i = 0; i < 200; i++) {
        await sendMessage(owner, fromOwner[i] as string);
        await sendMessage(phone, fromPhone[i] as string);
      }
      for (const p of [owner, phone]) {
        await waitCount(p, 'loss o', 200);
        await waitCount(p, 'loss p', 200);
        expect(await texts(p, 'loss o')).toEqual(fromOwner);
        expect(await texts(p, 'loss p')).toEqual(fromPhone);
      }
    } finally {
      lab.setPhoneLoss(0);
    }
  }, 300_000);

  it('a 15 s partition, then healed: the link recovers and what was typed meanwhile arrives once', async () => {
    lab.partitionPhone(true);
    try {
      for (let i = 0; i < 3; i++) {
        await sendMessage(owner, `cut o${i}`);
        await sendMessage(phone, `cut p${i}`);
      }
      // The partition itself is the scenario: 15 s without any packet to or from the phone.
      await new Promise((r) => setTimeout(r, 15_000));
    } finally {
      lab.partitionPhone(false);
    }
    for (const p of [owner, phone]) {
      await waitCount(p, 'cut o', 3);
      await waitCount(p, 'cut p', 3);
    }
    for (const p of [owner, phone]) {
      expect(await texts(p, 'cut o')).toEqual(['cut o0', 'cut o1', 'cut o2']);
      expect(await texts(p, 'cut p')).toEqual(['cut p0', 'cut p1', 'cut p2']);
    }
    await expect.poll(() => badge(phone), { timeout: 60_000 }).toBe('direct');
    await chat(owner, phone, 'healed');
  }, 180_000);

  it('the signaling server killed mid-chat: chat goes on; after a restart the owner re-attaches and a new member joins', async () => {
    await server.stop('SIGKILL');
    await chat(owner, phone, 'no server');
    server = await serve(NS.owner, keyDir(), ['--lan', '--port', '8443', '--ice-server', 'none']);
    await expect.poll(() => owner.getByTestId('room-status').getAttribute('data-state'), { timeout: 60_000 }).toBe('member');
    const second = await device(phoneBrowser, 'second');
    await joinByLink(second, await newInvite(owner), 'Sam');
    for (const p of [owner, phone, second]) await waitMembers(p, 3);
    await sendMessage(second, 'hello from the new member');
    await waitMessage(owner, 'hello from the new member');
    await waitMessage(phone, 'hello from the new member');
    await server.stop();
  }, 180_000);

  it('the owner closes its page: a member on the laptop and the phone talk directly across the LAN (owner away)', async () => {
    server = await serve(NS.owner, keyDir(), ['--lan', '--port', '8443', '--ice-server', 'none']);
    await expect.poll(() => owner.getByTestId('room-status').getAttribute('data-state'), { timeout: 60_000 }).toBe('member');
    const laptop = await device(ownerBrowser, 'laptop-member');
    await joinByLink(laptop, await newInvite(owner), 'Lea');
    for (const p of [owner, phone, laptop]) await waitMembers(p, 4);
    await owner.close();
    // The mesh link between the two namespaces goes through the same signaling server and ICE as
    // the owner's links (PROTOCOL.md 5.16), with no browser permission granted.
    for (const p of [phone, laptop])
      await expect.poll(() => p.getByTestId('room-status').getAttribute('data-state'), { timeout: 60_000 }).toBe('owner-away');
    await chat(phone, laptop, 'owner away');
    await server.stop();
  }, 180_000);
});

describe('on mobile: the phone behind NAT B, the servers and coturn on the internet', () => {
  let coturn: ChildProcess | undefined;

  beforeAll(async () => {
    lab.phoneOn('mobile');
    // A phone that changed networks; a fresh browser sees the new interfaces.
    await phoneBrowser.close();
    phoneBrowser = await launchIn(NS.phone);
    const dir = await mkdtemp(path.join(keyRoot, 'coturn-'));
    coturn = await startCoturn(dir);
  }, 120_000);

  afterAll(() => {
    coturn?.kill('SIGKILL');
  });

  async function roomOver(server: LabServer, tag: string): Promise<{ owner: Page; phone: Page }> {
    const owner = await device(ownerBrowser, `owner-${tag}`);
    await openApp(owner, server.url);
    await createRoom(owner, tag, 'Olivia');
    const phone = await device(phoneBrowser, `phone-${tag}`);
    await joinByLink(phone, await scanInviteQr(owner), 'Pia');
    await waitMembers(owner, 2);
    await waitMembers(phone, 2);
    return { owner, phone };
  }

  it('separate NATs, UDP blocked between them: connected through TURN over TCP with credentials from /config.json', async () => {
    lab.blockUdp('a', true);
    lab.blockUdp('b', true);
    const dir = path.join(keyRoot, 'cloud');
    await mkdir(dir, { recursive: true });
    const server = await serve(NS.inet, dir, [
      '--lan',
      ADDR.inet,
      '--port',
      '8444',
      '--ice-server',
      'none',
      '--turn-url',
      `turn:${ADDR.inet}:3478?transport=tcp`,
      '--turn-url',
      `turn:${ADDR.inet}:3478?transport=udp`,
      '--turn-secret',
      TURN_SECRET,
    ]);
    const { owner, phone } = await roomOver(server, 'turn');
    await chat(owner, phone, 'turn');
    await expect.poll(() => badge(owner), { timeout: 30_000 }).toBe('relayed');
    await expect.poll(() => badge(phone), { timeout: 30_000 }).toBe('relayed');

    // Diagnostics, as the owner sees them in Settings: the server and its key, no reflexive address
    // and no TURN over UDP (UDP is blocked), TURN over TCP allocated, the phone's path relayed with an RTT.
    const d = await diagnose(owner, 'turn');
    expect(d.rows['diag-signaling']?.ok).toBe('true');
    expect(d.rows['diag-server-key']?.ok).toBe('true');
    expect(d.rows['diag-stun']?.ok).toBe('false');
    expect(d.rows['diag-turn-udp']?.ok).toBe('false');
    expect(d.rows['diag-turn-tcp']?.ok).toBe('true');
    expect(d.paths).toEqual(['relay']);
    expect(Number(d.rtts[0])).toBeGreaterThanOrEqual(0);
    expect(d.rtts[0]).not.toBe('');
    await server.stop();
  }, 180_000);

  it('UDP blocked and no TURN: connected through the fallback, the badge says so, chat works both ways', async () => {
    const dir = path.join(keyRoot, 'cloud');
    const server = await serve(NS.inet, dir, ['--lan', ADDR.inet, '--port', '8445', '--ice-server', 'none']);
    const { owner, phone } = await roomOver(server, 'fallback');
    await expect.poll(() => badge(phone), { timeout: 60_000 }).toBe('fallback');
    await expect.poll(() => badge(owner), { timeout: 30_000 }).toBe('fallback');
    expect(await owner.getByTestId('connection-status').first().textContent()).toBe('via server (no direct path)');
    await chat(owner, phone, 'fallback');
    await chat(phone, owner, 'fallback again');
    const d = await diagnose(phone, 'fallback');
    expect(d.rows['diag-signaling']?.ok).toBe('true');
    expect(d.rows['diag-turn-tcp']?.text).toContain('not configured');
    expect(d.paths).toEqual(['fallback']);
    await server.stop();
  }, 180_000);

  it('routed networks whose mDNS host names do not resolve (no camera permission, no STUN): connected through the fallback', async () => {
    lab.blockUdp('a', false);
    lab.blockUdp('b', false);
    lab.setNat('a', false);
    lab.setNat('b', false);
    try {
      const dir = path.join(keyRoot, 'cloud');
      const server = await serve(NS.inet, dir, ['--lan', ADDR.inet, '--port', '8445', '--ice-server', 'none']);
      const { owner, phone } = await roomOver(server, 'mdns');
      await expect.poll(() => badge(phone), { timeout: 60_000 }).toBe('fallback');
      await chat(owner, phone, 'mdns');
      await server.stop();
    } finally {
      lab.setNat('a', true);
      lab.setNat('b', true);
    }
  }, 180_000);
});
