// Scenario tests (docs/PROTOCOL.md section 5): N members through invite, join, message, rotation,
// kick, leave, rejoin and reconnect; after each step everyone reads everyone and the removed cannot.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import {
  CATCH_UP_INTERVAL_MS,
  memberList,
  memberSafetyCode,
  ownerSafetyCode,
  pendingAuthTokens,
  memberPeerKeys,
} from '../../protocol/room/index.ts';
import { Net, device, everyoneReadsEveryone, rng, type MemberNode } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

function joinAll(net: Net, names: string[]): MemberNode[] {
  const nodes = names.map((n) => net.join(n, net.invite()));
  net.run();
  for (const n of nodes) expect(n.state!.phase, n.name).toBe('member');
  return nodes;
}

function safetyCodesAgree(net: Net): string {
  const code = ownerSafetyCode(net.ownerState);
  expect(code).toMatch(/^\d{5}( \d{5}){5}$/);
  for (const n of net.current()) expect(memberSafetyCode(n.state!), n.name).toBe(code);
  return code;
}

describe('room scenario', () => {
  it('runs 4 members through join, rotate, kick, leave, rejoin and reconnect', () => {
    const net = new Net(device('owner'));
    const [a, b, c, d] = joinAll(net, ['alice', 'bob', 'carol', 'dave']) as [MemberNode, MemberNode, MemberNode, MemberNode];
    expect(net.ownerEvents.filter((e) => e.type === 'member-joined')).toHaveLength(4);
    // Earlier members learn about later ones through member-added.
    expect(a.events.filter((e) => e.type === 'member-joined').map((e) => (e.type === 'member-joined' ? e.member.name : ''))).toEqual([
      'bob',
      'carol',
      'dave',
    ]);
    everyoneReadsEveryone(net, 'joined');
    const code0 = safetyCodesAgree(net);
    // Everyone sees the same member list with the same fingerprints, owner first.
    const list = memberList(net.ownerState);
    expect(list.map((m) => [m.name, m.owner])).toEqual([
      ['owner', true],
      ['alice', false],
      ['bob', false],
      ['carol', false],
      ['dave', false],
    ]);
    for (const n of [a, b, c, d]) expect(memberList(n.state!)).toEqual(list);
    expect(list[1]!.fingerprint).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4}){7}$/);

    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    expect(net.ownerState.epoch).toBe(1);
    for (const n of [a, b, c, d]) expect(n.state!.epoch).toBe(1);
    everyoneReadsEveryone(net, 'rotated');
    expect(safetyCodesAgree(net)).not.toBe(code0);

    // Kick carol: she is told, her link closes, the key rotates without her.
    net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now });
    net.run();
    expect(c.state!.phase).toBe('removed');
    expect(c.events.some((e) => e.type === 'removed' && e.reason === 'kicked')).toBe(true);
    expect(net.ownerState.epoch).toBe(2);
    expect(c.state!.epochs.some((e) => e.epoch >= 2)).toBe(false);
    for (const n of [a, b, d])
      expect(n.events.some((e) => e.type === 'member-left' && e.member.id === c.state!.selfId && e.reason === 'kicked')).toBe(true);
    everyoneReadsEveryone(net, 'after-kick', [c]);
    safetyCodesAgree(net);

    // Dave leaves.
    net.member(d, { kind: 'leave', now: net.now });
    net.run();
    expect(d.state!.phase).toBe('left');
    expect(net.ownerState.epoch).toBe(3);
    expect(net.ownerState.members.map((m) => m.info.name).sort()).toEqual(['alice', 'bob', 'owner']);
    everyoneReadsEveryone(net, 'after-leave', [c, d]);

    // Dave rejoins with a new invite on the same device: new membership, new epoch bound.
    const d2 = net.join('dave', net.invite(), d.dev);
    net.run();
    expect(d2.state!.phase).toBe('member');
    expect(d2.state!.selfId).toBe(d.state!.selfId);
    // since-rotation history: he sees the messages of the current epoch, not the earlier ones.
    expect(d2.texts()).toContain('after-leave:alice');
    expect(d2.texts()).not.toContain('after-kick:alice');
    everyoneReadsEveryone(net, 'rejoined', [c]);

    // Bob's link drops while messages flow; on reconnect he gets them as history.
    net.owner({ kind: 'send', text: 'while-bob-away-1', now: net.now });
    net.member(a, { kind: 'send', text: 'while-bob-away-2', now: net.now });
    net.reconnect(b); // in-flight packets to bob are lost; bob sends sync
    net.run();
    expect(b.texts()).toEqual(expect.arrayContaining(['while-bob-away-1', 'while-bob-away-2']));
    everyoneReadsEveryone(net, 'reconnected', [c]);
    safetyCodesAgree(net);

    // Views agree: every member's messages appear in the owner's order.
    for (const n of net.current()) {
      const idx = n.events.flatMap((e) => (e.type === 'message' ? [e.idx] : []));
      expect([...idx].sort((x, y) => x - y)).toEqual(idx);
      expect(new Set(idx).size).toBe(idx.length);
    }
    // The removed never held any later key, and nothing later opened for them.
    expect(c.state!.epochs.map((e) => e.epoch)).toEqual([0, 1]);
    expect(d.state!.epochs.every((e) => e.epoch <= 2)).toBe(true);
  });

  it('rotates after N messages and on a timer tick', () => {
    const net = new Net(device('owner-n'), { rotateEveryMessages: 5, rotateAfterMs: 60_000 });
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    for (let i = 0; i < 12; i++) {
      net.member(i % 2 ? a : b, { kind: 'send', text: `m${i}`, now: net.now });
      net.run();
    }
    expect(net.ownerState.epoch).toBe(2);
    expect(net.ownerEvents.filter((e) => e.type === 'rotated' && e.reason === 'count')).toHaveLength(2);
    for (const n of [a, b]) expect(n.texts()).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
    // A tick before the deadline changes nothing; after it, a timer rotation.
    const before = net.ownerState;
    net.owner({ kind: 'tick', now: net.ownerState.epochStartedAt + 59_999 });
    expect(net.ownerState).toBe(before);
    net.owner({ kind: 'tick', now: net.ownerState.epochStartedAt + 60_000 });
    net.run();
    expect(net.ownerState.epoch).toBe(3);
    expect(a.events.some((e) => e.type === 'rotated' && e.reason === 'timer')).toBe(true);
    everyoneReadsEveryone(net, 'after-timer');
  });

  it('gives a new member no history when the policy says so, and rotates on join when configured', () => {
    const net = new Net(device('owner-h'), { history: 'none', rotateOnJoin: true });
    joinAll(net, ['a']);
    everyoneReadsEveryone(net, 'before');
    const [b] = joinAll(net, ['b']) as [MemberNode];
    expect(b.texts()).toEqual([]);
    expect(net.ownerState.epoch).toBe(2); // one rotation per join
    everyoneReadsEveryone(net, 'after');
  });

  it('exposes SaltyRTC auth tokens of pending invites and the member peer keys for the link layer', () => {
    const net = new Net(device('owner-t'));
    const url = net.invite(1000);
    expect(pendingAuthTokens(net.ownerState, net.now)).toHaveLength(1);
    expect(pendingAuthTokens(net.ownerState, net.now + 1001)).toHaveLength(0);
    const a = net.join('a', url);
    net.run();
    expect(pendingAuthTokens(net.ownerState, net.now)).toHaveLength(0);
    expect(memberPeerKeys(net.ownerState)).toEqual([a.peer]);
    // The used invite's token is gone from the owner's state.
    expect(net.ownerState.invites.every((i) => i.token === undefined)).toBe(true);
  });

  it('history entries from a member removed later still verify for a returning member', () => {
    const net = new Net(device('owner-f'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.member(b, { kind: 'send', text: 'from-b', now: net.now });
    net.deliverUp(b); // the owner orders it; the deliver to a is in flight
    net.owner({ kind: 'kick', member: b.state!.selfId, now: net.now });
    net.reconnect(a); // a's link drops: the deliver and the rekey are lost; a syncs
    net.run();
    expect(a.state!.epoch).toBe(1);
    expect(a.state!.former.map((m) => m.info.name)).toEqual(['b']);
    expect(a.texts()).toContain('from-b');
    expect(a.errors).toEqual([]);
    everyoneReadsEveryone(net, 'after', [b]);
  });
});

