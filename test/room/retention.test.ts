// Section 5.15: what the machines keep. Without these bounds a long-lived room outgrows the state
// codec's limits, and a state that no longer decodes loses the room on the next start; with them,
// a device compromised later holds no key it no longer needs.
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import { ownerStep } from '../../protocol/room/owner.ts';
import { decodeMemberState, decodeOwnerState, encodeMemberState, encodeOwnerState } from '../../protocol/room/state-codec.ts';
import { MAX_INVITE_RECORDS, MAX_PENDING_INVITES, OWNER_MIN_CHAIN } from '../../protocol/room/types.ts';
import { Net, device, everyoneReadsEveryone } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

describe('retention', () => {
  it('the owner keeps the keys its log still needs, and its chain back to them; then deletes them', () => {
    const net = new Net(device('owner'), { maxLogEntries: 4 });
    net.join('alice', net.invite());
    net.run();
    // Epochs 1..5, one message each: the log (4 entries) holds epochs 2..5.
    for (let i = 0; i < 5; i++) {
      net.owner({ kind: 'rotate', now: net.now });
      net.owner({ kind: 'send', text: `e${i + 1}`, now: net.now });
      net.run();
    }
    expect(net.ownerState.log.map((e) => e.epoch)).toEqual([2, 3, 4, 5]);
    // Keys are pruned at the next chain entry: epoch 1's key went when epoch 5 began (the log still
    // held epoch 1 then), so the owner holds 1..5 until the next rotation.
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    expect(net.ownerState.epochs.map((e) => e.epoch)).toEqual([2, 3, 4, 5, 6]);
    expect(net.ownerState.epochs.every((e) => e.key !== null)).toBe(true);
    expect(decodeOwnerState(encodeOwnerState(net.ownerState))).toEqual(net.ownerState);
    // Once the log moves past them, their keys go too; the previous epoch's stays (grace).
    for (let i = 0; i < 4; i++) net.owner({ kind: 'send', text: `e6-${i}`, now: net.now });
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    expect(net.ownerState.epochs.map((e) => e.epoch)).toEqual([6, 7]);
    // A short chain is kept whole (at least OWNER_MIN_CHAIN links).
    expect(net.ownerState.chain.map((l) => l.n)).toEqual(Array.from({ length: net.ownerState.chain.length }, (_, i) => i));
    everyoneReadsEveryone(net, 'after the rotations');
  });

  it(`the owner keeps its chain back to the oldest epoch its log needs, at least ${OWNER_MIN_CHAIN} links`, () => {
    const net = new Net(device('owner-long'), { maxLogEntries: 3 });
    // Straight through ownerStep: the harness' frozen-input check per step would make this quadratic.
    let s = ownerStep(net.ctx, net.ownerState, { kind: 'send', text: 'old', now: net.now }).state;
    for (let i = 0; i < OWNER_MIN_CHAIN + 20; i++) s = ownerStep(net.ctx, s, { kind: 'rotate', now: net.now }).state;
    // The log still holds the epoch-0 message: the chain reaches back to the create entry, and key 0 stays.
    expect(s.chain[0]!.n).toBe(0);
    expect(s.epochs.map((e) => e.epoch)).toEqual([0, s.epoch - 1, s.epoch]);
    for (let i = 0; i < 3; i++) s = ownerStep(net.ctx, s, { kind: 'send', text: `new${i}`, now: net.now }).state;
    s = ownerStep(net.ctx, s, { kind: 'rotate', now: net.now }).state;
    // Now it does not: the newest OWNER_MIN_CHAIN links remain, and only the keys still needed.
    expect(s.chain).toHaveLength(OWNER_MIN_CHAIN);
    expect(s.chain.at(-1)!.n).toBe(OWNER_MIN_CHAIN + 21);
    expect(s.epochs.map((e) => e.epoch)).toEqual([s.epoch - 1, s.epoch]);
    expect(decodeOwnerState(encodeOwnerState(s))).toEqual(s);
  }, 60_000);

  it('a member keeps the epochs whose messages can still reach it: after a catch-up, the current and the previous', () => {
    const net = new Net(device('owner-m'), { rotateEveryMessages: 2 });
    const alice = net.join('alice', net.invite());
    net.run();
    expect(alice.state!.epochs.map((e) => e.epoch)).toEqual([0]);
    net.take(alice, 'down');
    for (let i = 0; i < 9; i++) net.owner({ kind: 'send', text: `m${i}`, now: net.now });
    net.take(alice, 'down'); // away across four rotations
    expect(net.ownerState.epoch).toBe(4);
    net.reconnect(alice);
    net.run();
    expect(alice.texts()).toEqual(Array.from({ length: 9 }, (_, i) => `m${i}`));
    // Index 9 is the next one: epoch 4 is in force there; epoch 3 may still come in its grace window.
    expect(alice.state!.epochs.map((e) => e.epoch)).toEqual([3, 4]);
    expect(alice.state!.epochs.map((e) => e.ann === null)).toEqual([true, false]);
    expect(decodeMemberState(encodeMemberState(alice.state!))).toEqual(alice.state);
    everyoneReadsEveryone(net, 'after the catch-up');
  });

  it(`refuses a new invite while ${MAX_PENDING_INVITES} are pending, and changes nothing`, () => {
    const net = new Net(device('owner'));
    let s = net.ownerState;
    for (let i = 0; i < MAX_PENDING_INVITES; i++) s = ownerStep(net.ctx, s, { kind: 'invite', now: net.now }).state;
    net.ownerState = s;
    const before = net.ownerState;
    const out = net.owner({ kind: 'invite', now: net.now });
    expect(out.error?.code).toBe('room.invite-limit');
    expect(out.state).toBe(before);
    expect(out.effects).toEqual([]);
  });

  it(`keeps at most ${MAX_INVITE_RECORDS} invite records, dropping the oldest retired ones`, () => {
    const net = new Net(device('owner'));
    const pending = net.invite(); // the oldest record of all, and still pending at the end
    let firstRevoked = '';
    // Straight through ownerStep: Net's frozen-input check per step would make this quadratic.
    let s = net.ownerState;
    for (let i = 0; i < MAX_INVITE_RECORDS + 5; i++) {
      s = ownerStep(net.ctx, s, { kind: 'invite', now: net.now }).state;
      const id = s.invites.at(-1)!.id;
      if (firstRevoked === '') firstRevoked = id;
      const out = ownerStep(net.ctx, s, { kind: 'revoke', invite: id as never, now: net.now });
      expect(out.error).toBeUndefined();
      s = out.state;
    }
    net.ownerState = s;
    const ids = net.ownerState.invites.map((i) => i.id);
    expect(ids).toHaveLength(MAX_INVITE_RECORDS);
    expect(net.ownerState.invites[0]!.status).toBe('pending');
    expect(ids).not.toContain(firstRevoked);
    expect(decodeOwnerState(encodeOwnerState(net.ownerState)).invites).toHaveLength(MAX_INVITE_RECORDS);
    // The pending invite still admits.
    const bob = net.join('bob', pending);
    net.run();
    expect(bob.state!.phase).toBe('member');
  });
});
