// State format 1 -> 2 (docs/PROTOCOL.md 5.15): states written by the encoder before the chain
// (bytes captured at commit bf22ebc in fixtures/state-v1.json, with the devices' test keys) still
// decode, migrate, and the room carries on: members who were current, behind, mid-join and
// joining, a removed one who stays out, and a v1 invite link that still admits.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { asBoxSecretKey, asEcPrivateKey, asEcPublicKey, boxKeyPairFromSecret, fromHex, initCrypto } from '../../crypto/index.ts';
import { Fields, decode, encode, type Encodable } from '../../protocol/msgpack.ts';
import {
  StateError,
  decodeInviteUrl,
  decodeMemberState,
  decodeOwnerState,
  encodeMemberState,
  encodeOwnerState,
  memberSafetyCode,
  ownerSafetyCode,
  safetyCode,
} from '../../protocol/room/index.ts';
import { MemberNode, Net, everyoneReadsEveryone, seededRandom, type Device } from './harness.ts';

interface Keys {
  ipub: string;
  ipriv: string;
  nsec: string;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/state-v1.json', import.meta.url), 'utf8')) as {
  now: number;
  owner: Keys & { state: string };
  members: Record<'a' | 'b' | 'c' | 'y' | 'z', Keys & { state: string }>;
  pendingInviteUrl: string;
  texts: { a: string[] };
};

beforeAll(async () => {
  await initCrypto();
});

function dev(k: Keys, seed: string): Device {
  return {
    identity: { publicKey: asEcPublicKey(fromHex(k.ipub)), privateKey: asEcPrivateKey(fromHex(k.ipriv)) },
    box: boxKeyPairFromSecret(asBoxSecretKey(fromHex(k.nsec))),
    random: seededRandom(seed),
  };
}

/** The fixture's room, decoded from its v1 bytes into a harness network. */
function oldRoom(): { net: Net; nodes: Record<'a' | 'b' | 'c' | 'y' | 'z', MemberNode> } {
  const net = new Net(dev(fixture.owner, 'owner-migrated'));
  net.ownerState = decodeOwnerState(fromHex(fixture.owner.state));
  net.now = fixture.now + 1000;
  const nodes = {} as Record<'a' | 'b' | 'c' | 'y' | 'z', MemberNode>;
  for (const name of ['a', 'b', 'c', 'y', 'z'] as const) {
    const node = new MemberNode(name, dev(fixture.members[name], `migrated-${name}`));
    node.state = decodeMemberState(fromHex(fixture.members[name].state));
    net.members.set(node.peer, node);
    nodes[name] = node;
  }
  return { net, nodes };
}

