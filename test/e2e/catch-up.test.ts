/**
 * Issue 14 item 1 in the browser (the CLI case is test/cli-room/catch-up.test.ts): a member whose
 * page is closed while the room rotates three times (Settings: a new key every 3 messages) reads
 * every message it missed, exactly once, when its page is opened again, with nothing reported as
 * unreadable and the same safety code as the owner (docs/PROTOCOL.md 5.10, 5.15).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
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
  waitMembers,
  waitMessage,
  watchErrors,
  type ServerHandle,
} from './harness.ts';

let server: ServerHandle;
let browser: Browser;
const contexts: BrowserContext[] = [];
let owner: Page;
let ann: Page;
const pageErrors: string[][] = [];

async function device(label: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext(browser);
  contexts.push(context);
  const page = await context.newPage();
  pageErrors.push(watchErrors(page, label));
  return { context, page };
}

async function epochOf(page: Page): Promise<number> {
  return Number(await page.getByTestId('epoch').textContent());
}

beforeAll(async () => {
  const webDir = await buildApp();
  server = await startServer(webDir);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
});

describe('a member page closed across rotations', () => {
  beforeEach((ctx) =>
    printLogsOnFailure(
      ctx,
      () => ({ owner, ann }),
      () => server,
    ),
  );

  it('reads every message it missed, exactly once, after three rotations', async () => {
    ({ page: owner } = await device('owner'));
    const { context: annContext, page: first } = await device('ann');
    ann = first;
    await openApp(owner, server.url);
    // A small rotation policy: a new key every 3 messages (Settings, applied to rooms this device owns).
    await owner.getByTestId('nav-settings').click();
    await owner.getByTestId('rotate-messages-input').fill('3');
    await owner.getByTestId('save-settings').click();
    await owner.getByText('Saved.').waitFor();
    await owner.getByTestId('nav-home').click();
    await createRoom(owner, 'Away room', 'Olivia');
    await joinByLink(ann, await newInvite(owner), 'Ann');
    await waitMembers(ann, 2);
    await waitMembers(owner, 2);
    await sendMessage(owner, 'before');
    await waitMessage(ann, 'before');
    await ann.close();

    const epochBefore = await epochOf(owner);
    const missed = Array.from({ length: 10 }, (_, i) => `missed ${i}`);
    for (const text of missed) {
      await sendMessage(owner, text);
      await waitMessage(owner, text);
    }
    await expect.poll(() => epochOf(owner)).toBeGreaterThanOrEqual(epochBefore + 3);

    ann = await annContext.newPage();
    pageErrors.push(watchErrors(ann, 'ann'));
    await openApp(ann, server.url);
    await enterRoom(ann, 'Away room');
    await waitMessage(ann, missed[9]!);
    // Flush: one more message behind the catch-up, then count.
    await sendMessage(owner, 'after');
    await waitMessage(ann, 'after');
    expect(await messageTexts(ann)).toEqual(['before', ...missed, 'after']);
    expect(await messageTexts(owner)).toEqual(['before', ...missed, 'after']);
    const notes = await ann.getByTestId('system-text').allTextContents();
    expect(notes.filter((n) => /cannot be shown|held back|cannot be checked|did not tell you/.test(n))).toEqual([]);
    await expect.poll(() => ann.getByTestId('epoch').textContent()).toBe(await owner.getByTestId('epoch').textContent());
    await expect.poll(() => ann.getByTestId('safety-code').textContent()).toBe(await owner.getByTestId('safety-code').textContent());
  }, 180_000);

  it('left no page errors', () => {
    expect(pageErrors.flat().filter((e) => !e.includes('Permissions-Policy'))).toEqual([]);
  });
});
