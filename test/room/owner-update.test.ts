// The owner's own key update (docs/PROTOCOL.md 5.8.1 step 5): the `owner-update` chain entry signed
// by the old owner key, members following it (new trusted owner key and path), invites revoked,
// forged / replayed / out-of-order / malformed entries refused, a member that missed it catching
// up, the previous path kept for members that have not moved, and what a copy of the owner's old
// keys gets afterwards (nothing new).
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, sha256, verify } from '../../crypto/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { encode } from '../../protocol/msgpack.ts';
import {
  decodeChainBody,
  decodeToMember,
  decodeToOwner,
  encodeChainBody,
  encodeMessage,
  type ChainBody,
} from '../../protocol/room/codec.ts';
import { memberIdOf, peerKeyHex } from '../../protocol/room/ids.ts';
import {
  memberSafetyCode,
  ownerSafetyCode,
  ownerStep,
  type MemberState,
  type OwnerState,
  type RoomEvent,
  type Step,
} from '../../protocol/room/index.ts';
import { EMPTY_AWAY, awayOpened, awayReceived, encodeAwayMessage } from '../../protocol/room/away.ts';
import { inviteStatus } from '../../protocol/room/owner.ts';
import { expirePreviousPaths, memberMoved, ownerUpdateStep, previousPathsOf } from '../../protocol/room/owner-update.ts';
import { decodeMemberState, decodeOwnerState, encodeMemberState, encodeOwnerState } from '../../protocol/room/state-codec.ts';
import { PREVIOUS_PATH_MS, type InviteId } from '../../protocol/room/types.ts';
import { signChainEntry, signCert } from '../../protocol/room/verify.ts';
import { Net, checkedStep, type MemberNode, device, everyoneReadsEveryone, ownerCtx, type Device } from './harness.ts';

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

const identityOf = (d: Device) => ({ identity: d.identity, peer: d.box });

/** The owner's update step to `next`, checked (inputs not mutated) and routed like any owner step. */
function ownerUpdate(net: Net, next: Device): Step<OwnerState> {
  const current = net.ownerDev;
  const ctx = net.ctx;
  return net.ownerApply((s) =>
    checkedStep((st: OwnerState) => ownerUpdateStep(ctx, st, { current: identityOf(current), next: identityOf(next) }, net.now), s, {}),
  );
}

/** A whole owner update: the step, the owner on its new device, members follow and reconnect. */
function update(net: Net, seed: string): { old: Device; next: Device; out: Step<OwnerState> } {
  const old = net.ownerDev;
  const next = device(seed);
  const out = ownerUpdate(net, next);
  expect(out.error).toBeUndefined();
  adopt(net, next);
  net.run();
  moved(net);
  return { old, next, out };
}

/** The owner runs on its new device from now on. */
function adopt(net: Net, next: Device): void {
  net.ownerAdoptKeys(next);
  (net as { ownerDev: Device }).ownerDev = next;
}

/** Members that applied the owner update closed their link to the old path; they connect to the new one. */
function moved(net: Net): void {
  const path = peerKeyHex(net.ownerDev.box.publicKey);
  for (const n of net.members.values()) {
    if (n.state?.phase !== 'member' || n.state.ownerPeer !== path) continue;
    net.attach(n);
    net.reconnect(n);
  }
  net.run();
}

/** Entries sent to `node` in `chain` messages, in order. */
function chainMessages(out: Step<unknown>, node: MemberNode): Uint8Array[] {
  return out.effects.flatMap((e) => (e.kind === 'send' && e.to === node.peer && decodeToMember(e.bytes).type === 'chain' ? [e.bytes] : []));
}

function memberRefuses(net: Net, node: MemberNode, bytes: Uint8Array, code: string): void {
  const before = node.state!;
  const out = net.member(node, { kind: 'received', bytes, now: net.now });
  expect(out.error?.code).toBe(code);
  expect(out.state).toBe(before);
}

function bodyOf(ann: Uint8Array, net: Net, old: Device): ChainBody {
  void net;
  return decodeChainBody(verify(old.identity.publicKey, ann));
}

