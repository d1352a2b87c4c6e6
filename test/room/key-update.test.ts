// Member key updates (docs/PROTOCOL.md 5.8.1): the `key-update` request, its strict decoder, the
// owner's `update` chain entry, the member's switch to its new keys, and what a copy of the old
// keys gets afterwards (nothing new).
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, openFrom, sign, type EcPublicKey } from '../../crypto/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { encode } from '../../protocol/msgpack.ts';
import { decodeChainBody, decodeToMember, decodeToOwner, encodeMessage, MAX_KEY_UPDATE } from '../../protocol/room/codec.ts';
import { RoomError } from '../../protocol/room/errors.ts';
import { memberIdOf, peerKeyHex } from '../../protocol/room/ids.ts';
import { decodeKeyUpdateBody, encodeKeyUpdateBody, openKeyUpdate, signKeyUpdate } from '../../protocol/room/key-update.ts';
import { memberSafetyCode, ownerSafetyCode, ownerStep, type MemberState, type OwnerState, type Step } from '../../protocol/room/index.ts';
import { decodeMemberState, decodeOwnerState, encodeMemberState, encodeOwnerState } from '../../protocol/room/state-codec.ts';
import { verify } from '../../crypto/index.ts';
import { MemberNode, Net, checkedStep, device, everyoneReadsEveryone, type Device } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

function setup(seed: string, names = ['a', 'b']): { net: Net; nodes: MemberNode[] } {
  const net = new Net(device(seed));
  const nodes = names.map((n) => net.join(n, net.invite()));
  net.run();
  for (const n of nodes) expect(n.state!.phase).toBe('member');
  return { net, nodes };
}

function sentTypes(out: Step<unknown>): string[] {
  return out.effects.flatMap((e) => (e.kind === 'send' ? [decodeToMember(e.bytes).type] : e.kind === 'close' ? ['close'] : []));
}

/** Feed bytes to the owner as if from `peer`; assert refusal with `code` and no state change. */
function ownerRefuses(net: Net, peer: string, bytes: Uint8Array, code: string): Step<OwnerState> {
  const before = net.ownerState;
  const out = checkedStep((s: OwnerState, e: Parameters<typeof ownerStep>[2]) => ownerStep(net.ctx, s, e), before, {
    kind: 'received',
    from: peer as never,
    bytes,
    now: net.now,
  });
  expect(out.error?.code).toBe(code);
  expect(out.state).toBe(before);
  return out;
}

/** The key-update message `node` would send for `next` (built like the machine builds it). */
function request(node: MemberNode, next: Device, over: Partial<{ id: string; n: number; room: Uint8Array }> = {}): Uint8Array {
  const s = node.state!;
  const body = {
    room: over.room ?? s.room,
    id: (over.id ?? s.selfId) as never,
    n: over.n ?? s.chain,
    ipub: next.identity.publicKey,
    npub: next.box.publicKey,
  };
  const signed = signKeyUpdate(node.dev.identity.privateKey, next.identity, body);
  return encodeMessage({ type: 'key-update', old: signed.old, new: signed.new });
}

/** Runs a whole update of `node` to a new device and reconnects it on its new link. Returns the old device. */
function update(net: Net, node: MemberNode, seed: string): Device {
  const old = node.dev;
  node.pending = device(seed);
  expect(net.member(node, { kind: 'update-keys', now: net.now }).error).toBeUndefined();
  net.run();
  expect(node.state!.selfId).toBe(memberIdOf(node.pending.identity.publicKey));
  net.adoptKeys(node);
  net.run();
  return old;
}

