/**
 * Issue 15 in the browser (docs/PROTOCOL.md 5.16): a room hosted by `zeroroom host --state`, two
 * members in Chromium and one `zeroroom join`. The owner quits: the pages say "owner away — talking
 * directly" and show a direct connection to each other member; the members chat; one page reloads
 * meanwhile; the owner comes back: all four show the same history, in the same order, each message once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S } from '../../web/strings.ts';
import { Client, isEvent, type Ev } from '../cli-room/clients.ts';
import {
  buildApp,
  enterRoom,
  joinByLink,
  launchChromium,
  messageTexts,
  newContext,
  sendMessage,
  startServer,
  unlock,
  waitMembers,
  waitMessage,
  type ServerHandle,
} from './harness.ts';

const ENV = { ZEROROOM_PASSWORD: 'away e2e password' };

let server: ServerHandle;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const clients: Client[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-e2e-away-'));
  const webDir = await buildApp();
  server = await startServer(webDir);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await Promise.all(clients.map((c) => c.kill()));
  await browser?.close();
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

function cli(label: string, args: string[]): Client {
  const c = new Client(label, args, ENV);
  clients.push(c);
  return c;
}

async function page(): Promise<Page> {
  const context = await newContext(browser);
  contexts.push(context);
  return context.newPage();
}

const status = (p: Page) => p.getByTestId('room-status').getAttribute('data-state');
/** Our connection badge to the member `id` on this page. */
const badge = (p: Page, id: string) => p.locator(`[data-testid="connection-status"][data-member-id="${id}"]`).getAttribute('data-state');
const ordered = (text: string) => (e: Ev) => e.event === 'message' && e.text === text;

describe('the room keeps talking while the owner is away (browser)', () => {
  it('owner quits, two pages and a CLI member chat directly, a page reloads, the owner returns: one history everywhere', async () => {
    const ws = server.url.replace(/^http/, 'ws');
    const hostDir = path.join(tmp, 'host');
    const hostArgs = ['--server', ws, '--server-key', server.publicKeyHex, '--app-url', server.url];
    const host = cli('host', ['host', ...hostArgs, '--loopback', '--name', 'owner', '--room-name', 'Away room', '--state', hostDir]);
    await host.waitFor(isEvent('ready'), 'host ready');
    const invite = async (): Promise<string> => String((await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite')).url);

    const ann = await page();
    await joinByLink(ann, await invite(), 'ann');
    const bob = await page();
    await joinByLink(bob, await invite(), 'bob');
    const cat = cli('cat', ['join', await invite(), '--loopback', '--name', 'cat', '--state', path.join(tmp, 'cat')]);
    const joined = await cat.waitFor(isEvent('ready'), 'cat ready');
    await cat.waitFor(isEvent('joined'), 'cat joined', 60_000);
    for (const p of [ann, bob]) await waitMembers(p, 4);
    host.send({ cmd: 'send', text: 'before' });
    for (const p of [ann, bob]) await waitMessage(p, 'before');
    await cat.waitFor(ordered('before'), 'cat before');
    const ids = await host.request({ cmd: 'members' }, isEvent('members'), 'members');
    const idOf = (name: string) => (ids.members as { id: string; name: string }[]).find((m) => m.name === name)!.id;

    // The owner quits.
    const mark = cat.events.length;
    expect(await host.quit()).toBe(0);
    for (const p of [ann, bob]) await expect.poll(() => status(p), { timeout: 30_000 }).toBe('owner-away');
    expect(await ann.getByTestId('room-status').textContent()).toBe(S.state['owner-away'].label);
    await expect.poll(() => badge(ann, idOf('bob')), { timeout: 60_000 }).toBe('direct');
    await expect.poll(() => badge(ann, idOf('cat')), { timeout: 60_000 }).toBe('direct');
    await expect.poll(() => badge(bob, idOf('ann')), { timeout: 60_000 }).toBe('direct');
    await cat.waitFor(isEvent('away', { active: true }), 'cat away', 30_000, mark);

    await sendMessage(ann, 'ann while away');
    await waitMessage(bob, 'ann while away');
    await cat.waitFor((e) => e.event === 'away-message' && e.text === 'ann while away', 'cat reads ann directly', 30_000);
    cat.send({ cmd: 'send', text: 'cat while away' });
    for (const p of [ann, bob]) await waitMessage(p, 'cat while away');

    // bob reloads: back in the room, still talking directly, the messages shown again.
    await bob.reload();
    await unlock(bob);
    await enterRoom(bob, 'Away room');
    await expect.poll(() => status(bob), { timeout: 30_000 }).toBe('owner-away');
    await waitMessage(bob, 'ann while away');
    await waitMessage(bob, 'cat while away');
    await expect.poll(() => badge(bob, idOf('ann')), { timeout: 60_000 }).toBe('direct');
    await sendMessage(bob, 'bob after reload');
    await waitMessage(ann, 'bob after reload');
    await cat.waitFor((e) => e.event === 'away-message' && e.text === 'bob after reload', 'cat reads bob', 30_000);

    // The owner returns.
    const back = cli('host-back', ['host', '--state', hostDir, '--loopback']);
    await back.waitFor(isEvent('ready'), 'host back');
    const said = ['ann while away', 'cat while away', 'bob after reload'];
    for (const t of said) await back.waitFor(ordered(t), `the owner orders "${t}"`, 60_000);
    for (const t of said) await cat.waitFor(ordered(t), `cat has "${t}" in the room order`, 60_000);
    const owner = [...host.messages(), ...back.messages()].sort((a, b) => Number(a.index) - Number(b.index)).map((e) => String(e.text));
    expect([...owner].sort()).toEqual(['before', ...said].sort());
    expect(new Set(owner).size).toBe(owner.length);
    for (const p of [ann, bob]) {
      await expect.poll(() => status(p), { timeout: 60_000 }).toBe('member');
      await expect.poll(() => messageTexts(p), { timeout: 60_000 }).toEqual(owner);
    }
    expect(cat.messages().map((e) => String(e.text))).toEqual(owner);
    expect(joined.member).toBe(idOf('cat'));
  }, 300_000);
});
