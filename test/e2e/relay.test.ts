/**
 * Relay-only through a real coturn on 127.0.0.1: the server hands out TURN REST credentials in
 * /config.json, both browsers use iceTransportPolicy 'relay' (Settings: relay only), the room
 * works and the connection badges say relayed.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildApp,
  createRoom,
  launchChromium,
  newContext,
  newInvite,
  openApp,
  sendMessage,
  setRelayOnly,
  startServer,
  unlock,
  waitMembers,
  waitMessage,
  type ServerHandle,
} from './harness.ts';
import { startCoturn, type Coturn } from './services.ts';

let coturn: Coturn;
let server: ServerHandle;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  const webDir = await buildApp();
  coturn = await startCoturn();
  server = await startServer(webDir, ['--turn-url', `turn:127.0.0.1:${coturn.port}?transport=udp`, '--turn-secret', coturn.secret]);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
  await coturn?.stop();
});

async function page(): Promise<Page> {
  const context = await newContext(browser);
  contexts.push(context);
  return context.newPage();
}

describe('relay-only through coturn', () => {
  it('/config.json carries short-lived TURN credentials for the coturn', async () => {
    const config = (await (await fetch(`${server.url}/config.json`)).json()) as { iceServers: Array<{ urls: string[] | string; username?: string; credential?: string }> };
    const turn = config.iceServers.find((s) => s.username !== undefined);
    expect(turn?.credential).toBeTruthy();
    expect(JSON.stringify(turn?.urls)).toContain(`127.0.0.1:${coturn.port}`);
  });

  it('owner and member connect over TURN only, chat, and both badges say relayed', async () => {
    const owner = await page();
    const member = await page();
    await openApp(owner, server.url);
    await setRelayOnly(owner);
    await createRoom(owner, 'Relayed room', 'Olivia');
    const invite = await newInvite(owner);

    // The member sets relay-only before joining: first run, then Settings, then the link.
    await member.goto(server.url);
    await unlock(member);
    await setRelayOnly(member);
    await member.getByTestId('display-name-input').fill('Ann');
    await member.getByTestId('join-link-input').fill(invite);
    await member.getByTestId('join-button').click();
    await member.getByTestId('room-name').waitFor();
    await waitMembers(member, 2);
    await waitMembers(owner, 2);

    await sendMessage(member, 'through the relay');
    await waitMessage(owner, 'through the relay');
    await sendMessage(owner, 'and back through the relay');
    await waitMessage(member, 'and back through the relay');

    for (const p of [owner, member]) {
      await expect.poll(() => p.getByTestId('connection-status').getAttribute('data-state')).toBe('relayed');
      expect(await p.getByTestId('connection-status').textContent()).toBe('relayed via TURN');
    }
  }, 90_000);
});
