/**
 * Files between a browser and the headless client in one room (issue #11, "Done when"): the owner is
 * a Chromium page, the member is `zeroroom join --download-dir`. The page sends a file (the CLI writes
 * it to its download directory), the CLI sends one back (the page accepts it by a click and saves it);
 * both arrive with the SHA-256 they were offered with.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { Client, isEvent, type Ev } from '../cli-room/clients.ts';
import {
  buildApp,
  createRoom,
  launchChromium,
  newInvite,
  openApp,
  printLogsOnFailure,
  startServer,
  waitMembers,
  watchErrors,
  type ServerHandle,
} from './harness.ts';

let server: ServerHandle;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const clients: Client[] = [];
const pages: Record<string, Page | undefined> = {};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-e2e-files-cli-'));
  server = await startServer(await buildApp());
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await Promise.all(clients.map((c) => c.kill()));
  await browser?.close();
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

beforeEach((ctx) =>
  printLogsOnFailure(
    ctx,
    () => pages,
    () => server,
  ),
);

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const fileEvent = (name: string, file: string) => (e: Ev) => e.event === name && e.file === file;

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed + 11) & 0xff;
  return b;
}

it('a page and a CLI member exchange files both ways; the hashes match', async () => {
  const context = await browser.newContext({
    permissions: ['camera', 'microphone'],
    viewport: { width: 900, height: 900 },
    acceptDownloads: true,
  });
  contexts.push(context);
  const owner = await context.newPage();
  const errors = watchErrors(owner, 'owner');
  pages['owner'] = owner;
  await openApp(owner, server.url);
  await createRoom(owner, 'Files and CLI', 'Olivia');
  const invite = await newInvite(owner);
  const dl = path.join(tmp, 'downloads');
  const cli = new Client('cli', ['join', invite, '--loopback', '--name', 'cat', '--state', path.join(tmp, 'cat'), '--download-dir', dl], {
    ZEROROOM_PASSWORD: 'files cli e2e password',
  });
  clients.push(cli);
  await cli.waitFor(isEvent('joined'), 'cli joined', 60_000);
  await waitMembers(owner, 2);

  // Page -> CLI: 5 chunks and a bit.
  const toCli = bytes(5 * 65_536 + 321, 7);
  await owner.getByTestId('file-input').setInputFiles([{ name: 'from-page.bin', mimeType: 'application/octet-stream', buffer: toCli }]);
  const offered = await cli.waitFor((e) => e.event === 'file-offered' && e.name === 'from-page.bin', 'cli offered', 60_000);
  const got = await cli.waitFor(fileEvent('file-received', String(offered.file)), 'cli received', 60_000);
  expect(sha(await readFile(String(got.path)))).toBe(sha(toCli));

  // CLI -> page.
  const fromCli = bytes(3 * 65_536 + 5, 13);
  const src = path.join(tmp, 'from-cli.bin');
  await writeFile(src, fromCli);
  await cli.request({ cmd: 'send-file', path: src }, isEvent('file-sent'), 'file-sent', 60_000);
  const card = owner.getByTestId('file').filter({ has: owner.getByTestId('file-name').filter({ hasText: 'from-cli.bin' }) });
  await card.and(owner.locator('[data-state="offered"]')).waitFor({ timeout: 60_000 });
  await card.getByTestId('file-accept').click();
  await card.and(owner.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
  const [download] = await Promise.all([owner.waitForEvent('download'), card.getByTestId('file-save').click()]);
  expect(download.suggestedFilename()).toBe('from-cli.bin');
  expect(sha(await readFile(await download.path()))).toBe(sha(fromCli));
  expect(errors).toEqual([]);
}, 240_000);
