// Issue 14 item 4 (key updates, docs/PROTOCOL.md 5.8.1) with the headless client over real WebRTC
// on 127.0.0.1: a copy of a member's --state directory (a stolen device) is taken, the member
// replaces its keys with {"cmd":"update-keys"}, and then the copy is refused and receives nothing
// new while the member keeps chatting.
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, isEvent } from './clients.ts';

const room = cliRoom('key-update', 'key update test password');
const client = room.client;

describe('member key update over real links', () => {
  it('after update-keys a copy of the old state is refused and gets nothing new; the member keeps chatting', async () => {
    const host = client('host', ['host', '--server', room.serve.wsUrl, '--name', 'owner']);
    await host.waitFor(isEvent('ready'), 'host ready');
    const invite = await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite');
    const memberDir = path.join(room.tmp, 'member');
    const first = client('member', ['join', String(invite.url), '--name', 'alice', '--state', memberDir]);
    await first.waitFor(isEvent('joined'), 'joined', 60_000);
    const oldId = String((await first.waitFor(isEvent('ready'), 'ready')).member);
    await host.waitFor(isEvent('member-joined', { member: oldId }), 'member-joined');
    expect(await first.quit()).toBe(0);

    // The stolen copy, taken before the update.
    const copyDir = path.join(room.tmp, 'stolen');
    await cp(memberDir, copyDir, { recursive: true });

    const member = client('member-back', ['join', '--state', memberDir, '--name', 'ignored']);
    const from = host.events.length;
    await host.waitFor(isEvent('link', { state: 'direct' }), 'the member link open again', 60_000, from);
    const done = await member.request({ cmd: 'update-keys' }, isEvent('keys-updated', { self: true }), 'keys updated', 60_000);
    expect(done.old).toBe(oldId);
    const newId = String(done.member);
    expect(newId).not.toBe(oldId);
    await host.waitFor(isEvent('keys-updated', { old: oldId, member: newId }), 'host commits the update');

    // The member reconnects with its new peer key and keeps chatting.
    member.send({ cmd: 'send', text: 'hello with new keys' });
    await host.waitFor(isEvent('message', { text: 'hello with new keys', from: newId }), 'host reads the member', 60_000);

    // The copy presents the old peer key: refused, final; nothing new reaches it.
    const stolen = client('stolen', ['join', '--state', copyDir, '--name', 'ignored']);
    await stolen.waitFor(isEvent('error', { code: 'saltyrtc.initiator-refused' }), 'the copy is refused', 60_000);
    await stolen.waitFor(isEvent('stopped', { reason: 'refused' }), 'the copy gives up', 60_000);
    host.send({ cmd: 'send', text: 'not for the copy' });
    await member.waitFor(isEvent('message', { text: 'not for the copy' }), 'the member reads it', 60_000);
    expect(stolen.events.filter(isEvent('message', { text: 'not for the copy' }))).toEqual([]);
    expect(stolen.events.filter(isEvent('rotated'))).toEqual([]);
    expect(stolen.events.filter(isEvent('keys-updated'))).toEqual([]);
    await stolen.kill();

    // The state directory resumes with the new keys.
    expect(await member.quit()).toBe(0);
    const again = client('member-again', ['join', '--state', memberDir, '--name', 'ignored']);
    expect((await again.waitFor(isEvent('ready'), 'ready again')).member).toBe(newId);
    const from2 = host.events.length;
    again.send({ cmd: 'send', text: 'after a restart' });
    await host.waitFor(isEvent('message', { text: 'after a restart', from: newId }), 'host reads it after the restart', 60_000, from2);
    await again.kill();
  }, 240_000);
});
