/**
 * ICE restart before a new peer connection (docs/PROTOCOL.md 4.6), in Chromium: owner and member
 * relay-only through a real coturn on 127.0.0.1. The coturn is killed and a new one started on the
 * same port; its allocations are gone, so ICE goes down on both sides and needs new relay
 * candidates. The link must come back by an ICE restart on the SAME RTCPeerConnection (the
 * connection badge's counts: one peer connection, one ICE restart, on both sides), and messages
 * sent during the outage must arrive exactly once on both sides.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { messageTexts, printLogsOnFailure, relayOnlyRoom, sendMessage, waitMessage, watchErrors } from './harness.ts';
import { startCoturn, startTurnWorld, type TurnWorld } from './services.ts';

let world: TurnWorld;
const pages: Record<string, Page | undefined> = {};

beforeAll(async () => {
  world = await startTurnWorld();
}, 180_000);

afterAll(async () => {
  await world?.close();
});

beforeEach((ctx) =>
  printLogsOnFailure(
    ctx,
    () => pages,
    () => world.server,
  ),
);

interface Party {
  readonly page: Page;
  readonly errors: string[];
  /** Link states in the order the runtime logged them. */
  readonly states: string[];
  /** Resolves when the link is up again after having been down (restarting or offline) since the call. */
  backUp(): Promise<void>;
}

async function page(label: string): Promise<Party> {
  const p = await world.newPage();
  pages[label] = p;
  const errors = watchErrors(p, label);
  // The runtimes log every link state ("... link ... restarting"); a short state is never missed here.
  const states: string[] = [];
  const waiters: Array<{ from: number; up: () => void }> = [];
  p.on('console', (m) => {
    const state = / link(?: to the owner| [0-9a-f]{8}) (\w+)$/.exec(m.text())?.[1];
    if (state === undefined) return;
    states.push(state);
    if (state !== 'relayed' && state !== 'direct') return;
    for (const w of waiters.splice(0)) {
      if (states.slice(w.from, -1).some((x) => x === 'restarting' || x === 'offline')) w.up();
      else waiters.push(w);
    }
  });
  const backUp = (): Promise<void> => new Promise<void>((up) => waiters.push({ from: states.length, up }));
  return { page: p, errors, states, backUp };
}

async function bounded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The connection badge's state and counts (peer connections made, ICE restarts done on the link). */
async function badge(p: Page): Promise<{ state: string | null; peerConnections: string | null; iceRestarts: string | null }> {
  const b = p.getByTestId('connection-status');
  return {
    state: await b.getAttribute('data-state'),
    peerConnections: await b.getAttribute('data-peer-connections'),
    iceRestarts: await b.getAttribute('data-ice-restarts'),
  };
}

/** Waits (bounded) until the badge shows `state` with these counts; a timeout names what it showed. */
async function waitBadge(p: Page, want: { state: string; peerConnections: string; iceRestarts: string }, timeout: number): Promise<void> {
  try {
    await p.waitForFunction(
      (w) => {
        const b = document.querySelector('[data-testid="connection-status"]');
        return (
          b !== null &&
          b.getAttribute('data-state') === w.state &&
          b.getAttribute('data-peer-connections') === w.peerConnections &&
          b.getAttribute('data-ice-restarts') === w.iceRestarts
        );
      },
      want,
      { timeout },
    );
  } catch (e) {
    throw new Error(`badge never showed ${JSON.stringify(want)}; it shows ${JSON.stringify(await badge(p))}`, { cause: e });
  }
}

const count = (texts: string[], t: string): number => texts.filter((x) => x === t).length;

describe('ICE restart through a restarted coturn', () => {
  it('the link comes back on the same peer connection and messages sent during the outage arrive exactly once', async () => {
    const o = await page('owner');
    const m = await page('member');
    const owner = o.page;
    const member = m.page;
    await relayOnlyRoom(owner, member, world.server.url, 'Restart room');
    await sendMessage(member, 'before the outage (member)');
    await waitMessage(owner, 'before the outage (member)');
    await sendMessage(owner, 'before the outage (owner)');
    await waitMessage(member, 'before the outage (owner)');
    for (const p of [owner, member]) await waitBadge(p, { state: 'relayed', peerConnections: '1', iceRestarts: '0' }, 30_000);

    // Outage: the only path between the browsers (the relay) disappears with its allocations.
    const port = world.coturn?.port ?? 0;
    const memberBackUp = m.backUp();
    await world.coturn?.stop();
    world.coturn = undefined;
    const during = [
      'during the outage 1 (member)',
      'during the outage 2 (member)',
      'during the outage 1 (owner)',
      'during the outage 2 (owner)',
    ];
    await sendMessage(member, during[0]!);
    await sendMessage(owner, during[2]!);
    await sendMessage(member, during[1]!);
    await sendMessage(owner, during[3]!);
    world.coturn = await startCoturn({ port });

    // The member drives the repair (a restart, or the fallback: a new peer connection).
    await bounded('the member link up again after the outage', 90_000, memberBackUp);
    // Both sides saw ICE go down and come back by a restart: same link, one peer connection.
    for (const p of [owner, member]) await waitBadge(p, { state: 'relayed', peerConnections: '1', iceRestarts: '1' }, 30_000);
    expect(o.states).toContain('restarting');
    expect(m.states).toContain('restarting');
    expect(o.states).not.toContain('offline');
    expect(m.states).not.toContain('offline');

    for (const t of during) {
      await waitMessage(owner, t);
      await waitMessage(member, t);
    }
    // Nothing still pending in the member's outbox, and every message exactly once on both sides.
    await member.waitForFunction(() => document.querySelectorAll('.message.pending').length === 0, undefined, { timeout: 30_000 });
    for (const p of [owner, member]) {
      const texts = await messageTexts(p);
      for (const t of [...during, 'before the outage (member)', 'before the outage (owner)'])
        expect(count(texts, t), `${t} on ${p === owner ? 'owner' : 'member'}`).toBe(1);
    }

    // The restarted link carries new messages both ways.
    await sendMessage(member, 'after the restart (member)');
    await waitMessage(owner, 'after the restart (member)');
    await sendMessage(owner, 'after the restart (owner)');
    await waitMessage(member, 'after the restart (owner)');
    for (const p of [owner, member]) expect(await badge(p)).toEqual({ state: 'relayed', peerConnections: '1', iceRestarts: '1' });
    expect(o.errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
    expect(m.errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
  }, 240_000);
});
