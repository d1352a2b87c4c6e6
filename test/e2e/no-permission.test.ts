/**
 * Two pages without any media permission on 127.0.0.1 (issue #10): Chromium hides host addresses
 * behind mDNS names and ignores loopback for them, and on loopback those names do not resolve, so
 * ICE finds no pair. Before the fallback such an owner and member stayed "joining" forever; now the
 * link comes up through the signaling server (docs/PROTOCOL.md 4.8) and the room works.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  buildApp,
  createRoom,
  joinByLink,
  launchChromium,
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
const pages: Record<string, Page | undefined> = {};

beforeAll(async () => {
  server = await startServer(await buildApp());
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
});

beforeEach((ctx) =>
  printLogsOnFailure(
    ctx,
    () => pages,
    () => server,
  ),
);

async function device(label: string): Promise<Page> {
  // No permissions: what a member who opened an invite link has.
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  watchErrors(page, label);
  pages[label] = page;
  return page;
}

it('an owner and a member without camera permission connect through the fallback and chat', async () => {
  const owner = await device('owner');
  const member = await device('member');
  await openApp(owner, server.url);
  await createRoom(owner, 'No permission', 'Olivia');
  await joinByLink(member, await newInvite(owner), 'Max');
  await waitMembers(owner, 2);
  await waitMembers(member, 2);
  for (const p of [owner, member]) {
    await expect.poll(() => p.getByTestId('connection-status').first().getAttribute('data-state'), { timeout: 60_000 }).toBe('fallback');
  }
  await sendMessage(member, 'through the server, still encrypted');
  await waitMessage(owner, 'through the server, still encrypted');
  await sendMessage(owner, 'and back');
  await waitMessage(member, 'and back');
}, 180_000);
