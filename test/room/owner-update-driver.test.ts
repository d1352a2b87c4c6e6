/**
 * The owner's own key update through the shared driver (docs/PROTOCOL.md 5.8.1 step 5) over the fake
 * link layer, which routes each member to the owner side listening on the path it asks for: the
 * owner stores its pending keys first, moves to its new path, members follow and keep chatting; a
 * member offline during the update finds the owner on the old path and moves; a restart between the
 * commit and the keys record finishes the switch; a copy of the owner's old keys gets nothing new.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, toHex } from '../../crypto/index.ts';
import { memberIdOf } from '../../protocol/room/ids.ts';
import type { MemberState, OwnerState } from '../../protocol/room/index.ts';
import type { MemberDriver } from '../../protocol/room/member-driver.ts';
import { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import { APP_URL, MemoryStore, Recorder, SERVER, World, type Party } from './driver-harness.ts';

beforeAll(async () => {
  await initCrypto();
});

let world: World;
afterEach(async () => {
  await world?.close();
});

type Member = Party<MemberDriver> & { store: MemoryStore<MemberState> };
type Owner = Party<OwnerDriver> & { store: MemoryStore<OwnerState> };

async function room(n: number): Promise<{ owner: Owner; members: Member[] }> {
  world = new World();
  const owner = await world.owner();
  const members: Member[] = [];
  for (let i = 0; i < n; i++) members.push(await world.join(owner, `m${i}`));
  await world.until(() => owner.driver.state.members.length === n + 1, 'everyone admitted');
  return { owner, members };
}

async function everyoneReads(parties: Party<OwnerDriver | MemberDriver>[], tag: string): Promise<void> {
  for (const p of parties) await p.driver.send(`${tag}:${p.name}`);
  await world.until(() => parties.every((r) => parties.every((s) => r.rec.texts().includes(`${tag}:${s.name}`))), `everyone reads ${tag}`);
}

describe('owner key update through the driver (5.8.1 step 5)', () => {
  it('stores the pending keys first, moves to the new path, members follow and keep chatting; the old path closes once all moved', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const oldPath = owner.driver.peerKey;
    await owner.driver.invite();
    await owner.driver.updateKeys();
    const next = owner.driver.identity;
    expect(toHex(next.peer.publicKey)).not.toBe(oldPath);
    // The keys record holds the new keys, nothing pending; the saved state runs on them.
    expect(owner.store.keys).toEqual({ identity: next, pending: null });
    expect(owner.store.saved.selfId).toBe(memberIdOf(next.identity.publicKey));
    expect(owner.driver.peerKey).toBe(toHex(next.peer.publicKey));
    const ev = owner.rec.events.find((e) => e.kind === 'room' && e.event.type === 'keys-updated');
    expect(ev).toMatchObject({ event: { self: true, revoked: 1 } });
    await world.until(() => [a, b].every((m) => m.driver.state.ownerPeer === owner.driver.peerKey), 'members follow');
    await world.advance(30_000);
    await world.until(() => [a, b].every((m) => m.driver.linkState === 'direct'), 'members reconnected on the new path');
    for (const m of [a, b]) expect(m.driver.currentLink?.peerKey).toEqual(next.peer.publicKey);
    await world.until(() => owner.driver.previousPaths.length === 0, 'the old path is closed');
    expect(owner.driver.state.previousPaths).toBeUndefined();
    await everyoneReads([owner, a, b], 'after');
    for (const m of [a, b]) expect(m.driver.safetyCode()).toBe(owner.driver.safetyCode());
  });

  it('a member offline during the update finds the owner on its old path and moves', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const oldPath = owner.driver.peerKey;
    world.net.partition(b.identity.peer.publicKey);
    await owner.driver.updateKeys();
    await world.advance(30_000);
    await world.until(() => a.driver.linkState === 'direct' && a.driver.state.ownerPeer === owner.driver.peerKey, 'a moved');
    // The old path is still listened on for b.
    await world.until(() => owner.driver.previousPaths.length === 1, 'the old path waits for b');
    expect(owner.driver.previousPaths).toEqual([oldPath]);
    await owner.driver.send('while b was away');
    expect(b.driver.state.ownerPeer).toBe(oldPath);
    world.net.heal(b.identity.peer.publicKey);
    await world.until(() => b.driver.state.ownerPeer === owner.driver.peerKey, 'b applied the owner update');
    await world.advance(30_000);
    await world.until(() => b.driver.linkState === 'direct' && b.driver.currentLink?.peerKey !== undefined, 'b reconnected');
    expect(toHex(b.driver.currentLink!.peerKey)).toBe(owner.driver.peerKey);
    await world.until(() => b.rec.texts().includes('while b was away'), 'b reads what it missed');
    await world.until(() => owner.driver.previousPaths.length === 0, 'the old path is closed once b moved');
    await everyoneReads([owner, a, b], 'together');
  });

  it('a member stopped during the update restarts on the old path, applies the update there and moves', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const oldPath = owner.driver.peerKey;
    await b.driver.stop();
    await owner.driver.updateKeys();
    await world.advance(30_000);
    await world.until(() => a.driver.linkState === 'direct' && a.driver.state.ownerPeer === owner.driver.peerKey, 'a moved');
    await world.until(() => owner.driver.previousPaths.length === 1, 'the old path waits for b');
    await owner.driver.send('while b was stopped');
    // b's new process links to the old path afresh: that link alone must not count as moved.
    const rec = new Recorder();
    const driver = world.memberDriver(b.store.saved, b.store, b.identity, rec);
    expect(driver.state.ownerPeer).toBe(oldPath);
    await driver.start();
    await world.until(() => driver.state.ownerPeer === owner.driver.peerKey, 'b applied the owner update on the old path');
    await world.advance(30_000);
    await world.until(
      () => driver.linkState === 'direct' && toHex(driver.currentLink!.peerKey) === owner.driver.peerKey,
      'b on the new path',
    );
    await world.until(() => rec.texts().includes('while b was stopped'), 'b reads what it missed');
    await world.until(() => owner.driver.previousPaths.length === 0, 'the old path is closed once b moved');
    await driver.send('b is back');
    await world.until(() => owner.rec.texts().includes('b is back') && a.rec.texts().includes('b is back'), 'everyone reads b');
  });

  it('a restart after the step was saved but before the keys record was: the pending keys become ours', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    const old = owner.identity;
    await owner.driver.updateKeys();
    const next = owner.driver.identity;
    await owner.driver.stop();
    // The keys record as it was before the switch (the process died between the two writes).
    owner.store.keys = { identity: old, pending: next };
    const rec = new Recorder();
    const restarted = new OwnerDriver(owner.store.saved, owner.store, world.env(rec), {
      identity: old,
      pending: next,
      invites: { appUrl: APP_URL, server: SERVER },
      link: world.net.ownerPort,
    });
    world.drivers.push(restarted);
    await restarted.start();
    expect(owner.store.keys).toEqual({ identity: next, pending: null });
    expect(restarted.peerKey).toBe(toHex(next.peer.publicKey));
    await world.advance(30_000);
    await world.until(() => a.driver.linkState === 'direct' && a.driver.state.ownerPeer === restarted.peerKey, 'a on the new path');
    await a.driver.send('to the restarted owner');
    await world.until(() => rec.texts().includes('to the restarted owner'), 'the restarted owner reads it');
  });

  it('a restart before the step was saved keeps the pending keys for the next attempt', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    owner.store.failSave = true;
    await expect(owner.driver.updateKeys()).rejects.toThrow();
    owner.store.failSave = false;
    const pending = owner.store.keys!.pending!;
    expect(owner.store.keys!.identity).toEqual(owner.identity);
    // Nothing left: the member still knows the old owner, which still runs on its old keys.
    expect(a.driver.state.ownerPeer).toBe(toHex(owner.identity.peer.publicKey));
    expect(owner.driver.identity).toEqual(owner.identity);
    await owner.driver.updateKeys();
    expect(owner.driver.identity).toEqual(pending);
    await world.advance(30_000);
    await world.until(() => a.driver.state.ownerPeer === owner.driver.peerKey && a.driver.linkState === 'direct', 'a moved');
  });

  it("a copy of the owner's old keys and state gets nothing new", async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const copyState = owner.store.saved;
    const old = owner.identity;
    await owner.driver.updateKeys();
    await world.advance(30_000);
    await world.until(
      () => [a, b].every((m) => m.driver.linkState === 'direct' && m.driver.state.ownerPeer === owner.driver.peerKey),
      'members moved',
    );
    await world.until(() => owner.driver.previousPaths.length === 0, 'the old path is closed');
    // The thief starts the copy on the old path.
    const rec = new Recorder();
    const copy = new OwnerDriver(copyState, new MemoryStore(copyState), world.env(rec), {
      identity: old,
      invites: { appUrl: APP_URL, server: SERVER },
      link: world.net.ownerPort,
    });
    world.drivers.push(copy);
    await copy.start();
    await everyoneReads([owner, a, b], 'secret');
    await copy.send('from the thief');
    await copy.rotate();
    await world.advance(30_000);
    expect(rec.texts().filter((t) => t.startsWith('secret'))).toEqual([]);
    for (const m of [a, b]) {
      expect(m.rec.texts()).not.toContain('from the thief');
      expect(toHex(m.driver.currentLink!.peerKey)).toBe(owner.driver.peerKey);
    }
    expect(copy.state.epoch).toBe(copyState.epoch + 1);
    expect(a.driver.state.epoch).toBe(owner.driver.state.epoch);
  });
});