describe('key-update decoder (5.8.1)', () => {
  it('round-trips and refuses malformed, oversized and unknown fields', () => {
    const a = device('dec-a');
    const b = device('dec-b');
    const body = {
      room: new Uint8Array(16).fill(1),
      id: memberIdOf(a.identity.publicKey),
      n: 3,
      ipub: b.identity.publicKey,
      npub: b.box.publicKey,
    };
    expect(decodeKeyUpdateBody(encodeKeyUpdateBody(body))).toEqual(body);
    const signed = signKeyUpdate(a.identity.privateKey, b.identity, body);
    expect(decodeToOwner(encodeMessage({ type: 'key-update', ...signed }))).toEqual({ type: 'key-update', ...signed });
    const bad = [
      { type: 'key-update', old: signed.old },
      { type: 'key-update', old: signed.old, new: signed.new, extra: 1 },
      { type: 'key-update', old: new Uint8Array(0), new: signed.new },
      { type: 'key-update', old: new Uint8Array(MAX_KEY_UPDATE + 1), new: signed.new },
      { type: 'key-update', old: 'text', new: signed.new },
    ];
    for (const m of bad) expect(() => decodeToOwner(encode(m as never))).toThrow(DecodeError);
    const fields = { type: 'key-update', room: body.room, id: body.id, n: 3, ipub: body.ipub, npub: body.npub };
    const badBodies = [
      { ...fields, type: 'chain' },
      { ...fields, extra: true },
      { ...fields, id: 'XYZ' },
      { ...fields, n: -1 },
      { ...fields, n: 1.5 },
      { ...fields, ipub: new Uint8Array(45) },
      { ...fields, npub: new Uint8Array(31) },
      { ...fields, room: new Uint8Array(15) },
    ];
    for (const m of badBodies) expect(() => decodeKeyUpdateBody(encode(m as never))).toThrow(DecodeError);
    expect(() => decodeKeyUpdateBody(new Uint8Array(600))).toThrow(DecodeError);
    // An update to the same identity key is no update.
    expect(() => signKeyUpdate(a.identity.privateKey, a.identity, { ...body, id: memberIdOf(a.identity.publicKey) })).toThrow(RangeError);
  });

  it('needs both signatures over the same body', () => {
    const a = device('sig-a');
    const b = device('sig-b');
    const c = device('sig-c');
    const body = {
      room: new Uint8Array(16),
      id: memberIdOf(a.identity.publicKey),
      n: 0,
      ipub: b.identity.publicKey,
      npub: b.box.publicKey,
    };
    const ok = signKeyUpdate(a.identity.privateKey, b.identity, body);
    expect(openKeyUpdate(a.identity.publicKey, ok)).toEqual(body);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof RoomError ? e.code : String(e);
      }
      return 'none';
    };
    // Not the current key: someone else authorizes.
    expect(code(() => openKeyUpdate(c.identity.publicKey as EcPublicKey, ok))).toBe('room.bad-signature');
    // No proof of possession: the new part is signed by another key.
    expect(
      code(() => openKeyUpdate(a.identity.publicKey, { old: ok.old, new: sign(c.identity.privateKey, encodeKeyUpdateBody(body)) })),
    ).toBe('room.bad-signature');
    // The new key signed a different body (another room).
    const other = signKeyUpdate(a.identity.privateKey, b.identity, { ...body, room: new Uint8Array(16).fill(9) });
    expect(code(() => openKeyUpdate(a.identity.publicKey, { old: ok.old, new: other.new }))).toBe('room.bad-signature');
    expect(verify(b.identity.publicKey, ok.new)).toEqual(encodeKeyUpdateBody(body));
  });
});

