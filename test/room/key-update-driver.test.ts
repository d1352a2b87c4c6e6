/**
 * Member key updates through the shared driver (docs/PROTOCOL.md 5.8.1) over the fake link layer:
 * the member stores its pending keys before asking, switches when the update is committed and
 * reconnects with its new peer key; a copy of the old keys is refused and gets nothing new.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import { memberIdOf } from '../../protocol/room/ids.ts';
import type { MemberState, OwnerState } from '../../protocol/room/index.ts';
import { MemberDriver } from '../../protocol/room/member-driver.ts';
import type { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import { MemoryStore, Recorder, World, type Party } from './driver-harness.ts';

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

describe('member key update through the driver (5.8.1)', () => {
  it('stores the pending keys first, switches, reconnects with the new peer key, and keeps chatting', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const oldId = a.driver.state.selfId;
    const oldPeer = a.identity.peer.publicKey;
    const copyState = a.store.saved;
    await a.driver.updateKeys();
    // The request has left only after the pending keys were stored.
    const pending = a.store.keys?.pending ?? a.store.keys?.identity;
    expect(pending).toBeDefined();
    const newId = memberIdOf(pending!.identity.publicKey);
    await world.until(() => a.driver.state.selfId === newId, 'a switched');
    await world.advance(30_000); // the reconnect waits out the link backoff
    await world.until(() => a.driver.linkState === 'direct', 'a reconnected');
    expect(a.store.keys).toEqual({ identity: pending, pending: null });
    expect(a.store.saved.selfId).toBe(newId);
    expect(a.driver.identity).toEqual(pending);
    expect(owner.driver.state.members.map((m) => m.info.id)).toContain(newId);
    expect(owner.driver.state.members.map((m) => m.info.id)).not.toContain(oldId);
    await world.until(() => b.driver.state.members.some((m) => m.info.id === newId), 'b knows the new keys');
    await a.driver.send('with new keys');
    await b.driver.send('to the new keys');
    await world.until(
      () => [owner, a, b].every((p) => p.rec.texts().includes('with new keys') && p.rec.texts().includes('to the new keys')),
      'everyone reads both',
    );
    for (const m of [a, b]) expect(m.driver.safetyCode()).toBe(owner.driver.safetyCode());

    // A copy of the device taken before the update: its old peer key is refused, final.
    const rec = new Recorder();
    const copy = world.memberDriver(copyState, new MemoryStore(copyState), { identity: a.identity.identity, peer: a.identity.peer }, rec);
    expect(a.identity.peer.publicKey).toEqual(oldPeer);
    await copy.start();
    await world.until(() => copy.refusal !== null, 'the copy is refused');
    await owner.driver.send('not for the copy');
    await world.until(() => a.rec.texts().includes('not for the copy'), 'a reads it');
    expect(rec.texts()).toEqual([]);
    expect(copy.state.epoch).toBe(copyState.epoch);
    expect(copy.linkState).toBe('closed');
  });

  it('a restart after the switch was saved but before the keys record was: the pending keys become ours', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    const old = a.identity;
    await a.driver.updateKeys();
    const pending = a.store.keys!.pending!;
    const newId = memberIdOf(pending.identity.publicKey);
    await world.until(() => a.driver.state.selfId === newId, 'a switched');
    await a.driver.stop();
    // The keys record as it was before the switch (the process died between the two writes).
    a.store.keys = { identity: old, pending };
    const rec = new Recorder();
    const restarted = new MemberDriver(a.store.saved, a.store, world.env(rec), {
      identity: old,
      pending,
      link: world.net.memberPort(old.peer.publicKey),
    });
    world.drivers.push(restarted);
    await restarted.start();
    expect(a.store.keys).toEqual({ identity: pending, pending: null });
    await world.advance(30_000);
    await world.until(() => restarted.linkState === 'direct', 'restarted member connected with its new key');
    await restarted.send('back with new keys');
    await world.until(() => owner.rec.texts().includes('back with new keys'), 'owner reads it');
  });
});
