// Section 5.4: the room rotates between a joiner's accept and its confirm, and another member is
// admitted meanwhile. The welcome carries a rekey whose announcement predates the joiner's
// admission (so it cannot list the joiner); the joiner accepts it on the strength of its
// certificate, then resyncs and reads everyone. (Seen live: zeroroom host with --rotate-after 3.)
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import { Net, device, everyoneReadsEveryone } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

describe('welcome with a rekey', () => {
  it('a joiner whose epoch rotated before its confirm becomes a member of the new epoch', () => {
    const net = new Net(device('owner'));
    const alice = net.join('alice', net.invite());
    net.run();
    const bob = net.join('bob', net.invite());
    net.hello(bob);
    net.deliverUp(bob); // join-request -> join-accept (epoch 0)
    for (const bytes of net.take(bob, 'down')) net.member(bob, { kind: 'received', bytes, now: net.now });
    expect(bob.state!.phase).toBe('accepted');
    net.owner({ kind: 'rotate', now: net.now }); // epoch 1, announced without bob
    const carol = net.join('carol', net.invite());
    net.run(); // carol joins in epoch 1, bob's confirm arrives after her: welcome + rekey, resync
    expect(bob.errors).toEqual([]);
    expect(bob.state!.phase).toBe('member');
    expect(bob.state!.epoch).toBe(net.ownerState.epoch);
    expect(bob.events.some((e) => e.type === 'joined')).toBe(true);
    expect(bob.state!.members.map((m) => m.info.name).sort()).toEqual(['alice', 'bob', 'carol', 'owner']);
    expect(
      net
        .current()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['alice', 'bob', 'carol']);
    everyoneReadsEveryone(net, 'after');
    void alice;
    void carol;
  });
});
