// Section 5.11: what the machines keep. Without these bounds a long-lived room outgrows the state
// codec's limits, and a state that no longer decodes loses the room on the next start.
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import { ownerStep } from '../../protocol/room/owner.ts';
import { decodeMemberState, decodeOwnerState, encodeMemberState, encodeOwnerState } from '../../protocol/room/state-codec.ts';
import {
  MAX_INVITE_RECORDS,
  MAX_PENDING_INVITES,
  MEMBER_KEPT_EPOCHS,
  OWNER_KEPT_EPOCHS,
  type EpochRecord,
  type OwnerState,
} from '../../protocol/room/types.ts';
import { Net, device, everyoneReadsEveryone } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

describe('retention', () => {
  it('the owner keeps the current and the previous epoch only, and its state still decodes', () => {
    const net = new Net(device('owner'));
    net.join('alice', net.invite());
    net.run();
    const seen: EpochRecord[] = [...net.ownerState.epochs];
    for (let i = 0; i < 5; i++) {
      net.owner({ kind: 'rotate', now: net.now });
      seen.push(net.ownerState.epochs.at(-1)!);
      net.run();
    }
    expect(net.ownerState.epochs.map((e) => e.epoch)).toEqual([4, 5]);
    expect(OWNER_KEPT_EPOCHS).toBe(2);
    expect(decodeOwnerState(encodeOwnerState(net.ownerState))).toEqual(net.ownerState);
    everyoneReadsEveryone(net, 'after five rotations');
    // A state written before retention (epochs 0..epoch) still decodes; a gap does not.
    const old: OwnerState = { ...net.ownerState, epochs: seen };
    expect(decodeOwnerState(encodeOwnerState(old)).epochs).toHaveLength(6);
    expect(() => decodeOwnerState(encodeOwnerState({ ...old, epochs: seen.filter((e) => e.epoch !== 2) }))).toThrow(/epochs are not a run/);
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

  it(`a member keeps the newest ${MEMBER_KEPT_EPOCHS} epochs and keeps reading`, () => {
    const net = new Net(device('owner'));
    const alice = net.join('alice', net.invite());
    net.run();
    for (let i = 0; i < MEMBER_KEPT_EPOCHS + 3; i++) {
      net.owner({ kind: 'rotate', now: net.now });
      net.run();
    }
    const epochs = alice.state!.epochs.map((e) => e.epoch);
    expect(epochs).toHaveLength(MEMBER_KEPT_EPOCHS);
    expect(epochs.at(-1)).toBe(net.ownerState.epoch);
    expect(epochs[0]).toBe(net.ownerState.epoch - MEMBER_KEPT_EPOCHS + 1);
    expect(alice.errors).toEqual([]);
    expect(decodeMemberState(encodeMemberState(alice.state!))).toEqual(alice.state);
    everyoneReadsEveryone(net, 'after many rotations');
  }, 60_000);
});
