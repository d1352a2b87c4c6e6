// Issue 14 item 4 (the detection part), with the headless client over real WebRTC on 127.0.0.1: a
// copy of a member's --state directory (a stolen device) connects while the member's own link is
// open. The owner reports a `second-session` event naming that member (docs/PROTOCOL.md 5.14), and
// a single reconnect of the member alone reports nothing.
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, isEvent } from './clients.ts';

const room = cliRoom('second-session', 'second session test password');
const client = room.client;

describe('two live sessions presenting one member key', () => {
  it('a copy of a member state connecting while the member is online is reported to the owner', async () => {
    const host = client('host', ['host', '--server', room.serve.wsUrl, '--name', 'owner']);
    await host.waitFor(isEvent('ready'), 'host ready');
    const invite = await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite');
    const memberDir = path.join(room.tmp, 'member');
    const member = client('member', ['join', String(invite.url), '--name', 'alice', '--state', memberDir]);
    await member.waitFor(isEvent('joined'), 'joined', 60_000);
    const id = String((await member.waitFor(isEvent('ready'), 'ready')).member);
    await host.waitFor(isEvent('member-joined', { member: id }), 'member-joined');
    // Its first link event came before the admission (member null): the link is named by its peer key.
    const peer = String((await host.waitFor(isEvent('link', { state: 'direct' }), 'the member link open')).peer);

    // The member alone, away and back: its link closed first, so no report.
    expect(await member.quit()).toBe(0);
    await host.waitFor((e) => isEvent('link', { peer })(e) && e.state !== 'direct', 'the member link dropped');
    const copyDir = path.join(room.tmp, 'stolen');
    await cp(memberDir, copyDir, { recursive: true });
    const back = client('member-back', ['join', '--state', memberDir, '--name', 'ignored']);
    const from = host.events.length;
    await host.waitFor(isEvent('link', { peer, state: 'direct' }), 'the member link open again', 60_000, from);
    expect(host.events.filter(isEvent('second-session'))).toEqual([]);

    // The copy connects while the member's link is open.
    const stolen = client('stolen', ['join', '--state', copyDir, '--name', 'ignored']);
    const report = await host.waitFor(isEvent('second-session'), 'second-session', 60_000);
    expect(report).toMatchObject({ event: 'second-session', member: id, peer });
    expect(host.stderr).toMatch(/a second session presented this member's key/);
    await stolen.kill();
    await back.kill();
  }, 180_000);
});
