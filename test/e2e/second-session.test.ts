/**
 * Issue 14 item 4 (the detection part) with the owner in the browser: a `zeroroom join --state`
 * member is online, and a copy of its state directory (a stolen device) connects. The owner's room
 * shows that the member connected from a second place (docs/PROTOCOL.md 5.14, `second-session`).
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client, isEvent } from '../cli-room/clients.ts';
import {
  buildApp,
  createRoom,
  launchChromium,
  newContext,
  newInvite,
  openApp,
  printLogsOnFailure,
  startServer,
  waitMembers,
  watchErrors,
  type ServerHandle,
} from './harness.ts';

const ENV = { ZEROROOM_PASSWORD: 'second session e2e password' };

let server: ServerHandle;
let browser: Browser;
let context: BrowserContext;
let owner: Page;
let tmp: string;
const clients: Client[] = [];
const pageErrors: string[][] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-e2e-second-session-'));
  const webDir = await buildApp();
  server = await startServer(webDir);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.kill()));
  await context?.close();
  await browser?.close();
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('the owner in the browser', () => {
  beforeEach((ctx) =>
    printLogsOnFailure(
      ctx,
      () => ({ owner }),
      () => server,
    ),
  );

  it('is told when a copy of a member key connects while that member is online', async () => {
    context = await newContext(browser);
    owner = await context.newPage();
    pageErrors.push(watchErrors(owner, 'owner'));
    await openApp(owner, server.url);
    await createRoom(owner, 'Watched room', 'Olivia');
    const invite = await newInvite(owner);
    const memberDir = path.join(tmp, 'member');
    const member = new Client('member', ['join', invite, '--name', 'Carl', '--state', memberDir], ENV);
    clients.push(member);
    await member.waitFor(isEvent('joined'), 'joined', 60_000);
    await waitMembers(owner, 2);
    // Carl's link is open at the owner (his badge says so).
    await owner.locator('[data-testid="connection-status"][data-state="direct"]').first().waitFor({ timeout: 30_000 });
    expect(await owner.getByTestId('system-text').filter({ hasText: 'second place' }).count()).toBe(0);

    const copyDir = path.join(tmp, 'stolen');
    await cp(memberDir, copyDir, { recursive: true });
    const stolen = new Client('stolen', ['join', '--state', copyDir, '--name', 'ignored'], ENV);
    clients.push(stolen);
    await owner.getByTestId('system-text').filter({ hasText: 'Carl connected from a second place' }).first().waitFor({ timeout: 60_000 });
  }, 180_000);

  it('left no page errors', () => {
    expect(pageErrors.flat().filter((e) => !e.includes('Permissions-Policy'))).toEqual([]);
  });
});