describe('state format 1', () => {
  it('decodes and migrates every role and phase, and re-encodes as format 2', () => {
    const { net, nodes } = oldRoom();
    const bytes = fromHex(fixture.owner.state);
    expect(versionOf(bytes)).toBe(1);
    const o = net.ownerState;
    expect(o.chain).toHaveLength(1);
    expect(o.chain[0]).toMatchObject({ n: o.epoch, epoch: o.epoch, op: 'legacy' });
    expect(o.epochs.map((e) => e.epoch)).toEqual([o.epoch - 1, o.epoch]);
    expect(o.members.every((m) => m.lastHash === null)).toBe(true);
    expect(o.log.length).toBeGreaterThan(0);
    expect(Object.values(nodes).map((n) => n.state!.phase)).toEqual(['member', 'member', 'removed', 'accepted', 'joining']);
    expect(nodes.a.state!.chain).toBe(nodes.a.state!.epoch);
    expect(nodes.b.state!.epoch).toBeLessThan(o.epoch); // away across rotations when saved
    expect(nodes.z.state!.ownerIpub).not.toBeNull(); // v1 invites carried the owner key
    const again = encodeOwnerState(o);
    expect(versionOf(again)).toBe(2);
    expect(decodeOwnerState(again)).toEqual(o);
    for (const n of Object.values(nodes)) expect(decodeMemberState(encodeMemberState(n.state!))).toEqual(n.state);
  });

  it('keeps the safety code across the upgrade (it commits to the same head)', () => {
    const { net, nodes } = oldRoom();
    expect(ownerSafetyCode(net.ownerState)).toBe(memberSafetyCode(nodes.a.state!));
    expect(ownerSafetyCode(net.ownerState)).toBe(safetyCode(net.ownerState.room, net.ownerState.chain[0]!.hash));
  });

  it('the room carries on: current, behind, mid-join and joining members, a v1 invite, the removed stays out', () => {
    const { net, nodes } = oldRoom();
    const { a, b, c, y, z } = nodes;
    // Everyone's link comes back.
    for (const n of [a, b, y, z]) net.reconnect(n);
    net.run();
    for (const n of [a, b, y, z]) expect(n.state!.phase, n.name).toBe('member');
    // b was away across two rotations: it reads what it missed (the owner still had those keys),
    // re-anchored without a warning (its head was a format-1 announcement).
    for (const t of fixture.texts.a.slice(-5)) expect(b.texts(), t).toContain(t);
    for (const n of [a, b, y, z])
      expect(
        n.events.filter((e) => e.type === 'warning'),
        n.name,
      ).toEqual([]);
    // The first format-2 entries (the admissions of y and z) reached everyone.
    expect(net.ownerState.chain.map((l) => l.op)).toEqual(['legacy', 'add', 'add']);
    const code = ownerSafetyCode(net.ownerState);
    for (const n of [a, b, y, z]) expect(memberSafetyCode(n.state!), n.name).toBe(code);
    // b's saved state is older than what it sent afterwards (the fixture saved it before its last
    // message): its next sequence number was used already, and is refused as a replay.
    net.member(b, { kind: 'send', text: 'reused seq', now: net.now });
    net.run();
    expect(b.events).toContainEqual({ type: 'send-refused', code: 'room.replay', seq: b.state!.seq });
    everyoneReadsEveryone(net, 'after the upgrade', [c]);
    // A v1 link issued before the upgrade still admits.
    expect(decodeInviteUrl(fixture.pendingInviteUrl).v).toBe(1);
    const w = net.join('w', fixture.pendingInviteUrl);
    net.run();
    expect(w.state!.phase).toBe('member');
    everyoneReadsEveryone(net, 'with w', [c]);
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    everyoneReadsEveryone(net, 'rotated', [c]);
    expect(c.state!.epochs.every((e) => e.epoch < net.ownerState.epoch - 1)).toBe(true);
    for (const n of [a, b, y, z, w]) expect(memberSafetyCode(n.state!), n.name).toBe(ownerSafetyCode(net.ownerState));
    expect(net.ownerErrors.map((e) => e.code)).toEqual(['room.replay']); // b's reused sequence number, above
  });

  it('refuses a format-1 state with format-2 fields, and a format-2 state without them', () => {
    const withField = (bytes: Uint8Array, k: string, v: Encodable) => {
      const o = plainOf(bytes);
      o[k] = v;
      return encode(o as Encodable);
    };
    expect(() => decodeOwnerState(withField(fromHex(fixture.owner.state), 'chain', []))).toThrow(StateError);
    expect(() => decodeMemberState(withField(fromHex(fixture.members.a.state), 'tail', new Uint8Array(32)))).toThrow(StateError);
    const v2 = plainOf(encodeMemberState(decodeMemberState(fromHex(fixture.members.a.state))));
    delete v2.tail;
    expect(() => decodeMemberState(encode(v2 as Encodable))).toThrow(/missing field "tail"/);
  });
});

const versionOf = (bytes: Uint8Array) => Fields.fromBytes(bytes, 'state').int('v', { min: 0, max: 100 });

/** A msgpack map decoded to a plain object (bins as Uint8Array), to edit one field. */
function plainOf(bytes: Uint8Array): Record<string, unknown> {
  const conv = (v: ReturnType<typeof decode>): unknown => {
    switch (v.t) {
      case 'nil':
        return null;
      case 'arr':
        return v.v.map(conv);
      case 'map':
        return Object.fromEntries([...v.v].map(([k, x]) => [k, conv(x)]));
      default:
        return v.v;
    }
  };
  return conv(decode(bytes)) as Record<string, unknown>;
}
