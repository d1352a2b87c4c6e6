// Claims of docs/THREAT-MODEL.md ("Deniability", "A stolen device") and PROTOCOL.md section 8, each
// as a test that fails if the claim stops holding. Owned by the brief that wrote those sections; the
// room machines are used as they are, not changed.
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, type EcPublicKey } from '../../crypto/index.ts';
import { decodeToMember, type MemberId } from '../../protocol/room/index.ts';
import { openBody, openEnvelope, sealEnvelope } from '../../protocol/room/verify.ts';
import { MemberNode, Net, device } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

function room(seed: string): { net: Net; a: MemberNode; b: MemberNode } {
  const net = new Net(device(seed));
  const a = net.join('a', net.invite());
  net.run();
  const b = net.join('b', net.invite());
  net.run();
  expect(a.state!.phase).toBe('member');
  expect(b.state!.phase).toBe('member');
  return { net, a, b };
}

describe('deniability: none (THREAT-MODEL.md "Deniability")', () => {
  it("any member can prove to a third party what another member sent: the envelope, the epoch key and the sender's public key suffice", () => {
    const { net, a, b } = room('deniability');
    net.wire.clear();
    net.member(a, { kind: 'send', text: 'I said this', now: net.now });
    net.run();
    // b keeps what it received (its storage holds the same); it hands the judge three things.
    const delivered = (net.wire.get(b.peer) ?? []).map(decodeToMember).find((m) => m.type === 'deliver' && m.from === a.state!.selfId);
    if (delivered?.type !== 'deliver') throw new Error('b got no deliver from a');
    const epochKey = b.state!.epochs.find((e) => e.epoch === b.state!.epoch)!.key!;
    const aPublic = b.state!.members.find((m) => m.info.id === a.state!.selfId)!.info.ipub as EcPublicKey;

    // The judge: no secret of its own, only public verification.
    const inner = openEnvelope(aPublic, delivered.env, a.state!.selfId, b.state!.room);
    expect(openBody(epochKey, inner).text).toBe('I said this');

    // b cannot make such a proof for a text a did not send: b holds the room key but not a's identity key.
    const forged = sealEnvelope(b.dev.identity.privateKey, {
      room: b.state!.room,
      epoch: inner.epoch,
      from: a.state!.selfId as MemberId,
      seq: inner.seq + 1,
      chain: inner.chain ?? 0,
      prev: inner.prev ?? new Uint8Array(32),
      key: epochKey,
      body: { text: 'a never said this', ts: 0 },
    });
    expect(() => openEnvelope(aPublic, forged, a.state!.selfId, b.state!.room)).toThrow(
      expect.objectContaining({ code: 'room.bad-signature' }),
    );
  });
});

describe('a stolen device before key updates (THREAT-MODEL.md "A stolen device")', () => {
  it('a copy of a member (storage + password) reconnects as that member and reads every later key and message until the owner removes it', () => {
    const { net, a, b } = room('stolen');
    // The thief copies b's device: its identity and peer keys and its room state. It then connects
    // with b's peer key (b itself is offline): the owner sees only b's link coming back.
    const thief = new MemberNode('thief', b.dev);
    thief.state = b.state;
    net.members.set(b.peer, thief);
    net.reconnect(thief);
    net.run();
    // The room rotates (a new key, fresh randomness, sealed to b's identity key): the thief gets it.
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    net.member(a, { kind: 'send', text: 'after the theft', now: net.now });
    net.run();
    expect(thief.texts()).toContain('after the theft');
    expect(thief.state!.epoch).toBe(net.ownerState.epoch);

    // Only removing b ends it: the removal rotates and the owner stops trusting b's peer key.
    net.owner({ kind: 'kick', member: b.state!.selfId, now: net.now });
    net.run();
    net.member(a, { kind: 'send', text: 'after the removal', now: net.now });
    net.run();
    expect(a.texts()).toContain('after the removal');
    expect(thief.texts()).not.toContain('after the removal');
    expect(thief.state!.phase).toBe('removed');
    expect(net.ownerState.members.some((m) => m.peer === b.peer)).toBe(false);
  });
});
