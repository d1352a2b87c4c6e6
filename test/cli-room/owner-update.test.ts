// Issue 14 item 4, the owner's own key update (docs/PROTOCOL.md 5.8.1 step 5), with the headless
// client over real WebRTC on 127.0.0.1: a copy of the owner's --state directory (a stolen device) is
// taken, the host replaces its keys with {"cmd":"update-keys"}, a member online follows it to its new
// path and keeps chatting, a member offline during the update finds it on the old path and moves,
// and the copy, started afterwards on the old path, reaches no member and gets nothing new.
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, isEvent } from './clients.ts';

const room = cliRoom('owner-update', 'owner update test password');
const client = room.client;

describe('owner key update over real links', () => {
  it('members follow the owner to its new keys and path; a copy of its old state gets nothing new', async () => {
    const hostDir = path.join(room.tmp, 'host');
    const first = client('host', ['host', '--server', room.serve.wsUrl, '--name', 'owner', '--state', hostDir]);
    await first.waitFor(isEvent('ready'), 'host ready');
    const inviteA = await first.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite a');
    const inviteB = await first.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite b');
    const alice = client('alice', ['join', String(inviteA.url), '--name', 'alice', '--state', path.join(room.tmp, 'alice')]);
    await alice.waitFor(isEvent('joined'), 'alice joined', 60_000);
    const bobDir = path.join(room.tmp, 'bob');
    const bob = client('bob', ['join', String(inviteB.url), '--name', 'bob', '--state', bobDir]);
    await bob.waitFor(isEvent('joined'), 'bob joined', 60_000);
    const oldOwner = String((await first.waitFor(isEvent('ready'), 'ready')).member);
    // Bob goes offline before the update.
    expect(await bob.quit()).toBe(0);
    expect(await first.quit()).toBe(0);

    // The stolen copy of the owner, taken before the update.
    const copyDir = path.join(room.tmp, 'stolen-host');
    await cp(hostDir, copyDir, { recursive: true });

    const host = client('host-back', ['host', '--state', hostDir]);
    await host.waitFor(isEvent('ready'), 'host ready again');
    await host.waitFor(isEvent('link', { state: 'direct' }), 'alice back', 60_000);
    const pending = await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'an invite that the update revokes');
    const done = await host.request({ cmd: 'update-keys' }, isEvent('keys-updated', { self: true }), 'owner keys updated', 60_000);
    expect(done.old).toBe(oldOwner);
    expect(done.owner).toBe(true);
    expect(done.revoked).toBe(1);
    const newOwner = String(done.member);
    expect(newOwner).not.toBe(oldOwner);

    // Alice follows to the new path and keeps chatting.
    await alice.waitFor(isEvent('keys-updated', { old: oldOwner, member: newOwner, owner: true }), 'alice follows', 60_000);
    const fromA = host.events.length;
    alice.send({ cmd: 'send', text: 'hello new owner' });
    await host.waitFor(isEvent('message', { text: 'hello new owner' }), 'host reads alice', 90_000, fromA);
    host.send({ cmd: 'send', text: 'while bob was away' });
    await alice.waitFor(isEvent('message', { text: 'while bob was away' }), 'alice reads the host', 60_000);
    const code = await host.request({ cmd: 'safety-code' }, isEvent('safety-code'), 'host code');
    const codeA = await alice.request({ cmd: 'safety-code' }, isEvent('safety-code'), 'alice code');
    expect(codeA.code).toBe(code.code);

    // The revoked invite no longer admits anyone.
    const late = client('late', ['join', String(pending.url), '--name', 'late']);
    await late.waitFor(
      (e) => e.event === 'stopped' || e.event === 'join-refused' || e.event === 'error',
      'the late joiner is refused',
      90_000,
    );
    await late.kill();

    // Bob, offline during the update, finds the owner on its old path and moves.
    const bobBack = client('bob-back', ['join', '--state', bobDir, '--name', 'ignored']);
    await bobBack.waitFor(isEvent('keys-updated', { old: oldOwner, member: newOwner }), 'bob follows', 90_000);
    await bobBack.waitFor(isEvent('message', { text: 'while bob was away' }), 'bob reads what he missed', 90_000);
    const fromB = host.events.length;
    bobBack.send({ cmd: 'send', text: 'bob on the new path' });
    await host.waitFor(isEvent('message', { text: 'bob on the new path' }), 'host reads bob', 90_000, fromB);
    await alice.waitFor(isEvent('message', { text: 'bob on the new path' }), 'alice reads bob', 60_000);

    // The copy of the old owner starts on the old path: no member links to it, nothing new reaches it.
    const stolen = client('stolen-host', ['host', '--state', copyDir]);
    await stolen.waitFor(isEvent('ready'), 'the copy listens');
    host.send({ cmd: 'send', text: 'not for the copy' });
    await alice.waitFor(isEvent('message', { text: 'not for the copy' }), 'alice reads it', 60_000);
    await bobBack.waitFor(isEvent('message', { text: 'not for the copy' }), 'bob reads it', 60_000);
    stolen.send({ cmd: 'send', text: 'from the thief' });
    const fromA2 = alice.events.length;
    alice.send({ cmd: 'send', text: 'after the copy started' });
    await bobBack.waitFor(isEvent('message', { text: 'after the copy started' }), 'bob reads alice', 60_000);
    expect(stolen.events.filter((e) => e.event === 'message' && e.text !== 'from the thief')).toEqual([]);
    expect(stolen.events.filter(isEvent('link', { state: 'direct' }))).toEqual([]);
    expect(alice.events.slice(fromA2).filter(isEvent('message', { text: 'from the thief' }))).toEqual([]);
    expect(bobBack.events.filter(isEvent('message', { text: 'from the thief' }))).toEqual([]);
    await stolen.kill();

    // The state directory resumes on the new keys.
    expect(await host.quit()).toBe(0);
    const again = client('host-again', ['host', '--state', hostDir]);
    expect((await again.waitFor(isEvent('ready'), 'ready again')).member).toBe(newOwner);
    const fromA3 = again.events.length;
    alice.send({ cmd: 'send', text: 'after the owner restarted' });
    await again.waitFor(isEvent('message', { text: 'after the owner restarted' }), 'the restarted host reads alice', 90_000, fromA3);
    await again.kill();
    await alice.kill();
    await bobBack.kill();
  }, 420_000);
});