describe('room under an unreliable network', () => {
  // Links stay FIFO (the peer link guarantees order) but are interleaved at random; packets are
  // duplicated and dropped. After the chaos, each member reconnects once on a quiet network and
  // must then agree with the owner's log.
  for (const seed of [1, 2, 3, 4]) {
    it(`converges and keeps the removed out (seed ${seed})`, () => {
      const net = new Net(device(`owner-chaos-${seed}`), { rotateEveryMessages: 7 });
      const r = rng(seed);
      net.opts = { interleave: r, dupRate: 0.1, dropRate: 0.05 };
      const nodes: MemberNode[] = [];
      for (const name of ['a', 'b', 'c', 'd', 'e']) nodes.push(net.join(name, net.invite()));
      net.run();
      // Joins whose packets were dropped retry on reconnect, like the driver does.
      for (let round = 0; round < 5; round++) {
        for (const n of nodes) if (n.state!.phase === 'joining' || n.state!.phase === 'accepted') net.reconnect(n);
        net.run();
      }
      let kicked: MemberNode | null = null;
      for (let i = 0; i < 40; i++) {
        const live = net.current();
        const who = live[Math.floor(r() * live.length)];
        if (who) net.member(who, { kind: 'send', text: `s${seed}-${i}`, now: net.now });
        if (i % 9 === 0) net.owner({ kind: 'send', text: `o${seed}-${i}`, now: net.now });
        if (i === 20 && live[0]) {
          kicked = live[0];
          net.owner({ kind: 'kick', member: kicked.state!.selfId, now: net.now });
        }
        net.run();
      }
      // Quiet network: everyone reconnects once, then views must match the owner's log. Pages
      // lost in the chaos were already sent once, so they come again only after the catch-up
      // interval (section 5.10).
      net.opts = {};
      net.now += CATCH_UP_INTERVAL_MS;
      for (const n of net.current()) net.reconnect(n);
      net.run();
      const logTexts = net.ownerEvents.filter((e) => e.type === 'message');
      let compared = 0;
      for (const n of net.current()) {
        const seen = new Map(n.events.flatMap((e) => (e.type === 'message' ? [[e.idx, e.text] as const] : [])));
        // A history entry that arrived before its epoch key (the key's entry dropped, a duplicate
        // of it delivered later) was skipped and reported (5.9); it is never shown afterwards.
        const skippedNoKey = n.events.reduce((k, e) => k + (e.type === 'history-skipped' && e.reason === 'no-key' ? e.count : 0), 0);
        let missing = 0;
        for (const m of logTexts) {
          if (m.type !== 'message' || m.idx < n.state!.viewFrom) continue;
          const got = seen.get(m.idx);
          if (got === undefined) {
            missing++;
            continue;
          }
          expect(got, `${n.name} idx ${m.idx}`).toBe(m.text);
          compared++;
        }
        expect(missing, `${n.name}: entries neither shown nor reported as skipped`).toBeLessThanOrEqual(skippedNoKey);
      }
      expect(compared).toBeGreaterThan(60);
      // The chaos happened: duplicates were seen and refused as such.
      expect(nodes.some((n) => n.errors.some((e) => e.code === 'room.duplicate'))).toBe(true);
      if (kicked !== null) {
        const removedAt = net.ownerEvents.findIndex((e) => e.type === 'member-left');
        const after = net.ownerEvents.slice(removedAt).flatMap((e) => (e.type === 'message' ? [e.text] : []));
        for (const t of after) expect(kicked.texts()).not.toContain(t);
        const kickEpoch = net.ownerEvents.flatMap((e) => (e.type === 'rotated' && e.reason === 'kick' ? [e.epoch] : []))[0]!;
        expect(kicked.state!.epochs.every((e) => e.epoch < kickEpoch)).toBe(true);
      }
      // Every refusal on the way was typed (checkedStep asserts ZeroRoomError) and none was a forgery.
      const codes = new Set([...net.ownerErrors, ...nodes.flatMap((n) => n.errors)].map((e) => e.code));
      for (const bad of [
        'room.bad-signature',
        'room.impersonation',
        'room.not-owner',
        'room.fork',
        'room.bad-ciphertext',
        'room.bad-rekey',
      ]) {
        expect(codes.has(bad), `unexpected ${bad}`).toBe(false);
      }
    });
  }
});

