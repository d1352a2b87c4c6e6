/**
 * README's flow exactly as a new user meets it: the page opened as http://localhost:PORT (not
 * 127.0.0.1), so the invite link, /config.json's signaling URL and the CSP's connect-src all have
 * to agree on the host name the browser used. Two browser contexts: create, invite, join, chat.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  buildApp,
  createRoom,
  joinByLink,
  launchChromium,
  newContext,
  newInvite,
  openApp,
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

beforeAll(async () => {
  const webDir = await buildApp();
  server = await startServer(webDir);
  // The harness maps every host name to NOTFOUND except 127.0.0.1; let localhost resolve too.
  browser = await launchChromium(['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost']);
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
});

it('two browsers on http://localhost create a room, join by invite and chat', async () => {
  const appUrl = server.url.replace('127.0.0.1', 'localhost');
  const ownerContext = await newContext(browser);
  const memberContext = await newContext(browser);
  contexts.push(ownerContext, memberContext);
  const owner = await ownerContext.newPage();
  const member = await memberContext.newPage();
  const errors = [watchErrors(owner), watchErrors(member)];

  await openApp(owner, appUrl);
  await createRoom(owner, 'Localhost room', 'Olivia');
  const invite = await newInvite(owner);
  expect(new URL(invite).origin).toBe(new URL(appUrl).origin);

  await joinByLink(member, invite, 'Max');
  await waitMembers(owner, 2);
  await waitMembers(member, 2);
  await sendMessage(member, 'hello from localhost');
  await waitMessage(owner, 'hello from localhost');
  await sendMessage(owner, 'and back');
  await waitMessage(member, 'and back');
  expect(errors.flat().filter((e) => /Content Security Policy|Refused to connect/i.test(e))).toEqual([]);
}, 120_000);