describe('owner-update entry decoder (5.7, 5.8.1 step 5)', () => {
  it('round-trips and refuses missing, extra and malformed fields', () => {
    const a = device('dec-owner-a');
    const body: ChainBody = {
      op: 'owner-update',
      room: new Uint8Array(16).fill(2),
      n: 4,
      prev: new Uint8Array(32).fill(3),
      epoch: 2,
      firstIdx: 7,
      keyHash: new Uint8Array(32).fill(4),
      membersHash: new Uint8Array(32).fill(5),
      ts: 9,
      cert: new Uint8Array([1, 2, 3]),
      removed: memberIdOf(a.identity.publicKey),
      opub: a.identity.publicKey,
    };
    expect(decodeChainBody(encodeChainBody(body))).toEqual(body);
    const wire = {
      type: 'chain',
      room: body.room,
      n: 4,
      prev: body.prev,
      op: 'owner-update',
      epoch: 2,
      first_idx: 7,
      key_hash: body.keyHash,
      members_hash: body.membersHash,
      ts: 9,
      cert: body.cert,
      removed: [body.removed],
      opub: body.opub,
    };
    expect(decodeChainBody(encode(wire as never))).toEqual(body);
    const { opub: _o, ...noOpub } = wire;
    const { cert: _c, ...noCert } = wire;
    const bad = [
      noOpub,
      noCert,
      { ...wire, extra: 1 },
      { ...wire, reason: 'manual' },
      { ...wire, opub: new Uint8Array(44) },
      { ...wire, opub: new Uint8Array(45) },
      { ...wire, removed: [] },
      { ...wire, removed: [body.removed, body.removed] },
      { ...wire, removed: ['XYZ'] },
      { ...wire, removed: body.removed },
      { ...wire, cert: new Uint8Array(0) },
      { ...wire, op: 'owner-updated' },
    ];
    for (const m of bad) expect(() => decodeChainBody(encode(m as never)), JSON.stringify(Object.keys(m))).toThrow(DecodeError);
  });
});

