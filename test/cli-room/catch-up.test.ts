// Issue 14's first finding, with the headless client over real WebRTC on 127.0.0.1: a member away
// while the room rotated three times (`--rotate-every 3`) got 4 of the 10 messages it missed. Now
// it reads all 10, exactly once, with no message reported as unreadable (docs/PROTOCOL.md 5.10).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, isEvent, type Ev } from './clients.ts';

const room = cliRoom('catch-up', 'catch-up test password');
const client = room.client;

describe('zeroroom join --state, away across rotations', () => {
  it('a member away while the room rotated three times reads all ten messages it missed, once each', async () => {
    const host = client('host', ['host', '--server', room.serve.wsUrl, '--name', 'owner', '--rotate-every', '3']);
    await host.waitFor(isEvent('ready'), 'host ready');
    const invite = await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite');
    const memberDir = path.join(room.tmp, 'member');
    const member = client('member', ['join', String(invite.url), '--name', 'away', '--state', memberDir]);
    await member.waitFor(isEvent('joined'), 'joined');
    host.send({ cmd: 'send', text: 'before' });
    await member.waitFor((e) => e.event === 'message' && e.text === 'before', 'first message');
    expect(await member.quit()).toBe(0);

    const missed = Array.from({ length: 10 }, (_, i) => `missed ${i}`);
    const rotatedFrom = host.events.length;
    for (const text of missed) host.send({ cmd: 'send', text });
    await host.waitFor((e) => e.event === 'message' && e.text === missed[9], 'the host ordered all ten');
    const rotations = host.events.slice(rotatedFrom).filter(isEvent('rotated', { reason: 'count' }));
    expect(rotations).toHaveLength(3);

    const back = client('member-back', ['join', '--state', memberDir, '--name', 'ignored']);
    await back.waitFor((e) => e.event === 'message' && e.text === missed[9], 'the last missed message', 60_000);
    const texts = back.events.filter((e: Ev) => e.event === 'message').map((e) => e.text);
    expect(texts).toEqual(missed);
    expect(back.events.filter(isEvent('history-skipped'))).toEqual([]);
    expect(back.events.filter(isEvent('warning'))).toEqual([]);
    const codes = await Promise.all([
      host.request({ cmd: 'safety-code' }, isEvent('safety-code'), 'host code'),
      back.request({ cmd: 'safety-code' }, isEvent('safety-code'), 'member code'),
    ]);
    expect(codes[1]!.code).toBe(codes[0]!.code);
  }, 120_000);
});
