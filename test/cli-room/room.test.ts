// Integration through a real `zeroroom serve` (issue 5, item 10): one `zeroroom host` and five
// `zeroroom join` processes with real WebRTC on 127.0.0.1. They exchange messages; the host rotates
// by count and by timer and kicks one member, who receives nothing afterwards; a host restarted from
// --state brings its members back without new invites (and a member restarted from its --state too).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_LINE } from '../../signaling/json-lines.ts';
import { cliRoom, type Client, isEvent, type Ev } from './clients.ts';

const JOINERS = 5;
const room = cliRoom('room', 'integration test password');
const client = room.client;

const isMessage = (text: string) => (e: Ev) => e.event === 'message' && e.text === text;

async function everyoneGets(receivers: readonly Client[], text: string): Promise<void> {
  await Promise.all(receivers.map((c) => c.waitFor(isMessage(text), `message "${text}"`)));
}

describe('zeroroom host + join through zeroroom serve', () => {
  let host: Client;
  let hostDir: string;
  const members: Client[] = [];
  const memberIds: string[] = [];
  const memberDirs: string[] = [];

  function startHost(): Client {
    return client('host', [
      'host',
      '--server',
      room.serve.wsUrl,
      '--name',
      'owner',
      '--state',
      hostDir,
      '--rotate-every',
      '5',
      '--rotate-after',
      '3',
    ]);
  }

  it('five joiners join through invites and everyone reads everyone', async () => {
    hostDir = path.join(room.tmp, 'host');
    host = startHost();
    const ready = await host.waitFor(isEvent('ready'), 'host ready');
    expect(ready.restored).toBe(false);
    // Bad stdin lines get error events; the host goes on.
    expect((await host.request('{"cmd":"send", oops', isEvent('error'), 'malformed line error')).code).toBe('cli.command');
    expect((await host.request('x'.repeat(MAX_LINE + 10), isEvent('error'), 'oversized line error')).code).toBe('cli.line-too-long');
    expect((await host.request({ cmd: 'kick', member: '0'.repeat(32) }, isEvent('error'), 'kick of a stranger')).code).toBe(
      'room.not-member',
    );

    const urls: string[] = [];
    for (let i = 0; i < JOINERS; i++) {
      const inv = await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite');
      expect(String(inv.url)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#join=/);
      urls.push(String(inv.url));
    }
    for (let i = 0; i < JOINERS; i++) {
      memberDirs.push(path.join(room.tmp, `m${i}`));
      members.push(client(`m${i}`, ['join', urls[i]!, '--name', `m${i}`, '--state', memberDirs[i]!]));
    }
    // Five processes start at once, each deriving its --state key (Argon2id, 64 MiB): generous on a shared machine.
    const joined = await Promise.all(members.map((m) => m.waitFor(isEvent('joined'), 'joined', 120_000)));
    for (const j of joined) expect(j.room).toBe(ready.room);
    for (const m of members) memberIds.push(String((await m.waitFor(isEvent('ready'), 'ready')).member));
    await Promise.all(memberIds.map((id) => host.waitFor(isEvent('member-joined', { member: id }), `member-joined ${id}`)));

    const list = await host.request({ cmd: 'members' }, isEvent('members'), 'members');
    expect((list.members as { id: string; owner: boolean }[]).map((m) => m.id).sort()).toEqual([String(ready.member), ...memberIds].sort());

    // Everyone speaks once; every member and the host read all of it.
    host.send({ cmd: 'send', text: 'hello from the host' });
    members.forEach((m, i) => m.send({ cmd: 'send', text: `hello from m${i}` }));
    const texts = ['hello from the host', ...members.map((_m, i) => `hello from m${i}`)];
    for (const t of texts) await everyoneGets([host, ...members], t);
    const fromM2 = host.events.find(isMessage('hello from m2'))!;
    expect(fromM2.from).toBe(memberIds[2]);
    expect(fromM2.name).toBe('m2');
  }, 180_000);

  it('rotates after every 5 messages and on the timer; members follow', async () => {
    // The 3 s timer resets the message count: on a loaded machine it can fire among the six
    // messages above and leave fewer than five in the epoch. Bursts of five from the host then
    // end in a count rotation unless the timer lands inside one too.
    const countRotated = isEvent('rotated', { reason: 'count' });
    for (let burst = 0; burst < 5 && !host.events.some(countRotated); burst++) {
      const texts = [1, 2, 3, 4, 5].map((i) => `burst ${burst}, message ${i}`);
      for (const text of texts) host.send({ cmd: 'send', text });
      await host.waitFor(isMessage(texts[4]!), `burst ${burst}`);
    }
    const byCount = await host.waitFor(countRotated, 'count rotation');
    // Members joined while the timer (3 s) was already running: take a timer rotation after this one.
    const byTimer = await host.waitFor(isEvent('rotated', { reason: 'timer' }), 'timer rotation', 20_000, host.events.indexOf(byCount));
    for (const r of [byCount, byTimer]) {
      await Promise.all(members.map((m) => m.waitFor(isEvent('rotated', { epoch: r.epoch }), `rotated to ${String(r.epoch)}`)));
    }
    const codes = await Promise.all(
      [host, ...members].map((c) => c.request({ cmd: 'safety-code' }, isEvent('safety-code'), 'safety code')),
    );
    // Equal codes for the same epoch (a rotation may fall between two answers: compare per epoch).
    const byEpoch = new Map<unknown, Set<unknown>>();
    for (const c of codes) byEpoch.set(c.epoch, (byEpoch.get(c.epoch) ?? new Set()).add(c.code));
    for (const set of byEpoch.values()) expect(set.size).toBe(1);
  }, 60_000);

  it('kicks a member, who receives nothing afterwards while the others do', async () => {
    const kicked = members[4]!;
    await host.request({ cmd: 'kick', member: memberIds[4] }, isEvent('member-left', { member: memberIds[4] }), 'member-left');
    const removed = await kicked.waitFor(isEvent('removed'), 'removed');
    expect(removed.reason).toBe('kicked');
    const removedAt = kicked.events.indexOf(removed);

    host.send({ cmd: 'send', text: 'after the kick (host)' });
    members[0]!.send({ cmd: 'send', text: 'after the kick (m0)' });
    const stay = [host, ...members.slice(0, 4)];
    await everyoneGets(stay, 'after the kick (host)');
    await everyoneGets(stay, 'after the kick (m0)');
    await Promise.all(memberIds.slice(0, 4).map((_id, i) => members[i]!.waitFor(isEvent('rotated', { reason: 'kick' }), 'kick rotation')));

    expect(kicked.events.slice(removedAt).filter((e) => e.event === 'message')).toEqual([]);
    expect(kicked.child.exitCode).toBeNull(); // still running, just not in the room
    const refused = await kicked.request({ cmd: 'send', text: 'let me back' }, isEvent('error'), 'refused send');
    expect(refused.code).toBe('room.closed');
  }, 60_000);

  it('a host restarted from --state brings its members back without new invites; nothing sent meanwhile is lost', async () => {
    const before = await host.request({ cmd: 'members' }, isEvent('members'), 'members');
    const staying = members.slice(0, 4);
    const m0From = staying[0]!.events.length;
    expect(await host.quit()).toBe(0);
    for (const f of ['identity.bin', 'room.bin', 'kdf.json']) expect((await stat(path.join(hostDir, f))).mode & 0o777).toBe(0o600);

    // With the host gone, m0 sends (the message waits in its outbox); m3 sends and quits (its
    // outbox is on disk under --state, and goes out when it is back).
    await staying[0]!.waitFor(
      (e) => e.event === 'link' && e.state !== 'direct' && e.state !== 'relayed',
      'm0 lost its link',
      30_000,
      m0From,
    );
    staying[0]!.send({ cmd: 'send', text: 'sent while the host was down (m0)' });
    staying[3]!.send({ cmd: 'send', text: 'sent while the host was down (m3, then it quit)' });
    expect(await staying[3]!.quit()).toBe(0);
    expect((await stat(path.join(memberDirs[3]!, 'outbox.bin'))).mode & 0o777).toBe(0o600);

    host = startHost();
    const ready = await host.waitFor(isEvent('ready'), 'restored host ready', 60_000);
    expect(ready.restored).toBe(true);
    // The same member processes reconnect on the trusted-key path (no invite involved).
    await Promise.all(
      memberIds.slice(0, 3).map((id) => host.waitFor(isEvent('link', { member: id, state: 'direct' }), `link back from ${id}`, 60_000)),
    );
    await everyoneGets([host, ...staying.slice(0, 3)], 'sent while the host was down (m0)');
    const after = await host.request({ cmd: 'members' }, isEvent('members'), 'members');
    expect(after.members).toEqual(before.members);

    host.send({ cmd: 'send', text: 'after the restart (host)' });
    await everyoneGets(staying.slice(0, 3), 'after the restart (host)');
    staying[1]!.send({ cmd: 'send', text: 'after the restart (m1)' });
    await everyoneGets([host, ...staying.slice(0, 3)], 'after the restart (m1)');
    expect(host.events.some(isEvent('invite'))).toBe(false);

    // A member restarted from its --state resumes without its invite URL, and its stored message goes out.
    const m3 = client('m3-restarted', ['join', '--state', memberDirs[3]!, '--name', 'ignored']);
    const m3ready = await m3.waitFor(isEvent('ready'), 'restarted m3 ready', 60_000);
    expect(m3ready.member).toBe(memberIds[3]);
    expect(m3ready.phase).toBe('member');
    await everyoneGets([host, m3, ...staying.slice(0, 3)], 'sent while the host was down (m3, then it quit)');
    host.send({ cmd: 'send', text: 'welcome back m3' });
    await everyoneGets([m3, ...staying.slice(0, 3)], 'welcome back m3');
    // Exactly once everywhere, and no error about the copies the owner refused.
    for (const c of [host, ...staying.slice(0, 3)]) {
      for (const t of ['sent while the host was down (m0)', 'sent while the host was down (m3, then it quit)'])
        expect(c.events.filter(isMessage(t))).toHaveLength(1);
    }
    for (const c of [staying[0]!, m3]) expect(c.events.filter(isEvent('error', { code: 'room.replay' }))).toEqual([]);

    const kicked = members[4]!;
    const removedAt = kicked.events.findIndex(isEvent('removed'));
    expect(kicked.events.slice(removedAt).filter((e) => e.event === 'message')).toEqual([]);
  }, 150_000);

  it('a member that leaves is announced, the key rotates, and its client exits', async () => {
    const leaver = members[2]!;
    const from = host.events.length;
    leaver.send({ cmd: 'leave' });
    await leaver.waitFor(isEvent('left'), 'left');
    expect(await leaver.exited).toBe(0);
    const left = await host.waitFor(isEvent('member-left', { member: memberIds[2] }), 'member-left', 30_000, from);
    expect(left.reason).toBe('left');
    await host.waitFor(isEvent('rotated', { reason: 'leave' }), 'leave rotation', 30_000, from);
  }, 60_000);
});
