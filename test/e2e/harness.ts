/**
 * Browser-test harness: builds the app once per source state (cached by a hash of web/, shared by
 * parallel test files through an atomic mkdir lock), starts `zeroroom serve --web <build>` as a child
 * on port 0, and launches Debian's Chromium with the flags from shared/notes/platform.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type LaunchOptions, type Page } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

function hashTree(dir: string, hash = createHash('sha256')): ReturnType<typeof createHash> {
  for (const name of readdirSync(dir).sort()) {
    if (name === 'dist' || name === 'node_modules') continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) hashTree(full, hash);
    else hash.update(full).update(readFileSync(full));
  }
  return hash;
}

async function sleepUntil(deadline: number, what: string): Promise<void> {
  if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  // Polling is the only option here: another process holds the build lock and emits no event we can await.
  await new Promise((r) => setTimeout(r, 200));
}

/** Builds web/ into a cache directory keyed by the source hash and returns the directory. */
export async function buildApp(): Promise<string> {
  const sources = hashTree(path.join(ROOT, 'web'));
  for (const dep of ['crypto', 'protocol']) hashTree(path.join(ROOT, dep), sources);
  const key = sources.digest('hex').slice(0, 16);
  const cache = path.join(ROOT, 'node_modules/.cache/zeroroom-e2e');
  const out = path.join(cache, key);
  const lock = `${out}.lock`;
  mkdirSync(cache, { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (existsSync(path.join(out, 'index.html'))) return out;
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      await sleepUntil(deadline, 'another test file building the app');
    }
  }
  try {
    const { build } = await import('vite');
    // Build beside and rename: a waiting file polls for index.html, which Rollup may write before
    // the chunks; the rename makes the whole build appear at once.
    const staging = `${out}.building`;
    await build({ configFile: path.join(ROOT, 'web/vite.config.ts'), logLevel: 'error', build: { outDir: staging, emptyOutDir: true } });
    renameSync(staging, out);
    // Older builds are never used again (their sources changed).
    for (const name of readdirSync(cache)) {
      if (name !== key && !name.endsWith('.lock') && !name.endsWith('.building'))
        rmSync(path.join(cache, name), { recursive: true, force: true });
    }
    return out;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface ServerHandle {
  readonly url: string;
  readonly publicKeyHex: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts `zeroroom serve` on 127.0.0.1 (port 0 unless given) and waits for its "listening" line. */
export async function startServer(webDir: string, extraArgs: string[] = [], port = 0): Promise<ServerHandle> {
  const keyDir = await mkdtemp(path.join(tmpdir(), 'zr-e2e-key-'));
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/zeroroom.js'),
      'serve',
      '--web',
      webDir,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--ice-server',
      'none',
      '--key-file',
      path.join(keyDir, 'server.key'),
      ...extraArgs,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ZEROROOM_QUIET: '' } },
  );
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<{ url: string; key: string }>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
      const key = /server public key ([0-9a-f]{64})/.exec(out)?.[1];
      if (url !== undefined && key !== undefined) resolve({ url, key });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`zeroroom serve exited with ${code}:\n${out}`)));
  });
  const { url, key } = await ready;
  return {
    url,
    publicKeyHex: key,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(keyDir, { recursive: true, force: true });
    },
  };
}

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const opts: LaunchOptions = { executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], headless: true };
  return chromium.launch(opts);
}

export async function newContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ permissions: ['camera', 'microphone'], viewport: { width: 900, height: 900 } });
}

const consoleLines: string[] = [];
const labels = new WeakMap<Page, string>();
const started = Date.now();

/**
 * Collects page errors and console errors so a test can assert the page stayed clean. Every console
 * line also goes to a log that `printLogsOnFailure` prints when a test fails (CI shows no browser).
 */
export function watchErrors(page: Page, label = 'page'): string[] {
  const errors: string[] = [];
  labels.set(page, label);
  const line = (kind: string, text: string): void => {
    consoleLines.push(`+${Date.now() - started}ms ${label} ${kind}: ${text}`);
  };
  page.on('pageerror', (e) => {
    errors.push(`pageerror: ${e.message}`);
    line('pageerror', e.message);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    line(m.type(), m.text());
  });
  page.on('close', () => line('closed', ''));
  return errors;
}

/**
 * Call in a `beforeEach`: when the test fails, print the pages' console lines, each page's member
 * list and status line, and the end of the server's output.
 */
export function printLogsOnFailure(
  ctx: { onTestFailed(fn: () => Promise<void> | void): void },
  pages: () => Record<string, Page | undefined>,
  server?: () => ServerHandle | undefined,
): void {
  ctx.onTestFailed(async () => {
    const report = ['--- browser console ---', ...consoleLines.slice(-300)];
    for (const [label, page] of Object.entries(pages())) {
      if (page !== undefined && !page.isClosed()) report.push(`--- ${label}: ${JSON.stringify(await shownOn(page))}`);
    }
    const out = server?.()?.output();
    if (out !== undefined) report.push('--- server output (end) ---', out.slice(-4000));
    console.log(report.join('\n'));
  });
}

/** First run or unlock, whichever the page shows, then wait for the home screen. */
export async function unlock(page: Page, password = PASSWORD): Promise<void> {
  const input = page.getByTestId('password-input');
  await input.fill(password);
  const confirm = page.getByTestId('password-confirm-input');
  if ((await confirm.count()) > 0) await confirm.fill(password);
  await page.getByTestId('unlock-button').click();
  await page.getByTestId('nav-home').waitFor();
}