describe('room under reordering inside links (the link guarantee broken on purpose)', () => {
  // Safety only: whatever order, duplication or loss, nothing forged is accepted, nothing crashes
  // (every refusal is typed: checkedStep), views stay in index order without repeats, and a kicked
  // member reads nothing sent after its removal.
  it('stays safe for random schedules', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const net = new Net(device(`owner-shuffle-${seed}`), { rotateEveryMessages: 4 });
        const r = rng(seed);
        net.opts = { interleave: r, fullShuffle: true, dupRate: 0.15, dropRate: 0.05 };
        const nodes = ['a', 'b', 'c'].map((n) => net.join(n, net.invite()));
        net.run();
        for (const n of nodes) if (n.state!.phase !== 'member' && n.state!.phase !== 'refused') net.reconnect(n);
        net.run();
        const victim = net.current()[0];
        for (let i = 0; i < 15; i++) {
          for (const n of net.current()) net.member(n, { kind: 'send', text: `x${i}-${n.name}`, now: net.now });
          if (i === 7 && victim) net.owner({ kind: 'kick', member: victim.state!.selfId, now: net.now });
          if (i % 5 === 4) for (const n of net.current()) net.reconnect(n);
          net.run();
        }
        for (const n of nodes) {
          const idx = n.events.flatMap((e) => (e.type === 'message' ? [e.idx] : []));
          expect(new Set(idx).size).toBe(idx.length);
          // A message the owner supplied for a sender-chain gap (5.6) comes late, marked as such.
          const ordered = n.events.flatMap((e) => (e.type === 'message' && e.late !== true ? [e.idx] : []));
          expect([...ordered].sort((x, y) => x - y)).toEqual(ordered);
        }
        if (victim) {
          const kickAt = net.ownerEvents.findIndex((e) => e.type === 'member-left');
          const later = net.ownerEvents.slice(kickAt).flatMap((e) => (e.type === 'message' ? [e.text] : []));
          for (const t of later) expect(victim.texts()).not.toContain(t);
        }
        const codes = new Set([...net.ownerErrors, ...nodes.flatMap((n) => n.errors)].map((e) => e.code));
        for (const bad of [
          'room.bad-signature',
          'room.impersonation',
          'room.not-owner',
          'room.fork',
          'room.bad-ciphertext',
          'room.bad-rekey',
        ]) {
          expect(codes.has(bad), `unexpected ${bad}`).toBe(false);
        }
      }),
      { numRuns: 4 },
    );
  });
});

describe('join retries', () => {
  it('a lost welcome is sent again (with the current key) when the joiner reconnects', () => {
    const net = new Net(device('owner-retry'));
    const y = net.join('y', net.invite());
    net.hello(y);
    net.deliverUp(y);
    const accept = net.take(y, 'down');
    net.member(y, { kind: 'received', bytes: accept[0]!, now: net.now });
    net.deliverUp(y); // confirm: the owner admits y and sends welcome (+ history)
    net.take(y, 'down'); // ... which is lost
    net.owner({ kind: 'rotate', now: net.now });
    net.take(y, 'down'); // the rotation too
    expect(y.state!.phase).toBe('accepted');
    net.reconnect(y); // y re-sends its confirm; the owner answers with welcome + resync (the key sealed to y)
    net.run();
    expect(y.state!.phase).toBe('member');
    expect(y.state!.epoch).toBe(net.ownerState.epoch);
    everyoneReadsEveryone(net, 'retry');
  });
});
