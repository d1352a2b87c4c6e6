/**
 * Relay-only through a real coturn on 127.0.0.1: the server hands out TURN REST credentials in
 * /config.json, both browsers use iceTransportPolicy 'relay' (Settings: relay only), the room
 * works and the connection badges say relayed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayOnlyRoom, sendMessage, waitMessage } from './harness.ts';
import { startTurnWorld, type TurnWorld } from './services.ts';

let world: TurnWorld;

beforeAll(async () => {
  world = await startTurnWorld();
}, 180_000);

afterAll(async () => {
  await world?.close();
});

describe('relay-only through coturn', () => {
  it('/config.json carries short-lived TURN credentials for the coturn', async () => {
    const config = (await (await fetch(`${world.server.url}/config.json`)).json()) as {
      iceServers: Array<{ urls: string[] | string; username?: string; credential?: string }>;
    };
    const turn = config.iceServers.find((s) => s.username !== undefined);
    expect(turn?.credential).toBeTruthy();
    expect(JSON.stringify(turn?.urls)).toContain(`127.0.0.1:${world.coturn?.port}`);
  });

  it('owner and member connect over TURN only, chat, and both badges say relayed', async () => {
    const owner = await world.newPage();
    const member = await world.newPage();
    await relayOnlyRoom(owner, member, world.server.url, 'Relayed room');

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