describe('member key update (5.8.1)', () => {
  it('commits an update entry, rekeys, switches the member, and everyone keeps reading', () => {
    const { net, nodes } = setup('ku-basic');
    const [a, b] = nodes as [MemberNode, MemberNode];
    everyoneReadsEveryone(net, 'before');
    const oldId = a.state!.selfId;
    const oldPeer = a.peer;
    const epoch = net.ownerState.epoch;
    a.pending = device('ku-basic-new');
    const newId = memberIdOf(a.pending.identity.publicKey);
    const asked = net.member(a, { kind: 'update-keys', now: net.now });
    expect(asked.state).toBe(a.state); // nothing changes until the owner commits
    net.run();
    // The owner: one update entry, a new epoch, the old peer refused, the new one a member.
    const head = net.ownerState.chain[net.ownerState.chain.length - 1]!;
    expect(head.op).toBe('update');
    const entry = decodeChainBody(verify(net.ownerDev.identity.publicKey, head.ann));
    expect(entry.op === 'update' && entry.removed).toBe(oldId);
    expect(net.ownerState.epoch).toBe(epoch + 1);
    expect(net.ownerState.removedPeers).toContain(oldPeer);
    expect(net.ownerState.members.map((m) => m.info.id)).toContain(newId);
    expect(net.ownerState.members.map((m) => m.info.id)).not.toContain(oldId);
    expect(net.ownerEvents).toContainEqual({
      type: 'keys-updated',
      old: oldId,
      member: { id: newId, name: 'a', owner: false },
      self: false,
    });
    // The member: switched in one step.
    expect(a.state!.selfId).toBe(newId);
    expect(a.state!.seq).toBe(0);
    expect(a.state!.epoch).toBe(epoch + 1);
    expect(a.events).toContainEqual({ type: 'keys-updated', old: oldId, member: { id: newId, name: 'a', owner: false }, self: true });
    // b: the old id is a former member, the new one a member; the safety codes agree.
    expect(b.state!.members.map((m) => m.info.id)).toContain(newId);
    expect(b.state!.former.map((m) => m.info.id)).toContain(oldId);
    expect(b.events.some((e) => e.type === 'keys-updated' && !e.self)).toBe(true);
    expect(memberSafetyCode(b.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
    // Both states still decode (the new chain op is stored).
    expect(decodeOwnerState(encodeOwnerState(net.ownerState))).toEqual(net.ownerState);
    expect(decodeMemberState(encodeMemberState(a.state!))).toEqual(a.state);
    net.adoptKeys(a);
    net.run();
    everyoneReadsEveryone(net, 'after');
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('a copy of the old keys gets no new room key and no new message', () => {
    const { net, nodes } = setup('ku-copy');
    const [a] = nodes as [MemberNode, MemberNode];
    const copyState: MemberState = a.state!;
    const old = update(net, a, 'ku-copy-new');
    const copy = new MemberNode('copy', old);
    copy.state = copyState;
    net.attach(copy);
    // The copy connects on the old peer key: refused and closed, sent nothing else.
    const before = net.ownerState;
    const sync = encodeMessage({ type: 'sync', last_idx: copyState.lastIdx, epoch: copyState.epoch, chain: copyState.chain });
    const out = ownerRefuses(net, copy.peer, sync, 'room.not-member');
    expect(sentTypes(out)).toEqual(['removed', 'close']);
    expect(net.ownerState).toBe(before);
    // It cannot send either.
    net.member(copy, { kind: 'send', text: 'from the copy', now: net.now });
    net.run();
    expect(net.ownerEvents.some((e) => e.type === 'message' && e.text === 'from the copy')).toBe(false);
    everyoneReadsEveryone(net, 'later', [copy]);
    // Nothing the owner sent after the update opens with the old identity key.
    expect(copy.state!.epoch).toBe(copyState.epoch);
    expect(copy.state!.phase).toBe('removed');
    for (const bytes of net.wire.get(copy.peer) ?? []) {
      const msg = decodeToMember(bytes);
      if (msg.type === 'chain' && msg.key !== undefined) {
        const entry = decodeChainBody(verify(net.ownerDev.identity.publicKey, msg.ann));
        if (entry.op === 'update') expect(() => openFrom(old.identity.privateKey, net.ownerDev.identity.publicKey, msg.key!)).toThrow();
      }
    }
  });

  it('refuses replayed, foreign, out-of-order and malformed updates without a state change', () => {
    const { net, nodes } = setup('ku-refuse', ['a', 'b']);
    const [a, b] = nodes as [MemberNode, MemberNode];
    const next = device('ku-refuse-next');
    // Another member's id, our signature: impersonation.
    ownerRefuses(net, a.peer, request(a, next, { id: b.state!.selfId }), 'room.impersonation');
    // Another room.
    ownerRefuses(net, a.peer, request(a, next, { room: new Uint8Array(16).fill(7) }), 'room.wrong-room');
    // A chain position beyond the owner's head.
    ownerRefuses(net, a.peer, request(a, next, { n: a.state!.chain + 5 }), 'room.chain-gap');
    // New keys that are another member's.
    ownerRefuses(net, a.peer, request(a, b.dev), 'room.replay');
    // Sent over b's link but signed by a: not b's current key.
    ownerRefuses(net, b.peer, request(a, next), 'room.bad-signature');
    // Malformed bytes.
    ownerRefuses(net, a.peer, encode({ type: 'key-update', old: new Uint8Array(3), new: new Uint8Array(3) }), 'room.bad-signature');
    ownerRefuses(net, a.peer, encode({ type: 'key-update', old: new Uint8Array(3) }), 'decode');
    // A non-member.
    ownerRefuses(net, peerKeyHex(next.box.publicKey), request(a, next), 'room.not-member');
    // The real one goes through; the same bytes again (replayed) are refused: the old link is gone.
    const real = request(a, next);
    expect(net.owner({ kind: 'received', from: a.peer, bytes: real, now: net.now }).error).toBeUndefined();
    ownerRefuses(net, a.peer, real, 'room.not-member');
    // Replayed over the new link: its key is not the one that signed.
    ownerRefuses(net, peerKeyHex(next.box.publicKey), real, 'room.bad-signature');
  });

  it('a member refuses an update of its own keys it did not ask for, and a member asks only with new keys', () => {
    const { net, nodes } = setup('ku-unasked');
    const [a] = nodes as [MemberNode, MemberNode];
    expect(net.member(a, { kind: 'update-keys', now: net.now }).error?.code).toBe('room.state');
    // The owner commits an update for a (as if a had asked), but a holds no pending keys now.
    const next = device('ku-unasked-next');
    net.owner({ kind: 'received', from: a.peer, bytes: request(a, next), now: net.now });
    const chain = net.take(a, 'down');
    const before = a.state!;
    for (const bytes of chain) {
      const out = net.member(a, { kind: 'received', bytes, now: net.now });
      if (decodeToMember(bytes).type === 'chain') expect(out.error?.code).toBe('room.bad-rekey');
    }
    expect(a.state!.selfId).toBe(before.selfId);
  });

  it('a member that missed the update entry (crash after asking) catches up with its pending keys', () => {
    const { net, nodes } = setup('ku-crash');
    const [a, b] = nodes as [MemberNode, MemberNode];
    a.pending = device('ku-crash-new');
    net.member(a, { kind: 'update-keys', now: net.now });
    net.deliverUp(a);
    // The chain entry to a is lost with its old link; it restarts with the pending keys stored.
    net.take(a, 'down');
    const newId = memberIdOf(a.pending.identity.publicKey);
    expect(a.state!.selfId).not.toBe(newId);
    net.run();
    // The owner knows the new peer key only: a connects with it and catches up (resync with the entry).
    net.adoptKeys(a);
    net.run();
    expect(a.state!.selfId).toBe(newId);
    expect(a.state!.epoch).toBe(net.ownerState.epoch);
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
    everyoneReadsEveryone(net, 'after-crash');
    expect(b.errors).toEqual([]);
  });

  it('a member away across the update reads what the old id sent, then the new one', () => {
    const { net, nodes } = setup('ku-history', ['a', 'b']);
    const [a, b] = nodes as [MemberNode, MemberNode];
    net.disconnect(b);
    net.member(a, { kind: 'send', text: 'signed by the old key', now: net.now });
    net.run();
    update(net, a, 'ku-history-new');
    net.member(a, { kind: 'send', text: 'signed by the new key', now: net.now });
    net.run();
    net.reconnect(b);
    net.run();
    expect(b.texts()).toEqual(expect.arrayContaining(['signed by the old key', 'signed by the new key']));
    expect(b.state!.members.map((m) => m.info.id)).toContain(a.state!.selfId);
    expect(memberSafetyCode(b.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(b.errors).toEqual([]);
  });
});
