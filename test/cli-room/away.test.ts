// Issue 15 with the headless client over real WebRTC on 127.0.0.1 (docs/PROTOCOL.md 5.16): the
// owner quits, its three members talk directly (mesh links through the same signaling server), one
// of them restarts meanwhile, the owner comes back: every history is the same, each message once.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, type Client, isEvent, type Ev } from './clients.ts';

const room = cliRoom('away', 'away test password');
const client = room.client;

const says = (text: string) => (e: Ev) => e.event === 'away-message' && e.text === text;
const ordered = (text: string) => (e: Ev) => e.event === 'message' && e.text === text;
/** Both mesh peers ready, counted from event `from` on. */
async function meshReady(c: Client, from: number): Promise<void> {
  await c.waitFor(isEvent('away', { active: true }), `${c.label} away`, 30_000, from);
  const ready = new Set<unknown>();
  for (;;) {
    const e = await c.waitFor(
      (x) => x.event === 'mesh-peer' && x.status === 'ready' && !ready.has(x.member),
      `${c.label} mesh peers`,
      60_000,
      from,
    );
    ready.add(e.member);
    if (ready.size === 2) return;
  }
}
/** `index:text` of every ordered message, across the processes of one party. */
const history = (...processes: Client[]): string[] =>
  [...new Map(processes.flatMap((p) => p.messages()).map((e) => [Number(e.index), `${String(e.index)}:${String(e.text)}`])).entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, v]) => v);

describe('zeroroom join: the room keeps talking while the owner is away', () => {
  it('owner quits, members chat directly, one restarts, the owner returns: four identical histories, each message once', async () => {
    const hostDir = path.join(room.tmp, 'host');
    const host = client('host', ['host', '--server', room.serve.wsUrl, '--name', 'owner', '--state', hostDir]);
    await host.waitFor(isEvent('ready'), 'host ready');
    const members: Client[] = [];
    const dirs: string[] = [];
    for (const name of ['m0', 'm1', 'm2']) {
      const invite = await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite');
      dirs.push(path.join(room.tmp, name));
      const m = client(name, ['join', String(invite.url), '--name', name, '--state', dirs.at(-1)!]);
      await m.waitFor(isEvent('joined'), `${name} joined`, 60_000);
      members.push(m);
    }
    host.send({ cmd: 'send', text: 'before' });
    for (const m of members) await m.waitFor(ordered('before'), `${m.label} before`, 30_000);
    const [m0, m1, m2] = members as [Client, Client, Client];

    // The owner quits; after AWAY_AFTER_MS each member talks to the two others directly.
    const marks = members.map((m) => m.events.length);
    expect(await host.quit()).toBe(0);
    await Promise.all(members.map((m, i) => meshReady(m, marks[i]!)));
    const first = ['m0 away 1', 'm1 away 1', 'm2 away 1'];
    members.forEach((m, i) => m.send({ cmd: 'send', text: first[i] }));
    for (const m of members) for (const t of first) await m.waitFor(says(t), `${m.label} reads "${t}" directly`, 30_000);

    // m2 restarts: its peers hand it everything again.
    expect(await m2.quit()).toBe(0);
    const m2b = client('m2b', ['join', '--state', dirs[2]!, '--name', 'ignored']);
    await meshReady(m2b, 0);
    m0.send({ cmd: 'send', text: 'm0 away 2' });
    const said = [...first, 'm0 away 2'];
    for (const t of said) await m2b.waitFor(says(t), `m2b reads "${t}"`, 30_000);
    m2b.send({ cmd: 'send', text: 'm2 after its restart' });
    said.push('m2 after its restart');
    for (const m of [m0, m1]) await m.waitFor(says('m2 after its restart'), `${m.label} reads m2 again`, 30_000);

    // The owner returns.
    const back = client('host-back', ['host', '--state', hostDir]);
    await back.waitFor(isEvent('ready'), 'host back');
    for (const m of [m0, m1, m2b]) {
      await m.waitFor(isEvent('away', { active: false }), `${m.label} sees the owner back`, 120_000);
      for (const t of said) await m.waitFor(ordered(t), `${m.label} has "${t}" in the room order`, 60_000);
    }
    const owner = history(host, back);
    expect(owner.map((h) => h.replace(/^\d+:/, '')).sort()).toEqual(['before', ...said].sort());
    expect(history(m0), 'm0').toEqual(owner);
    expect(history(m1), 'm1').toEqual(owner);
    expect(history(m2, m2b), 'm2').toEqual(owner);
    // Each provisional message was settled by its ordered copy.
    for (const m of [m0, m1]) {
      const settled = m.events.filter(isEvent('away-settled'));
      expect(settled.length).toBeGreaterThan(0);
      expect(settled.every((e) => typeof e.index === 'number')).toBe(true);
    }
  }, 240_000);
});