describe('the owner replaces its keys (5.8.1 step 5)', () => {
  it('members verify the entry with the key they hold, follow the owner to its new key and path, and keep chatting', () => {
    const { net, nodes } = setup('ou-valid');
    const [a, b] = nodes as [MemberNode, MemberNode];
    everyoneReadsEveryone(net, 'before');
    const oldId = net.ownerState.selfId;
    const oldPeer = peerKeyHex(net.ownerDev.box.publicKey);
    const epoch = net.ownerState.epoch;
    const { next, out } = update(net, 'ou-valid-next');
    const newId = memberIdOf(next.identity.publicKey);
    // The owner: new self, new epoch, an owner-update entry at its head, the event for the person.
    expect(net.ownerState.selfId).toBe(newId);
    expect(net.ownerState.epoch).toBe(epoch + 1);
    expect(net.ownerEvents).toContainEqual({
      type: 'keys-updated',
      old: oldId,
      member: { id: newId, name: 'owner', owner: true },
      self: true,
      revoked: 0,
    });
    // Each member got the entry (no key) and the rekey after it, signed and sealed with the NEW key.
    const sent = chainMessages(out, a).map((b) => decodeToMember(b));
    expect(sent.map((m) => m.type === 'chain' && m.key !== undefined)).toEqual([false, true]);
    expect(net.ownerState.chain.slice(-2).map((l) => l.op)).toEqual(['owner-update', 'rotate']);
    for (const n of [a, b]) {
      const s = n.state!;
      expect(s.ownerIpub).toEqual(next.identity.publicKey);
      expect(s.ownerPeer).toBe(peerKeyHex(next.box.publicKey));
      expect(s.epoch).toBe(epoch + 1);
      expect(s.members.find((m) => m.info.owner)!.info.id).toBe(newId);
      expect(s.former.some((m) => m.info.id === oldId)).toBe(true);
      expect(n.events).toContainEqual({ type: 'keys-updated', old: oldId, member: { id: newId, name: 'owner', owner: true }, self: false });
      expect(memberSafetyCode(s)).toBe(ownerSafetyCode(net.ownerState));
    }
    // The owner closes no link: the members close theirs to the old path and reconnect.
    expect(out.effects.some((e) => e.kind === 'close')).toBe(false);
    expect(net.ownerState.previousPaths).toEqual([
      { peer: oldPeer, secret: expect.any(Uint8Array), until: expect.any(Number), waiting: [a.state!.selfId, b.state!.selfId] },
    ]);
    everyoneReadsEveryone(net, 'after');
    // The old owner's messages still verify for a joiner? No: but members keep them (history), and a
    // new member joins with an invite of the new key.
    const c = net.join('c', net.invite());
    net.run();
    expect(c.state!.phase).toBe('member');
    expect(c.state!.ownerIpub).toEqual(next.identity.publicKey);
    everyoneReadsEveryone(net, 'joined');
  });

  it('the member closes its link to the old path when it applies the entry', () => {
    const { net, nodes } = setup('ou-close');
    const a = nodes[0]!;
    const oldPeer = a.state!.ownerPeer;
    const next = device('ou-close-next');
    const out = ownerUpdate(net, next);
    const [bytes] = net.take(a, 'down');
    void out;
    const step = net.member(a, { kind: 'received', bytes: bytes!, now: net.now });
    expect(step.error).toBeUndefined();
    expect(step.effects).toContainEqual({ kind: 'close', to: oldPeer, reason: 'owner-moved' });
  });

  it('revokes pending and claimed invites and says how many', () => {
    const { net } = setup('ou-invites', ['a']);
    const url = net.invite();
    net.invite();
    const ids = net.ownerState.invites.filter((i) => i.status === 'pending').map((i) => i.id);
    expect(ids).toHaveLength(2);
    const { next } = update(net, 'ou-invites-next');
    for (const id of ids) expect(inviteStatus(net.ownerState, id as InviteId, net.now)).toBe('revoked');
    expect(net.ownerEvents.find((e) => e.type === 'keys-updated')).toMatchObject({ revoked: 2 });
    // A joiner with the old invite is refused (its token is no longer accepted, and the invite
    // commits to the old key anyway).
    const j = net.join('late', url);
    net.run();
    expect(j.state!.phase).not.toBe('member');
    expect(net.ownerState.members.some((m) => m.info.name === 'late')).toBe(false);
    void next;
  });

  it('refuses an update to keys already in use', () => {
    const { net, nodes } = setup('ou-same', ['a']);
    const before = net.ownerState;
    const same = ownerUpdate(net, net.ownerDev);
    expect(same.error?.code).toBe('room.state');
    expect(net.ownerState).toBe(before);
    const a = nodes[0]!;
    const taken = ownerUpdate(net, a.dev);
    expect(taken.error?.code).toBe('room.state');
  });

  it('refuses a forged owner update (signed by another key), a replayed one and a malformed one', () => {
    const { net, nodes } = setup('ou-forged');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const old = net.ownerDev;
    const next = device('ou-forged-next');
    ownerUpdate(net, next);
    const [real, rekey] = net.take(a, 'down');
    const msg = decodeToMember(real!);
    const rk = decodeToMember(rekey!);
    if (msg.type !== 'chain' || rk.type !== 'chain') throw new Error('expected chain');
    const body = bodyOf(msg.ann, net, old);
    // Forged: the same body signed by a stranger's key.
    const stranger = device('ou-stranger');
    const forged = signChainEntry(stranger.identity.privateKey, body);
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: forged }), 'room.not-owner');
    // A stranger's update of the owner to its own keys, signed by itself, fails the same way.
    if (body.op !== 'owner-update') throw new Error('expected owner-update');
    const self = {
      id: memberIdOf(stranger.identity.publicKey),
      ipub: stranger.identity.publicKey,
      npub: stranger.box.publicKey,
      name: 'owner',
      owner: true,
      epoch: body.epoch,
    };
    const strangerCert = signCert(stranger.identity.privateKey, a.state!.room, self);
    const takeover = signChainEntry(stranger.identity.privateKey, { ...body, cert: strangerCert, opub: stranger.identity.publicKey });
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: takeover }), 'room.not-owner');
    // Signed by the real old key but certifying a key that did not sign its own certificate.
    const wrongCert = signChainEntry(old.identity.privateKey, { ...body, cert: strangerCert });
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: wrongCert }), 'room.not-owner');
    // A self-signed certificate of the new key that is not the owner's (another name).
    const renamed = signCert(next.identity.privateKey, a.state!.room, {
      ...self,
      id: memberIdOf(next.identity.publicKey),
      ipub: next.identity.publicKey,
      npub: next.box.publicKey,
      name: 'mallory',
    });
    const wrongName = signChainEntry(old.identity.privateKey, { ...body, cert: renamed });
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: wrongName }), 'room.fork');
    // Replacing a member instead of the owner.
    const notOwner = signChainEntry(old.identity.privateKey, { ...body, removed: b.state!.selfId });
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: notOwner }), 'room.fork');
    // A member list that does not match.
    const badHash = signChainEntry(old.identity.privateKey, { ...body, membersHash: new Uint8Array(32) });
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: badHash }), 'room.fork');
    // With a key (the rekey after it carries the key).
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: msg.ann, key: rk.key! }), 'room.bad-rekey');
    // Malformed bytes.
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: new Uint8Array([1, 2, 3]) }), 'room.not-owner');
    // The real one applies; replaying it afterwards is a duplicate and changes nothing.
    expect(net.member(a, { kind: 'received', bytes: real!, now: net.now }).error).toBeUndefined();
    expect(a.state!.ownerIpub).toEqual(next.identity.publicKey);
    memberRefuses(net, a, real!, 'room.duplicate');
    // A second "update" signed with the now-former owner key is refused.
    const again = signChainEntry(old.identity.privateKey, { ...body, n: body.n + 1, prev: sha256(msg.ann) });
    memberRefuses(net, a, encodeMessage({ type: 'chain', ann: again }), 'room.not-owner');
    // The rekey after it, signed with the new key, applies.
    expect(net.member(a, { kind: 'received', bytes: rekey!, now: net.now }).error).toBeUndefined();
    expect(a.state!.epoch).toBe(body.epoch + 1);
  });

  it('an entry beyond the next position is not applied out of order: the member asks for the chain', () => {
    const { net, nodes } = setup('ou-order', ['a']);
    const a = nodes[0]!;
    const next = device('ou-order-next');
    ownerUpdate(net, next);
    adopt(net, next);
    net.owner({ kind: 'rotate', now: net.now });
    const [upd, rekey, rot] = net.take(a, 'down');
    const before = a.state!;
    // Signed by a key it does not know yet: refused, and the member asks for the chain.
    const out = net.member(a, { kind: 'received', bytes: rot!, now: net.now });
    expect(out.error?.code).toBe('room.not-owner');
    expect(out.state).toBe(before);
    const sent = out.effects.flatMap((e) => (e.kind === 'send' ? [e.bytes] : []));
    expect(sent.map((b) => decodeToOwner(b).type)).toEqual(['sync']);
    // The owner answers the sync with both entries; the keys open with the new owner key.
    net.member(a, { kind: 'received', bytes: upd!, now: net.now });
    net.member(a, { kind: 'received', bytes: rekey!, now: net.now });
    net.run();
    moved(net);
    expect(a.state!.ownerIpub).toEqual(next.identity.publicKey);
    expect(a.state!.chain).toBe(net.ownerState.chain.at(-1)!.n);
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
  });

  it('a member offline during the update catches up on reconnect and reads what was said meanwhile', () => {
    const { net, nodes } = setup('ou-missed');
    const [a, b] = nodes as [MemberNode, MemberNode];
    net.disconnect(b);
    const { next } = update(net, 'ou-missed-next');
    net.owner({ kind: 'rotate', now: net.now });
    net.owner({ kind: 'send', text: 'while b was away', now: net.now });
    net.member(a, { kind: 'send', text: 'a too', now: net.now });
    net.run();
    expect(b.state!.ownerIpub).not.toEqual(next.identity.publicKey);
    // b comes back on the OLD path (its state still names it): the owner answers its sync.
    net.attach(b);
    net.reconnect(b);
    net.run();
    expect(b.state!.ownerIpub).toEqual(next.identity.publicKey);
    expect(b.state!.ownerPeer).toBe(peerKeyHex(next.box.publicKey));
    expect(b.texts()).toEqual(expect.arrayContaining(['while b was away', 'a too']));
    expect(memberSafetyCode(b.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(b.errors).toEqual([]);
    moved(net);
    everyoneReadsEveryone(net, 'together');
  });

  it('a member catches up across several owner updates in one resync', () => {
    const { net, nodes } = setup('ou-twice');
    const b = nodes[1]!;
    net.disconnect(b);
    update(net, 'ou-twice-1');
    net.owner({ kind: 'send', text: 'between', now: net.now });
    const { next } = update(net, 'ou-twice-2');
    net.owner({ kind: 'send', text: 'after both', now: net.now });
    net.run();
    net.attach(b);
    net.reconnect(b);
    net.run();
    expect(b.errors).toEqual([]);
    expect(b.state!.ownerIpub).toEqual(next.identity.publicKey);
    expect(b.texts()).toEqual(expect.arrayContaining(['between', 'after both']));
    expect(memberSafetyCode(b.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(net.ownerState.previousPaths!.length).toBe(2);
  });

  it('keeps the old path for members that have not moved, and drops it when they have or when it is old', () => {
    const { net, nodes } = setup('ou-paths');
    const [a, b] = nodes as [MemberNode, MemberNode];
    update(net, 'ou-paths-next');
    const s = net.ownerState;
    const paths = previousPathsOf(s);
    expect(paths).toHaveLength(1);
    expect(paths[0]!.trusted.sort()).toEqual([a.peer, b.peer].sort());
    const one = memberMoved(s, a.peer);
    expect(previousPathsOf(one)[0]!.trusted).toEqual([b.peer]);
    expect(memberMoved(one, a.peer)).toBe(one);
    const both = memberMoved(one, b.peer);
    expect(both.previousPaths).toBeUndefined();
    expect(expirePreviousPaths(s, s.previousPaths![0]!.until)).toBe(s);
    expect(expirePreviousPaths(s, s.previousPaths![0]!.until + 1).previousPaths).toBeUndefined();
    // A removed waiting member no longer holds the path open.
    net.owner({ kind: 'kick', member: a.state!.selfId, now: net.now });
    const kicked = memberMoved(net.ownerState, b.peer);
    expect(kicked.previousPaths).toBeUndefined();
    expect(PREVIOUS_PATH_MS).toBe(14 * 24 * 60 * 60 * 1000);
  });

  it('persists: owner and member states with an owner update round-trip through the state codec', () => {
    const { net, nodes } = setup('ou-codec');
    update(net, 'ou-codec-next');
    const o = decodeOwnerState(encodeOwnerState(net.ownerState));
    expect(o).toEqual(net.ownerState);
    const m: MemberState = decodeMemberState(encodeMemberState(nodes[0]!.state!));
    expect(m).toEqual(nodes[0]!.state!);
    const bad = { ...net.ownerState, previousPaths: [{ ...net.ownerState.previousPaths![0]!, secret: new Uint8Array(31) }] };
    expect(() => decodeOwnerState(encodeOwnerState(bad))).toThrow();
  });

  it('owner away (5.16): a member that applied the owner update and one that did not exchange no away message', () => {
    const { net, nodes } = setup('ou-mesh');
    const [a, b] = nodes as [MemberNode, MemberNode];
    net.disconnect(b);
    update(net, 'ou-mesh-next');
    expect(a.state!.ownerIpub).not.toEqual(b.state!.ownerIpub);
    const aOpen = awayOpened(a.state!, EMPTY_AWAY, b.peer);
    const bOpen = awayOpened(b.state!, EMPTY_AWAY, a.peer);
    const hello = (st: typeof aOpen): Uint8Array => {
      const e = st.effects.find((x) => x.kind === 'send');
      if (e?.kind !== 'send') throw new Error('expected a hello');
      return e.bytes;
    };
    // Each head is signed by an owner key the other does not hold: refused, neither peer becomes ready.
    const atA = awayReceived(a.state!, aOpen.state, b.peer, hello(bOpen));
    expect(atA.error?.code).toBe('room.not-owner');
    expect(atA.state).toBe(aOpen.state);
    const atB = awayReceived(b.state!, bOpen.state, a.peer, hello(aOpen));
    expect(atB.error?.code).toBe('room.not-owner');
    expect(atB.state).toBe(bOpen.state);
    // An away message from a is not taken by b (a never became ready for b).
    const env = net.member(a, { kind: 'send', text: 'mesh across the update', now: net.now });
    const wire = env.effects.find((e) => e.kind === 'send');
    if (wire?.kind !== 'send') throw new Error('expected a send');
    const sent = decodeToOwner(wire.bytes);
    if (sent.type !== 'send') throw new Error('expected send');
    const msg = awayReceived(b.state!, bOpen.state, a.peer, encodeAwayMessage({ type: 'away-msg', from: a.state!.selfId, env: sent.env }));
    expect(msg.error?.code).toBe('room.state');
    expect(msg.state.held).toEqual([]);
  });

  it("a copy of the owner's old keys gets nothing new", () => {
    const { net, nodes } = setup('ou-copy');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const stolenDev = net.ownerDev;
    const stolenState = net.ownerState;
    const { next } = update(net, 'ou-copy-next');
    everyoneReadsEveryone(net, 'secret');
    // The copy holds none of the keys of the epochs after the update.
    const stolenKeys = stolenState.epochs.map((e) => e.key!);
    for (const e of net.ownerState.epochs.filter((x) => x.epoch > stolenState.epoch)) {
      expect(stolenKeys.some((k) => k.every((v, i) => v === e.key![i]))).toBe(false);
    }
    // Whatever the copy signs is refused by members that moved: a rotation, a second owner update.
    const copyCtx = ownerCtx(stolenDev);
    const copyRotate = ownerStep(copyCtx, stolenState, { kind: 'rotate', now: net.now });
    const chainToA = copyRotate.effects.find((e) => e.kind === 'send' && e.to === a.peer)!;
    if (chainToA.kind !== 'send') throw new Error('expected a send');
    const before = a.state!;
    const refused = net.member(a, { kind: 'received', bytes: chainToA.bytes, now: net.now });
    expect(refused.error).toBeDefined();
    expect(a.state).toBe(before);
    const thief = device('ou-copy-thief');
    const copyUpdate = ownerUpdateStep(copyCtx, stolenState, { current: identityOf(stolenDev), next: identityOf(thief) }, net.now);
    const toB = copyUpdate.effects.find((e) => e.kind === 'send' && e.to === b.peer)!;
    if (toB.kind !== 'send') throw new Error('expected a send');
    const beforeB = b.state!;
    expect(net.member(b, { kind: 'received', bytes: toB.bytes, now: net.now }).error?.code).toMatch(/room\.(not-owner|duplicate|fork)/);
    expect(b.state).toBe(beforeB);
    // The copy's own messages are no member's: refused.
    const copySend = ownerStep(copyCtx, stolenState, { kind: 'send', text: 'from the thief', now: net.now });
    const deliver = copySend.effects.find((e) => e.kind === 'send' && e.to === a.peer)!;
    if (deliver.kind !== 'send') throw new Error('expected a send');
    expect(net.member(a, { kind: 'received', bytes: deliver.bytes, now: net.now }).error).toBeDefined();
    expect(a.texts()).not.toContain('from the thief');
    expect(b.state!.ownerIpub).toEqual(next.identity.publicKey);
    const events: RoomEvent[] = a.events.filter((e) => e.type === 'message' && e.text === 'from the thief');
    expect(events).toEqual([]);
  });
});