export async function openApp(page: Page, url: string, password = PASSWORD): Promise<void> {
  await page.goto(url);
  await unlock(page, password);
}

export async function createRoom(page: Page, roomName: string, displayName: string): Promise<void> {
  await page.getByTestId('display-name-input').fill(displayName);
  await page.getByTestId('room-name-input').fill(roomName);
  await page.getByTestId('create-room').click();
  await page.getByTestId('room-name').waitFor();
}

export async function sendMessage(page: Page, text: string): Promise<void> {
  await page.getByTestId('message-input').fill(text);
  await page.getByTestId('send-button').click();
}

/** Texts of all messages in the list, in order. */
export async function messageTexts(page: Page): Promise<string[]> {
  return page.getByTestId('message-text').allTextContents();
}

/** Points the app at another signaling server (Settings), e.g. a recording proxy. */
export async function setSignalingUrl(page: Page, url: string): Promise<void> {
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('signaling-url-input').fill(url);
  await page.getByTestId('save-settings').click();
  await page.getByText('Saved.').waitFor();
  await page.getByTestId('nav-home').click();
}

export async function setRelayOnly(page: Page): Promise<void> {
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('relay-only-input').check();
  await page.getByTestId('save-settings').click();
  await page.getByText('Saved.').waitFor();
  await page.getByTestId('nav-home').click();
}

/** Owner: a fresh one-time invite; returns its link once the panel shows it. */
export async function newInvite(page: Page): Promise<string> {
  const link = page.getByTestId('invite-link');
  const before = (await link.count()) > 0 ? await link.textContent() : null;
  await page.getByTestId('new-invite').click();
  await page.waitForFunction((prev) => {
    const el = document.querySelector('[data-testid="invite-link"]');
    return el !== null && el.textContent !== '' && el.textContent !== prev;
  }, before);
  return (await link.textContent()) ?? '';
}

/** New device: open the invite link, choose a password, choose a name, join; waits for the room view. */
export async function joinByLink(page: Page, invite: string, name: string): Promise<void> {
  await page.goto(invite);
  await unlock(page);
  await page.getByTestId('display-name-input').fill(name);
  await page.getByTestId('join-button').click();
  await page.getByTestId('room-name').waitFor();
}

/** Waits until the page lists `n` members. */
export async function waitMembers(page: Page, n: number): Promise<void> {
  await explained(
    page,
    `${n} members`,
    page.waitForFunction((count) => document.querySelectorAll('[data-testid="member"]').length === count, n, { timeout: 30_000 }),
  );
}

/** Waits until a message with exactly this text is in the list. */
export async function waitMessage(page: Page, text: string): Promise<void> {
  await explained(
    page,
    `message ${JSON.stringify(text)}`,
    page.getByTestId('message-text').filter({ hasText: text }).first().waitFor({ timeout: 30_000 }),
  );
}

/** What a room page shows, for failure reports: members, status line, system notes. */
function shownOn(page: Page): Promise<unknown> {
  return page
    .evaluate(() => ({
      members: [...document.querySelectorAll('[data-testid="member"]')].map((el) => el.textContent),
      status: document.querySelector('[data-testid="room-status"]')?.textContent ?? null,
      notes: [...document.querySelectorAll('[data-testid="system-text"]')].map((el) => el.textContent),
    }))
    .catch((err: unknown) => String(err));
}

/**
 * A wait that failed says which page, what it showed and its last console lines: the failure
 * summary is often all a CI log keeps.
 */
async function explained(page: Page, what: string, wait: Promise<unknown>): Promise<void> {
  try {
    await wait;
  } catch (e) {
    const label = labels.get(page) ?? 'page';
    const shown = page.isClosed() ? 'closed' : await shownOn(page);
    const tail = consoleLines.filter((l) => l.includes(` ${label} `)).slice(-15);
    throw new Error(
      `${label} never showed ${what}: ${String(e instanceof Error ? e.message.split('\n')[0] : e)}\nshown: ${JSON.stringify(shown)}\n${tail.join('\n')}`,
    );
  }
}

/** Opens a room from Home; a reload already returns to the room the page was in, which is fine too. */
export async function enterRoom(page: Page, roomName: string): Promise<void> {
  const title = page.getByTestId('room-name');
  if ((await title.count()) > 0 && (await title.textContent()) === roomName) return;
  if ((await page.getByTestId('room-list').count()) === 0) await page.getByTestId('nav-home').click();
  await page.getByTestId('room-entry').filter({ hasText: roomName }).click();
  await title.filter({ hasText: roomName }).waitFor();
}

/**
 * A room over TURN only: the owner (Olivia) creates it with relay-only set; the member (Ann) sets
 * relay-only before joining (first run, then Settings, then the link). Waits for both to list two.
 */
export async function relayOnlyRoom(owner: Page, member: Page, appUrl: string, roomName: string): Promise<void> {
  await openApp(owner, appUrl);
  await setRelayOnly(owner);
  await createRoom(owner, roomName, 'Olivia');
  const invite = await newInvite(owner);
  await member.goto(appUrl);
  await unlock(member);
  await setRelayOnly(member);
  await member.getByTestId('display-name-input').fill('Ann');
  await member.getByTestId('join-link-input').fill(invite);
  await member.getByTestId('join-button').click();
  await member.getByTestId('room-name').waitFor();
  await waitMembers(member, 2);
  await waitMembers(owner, 2);
}
