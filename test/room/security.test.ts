// Security tests (docs/PROTOCOL.md sections 5.4-5.9, 5.14): every attack is refused with a typed
// error and leaves the attacked machine's state exactly as it was (the same object).
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeBody, encodeEnvelopeBody } from '../../protocol/room/codec.ts';
import { initCrypto, asSymmetricKey, cellSeal, sealTo, sha256, sign, verify, openFrom, toHex } from '../../crypto/index.ts';
import { decodeOwnerState, encodeOwnerState } from '../../protocol/room/state-codec.ts';
import { removedPeerKeys, retiredAuthTokens } from '../../protocol/room/owner.ts';
import { saltyAuthToken } from '../../protocol/room/ids.ts';
import {
  decodeInviteUrl,
  decodeToMember,
  encodeMessage,
  inviteUrl,
  memberIdOf,
  memberStep,
  ownerStep,
  startJoin,
  type Effect,
  type MemberId,
  type MemberState,
  type OwnerState,
  type Step,
  type ToMember,
} from '../../protocol/room/index.ts';
import { decodeChainBody, decodeKeyBody, encodeChainBody, encodeJoinSecret, encodeKeyBody } from '../../protocol/room/codec.ts';
import { LABEL, ZERO_HASH, contextOf, inviteIdBytes } from '../../protocol/room/ids.ts';
import { sealEnvelope } from '../../protocol/room/verify.ts';
import { Net, checkedStep, device, everyoneReadsEveryone, memberCtx, type MemberNode } from './harness.ts';

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

function memberRefuses(node: MemberNode, bytes: Uint8Array, code: string): Step<MemberState> {
  const before = node.state!;
  const out = checkedStep((s: MemberState, e: Parameters<typeof memberStep>[2]) => memberStep(node.ctx, s, e), before, {
    kind: 'received',
    bytes,
    now: 0,
  });
  expect(out.error?.code).toBe(code);
  expect(out.state).toBe(before);
  expect(out.effects.filter((e) => e.kind === 'event' && e.event.type === 'message')).toEqual([]);
  return out;
}

const sentTypes = (effects: readonly Effect[]): string[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [decodeToMember(e.bytes).type] : e.kind === 'close' ? ['close'] : []));

describe('invite tokens', () => {
  it('refuses an unknown token (no such invite) and answers join-refused + close', () => {
    const net = new Net(device('o-unknown'));
    const real = decodeInviteUrl(net.invite());
    const fake = { ...real, token: new Uint8Array(32).fill(7) };
    const joiner = device('j-unknown');
    const req = startJoin(memberCtx(joiner), fake, { now: net.now, name: 'x' });
    const send = req.effects[0]!;
    if (send.kind !== 'send') throw new Error('no request');
    const out = ownerRefuses(net, toPeer(joiner), send.bytes, 'room.invite-unknown');
    expect(sentTypes(out.effects)).toEqual(['join-refused', 'close']);
  });

  it('refuses a wrong token presented under a real invite id (join-proof)', () => {
    const net = new Net(device('o-wrong'));
    const real = decodeInviteUrl(net.invite());
    const joiner = device('j-wrong');
    const sealed = sealTo(
      joiner.identity.privateKey,
      net.ownerDev.identity.publicKey,
      encodeJoinSecret({
        room: real.room,
        token: new Uint8Array(32).fill(1),
        jkey: new Uint8Array(32),
        npub: joiner.box.publicKey,
        name: 'x',
      }),
    );
    const bytes = encodeMessage({ type: 'join-request', invite: inviteIdBytes(real.token), ipub: joiner.identity.publicKey, sealed });
    ownerRefuses(net, toPeer(joiner), bytes, 'room.join-proof');
  });

  it('refuses a used token, and a token claimed by another joiner', () => {
    const net = new Net(device('o-used'));
    const url = net.invite();
    const first = net.join('first', url);
    const second = net.join('second', url);
    net.run();
    expect(first.state!.phase).toBe('member');
    expect(second.state!.phase).toBe('refused');
    expect(second.events).toContainEqual({ type: 'join-refused', code: 'room.invite-used' });
    // Once used, a third attempt is refused the same way, changing nothing.
    const third = device('third');
    const req = startJoin(memberCtx(third), decodeInviteUrl(url), { now: net.now, name: 'third' }).effects[0]!;
    if (req.kind !== 'send') throw new Error('no request');
    ownerRefuses(net, toPeer(third), req.bytes, 'room.invite-used');
  });

  it('refuses an expired token on the owner, and the joiner refuses to start with one', () => {
    const net = new Net(device('o-exp'));
    const url = net.invite(1000);
    const joiner = device('j-exp');
    const req = startJoin(memberCtx(joiner), decodeInviteUrl(url), { now: net.now, name: 'late' }).effects[0]!;
    if (req.kind !== 'send') throw new Error('no request');
    net.now += 1001;
    ownerRefuses(net, toPeer(joiner), req.bytes, 'room.invite-expired');
    expect(() => startJoin(memberCtx(joiner), decodeInviteUrl(url), { now: net.now, name: 'late' })).toThrow(
      expect.objectContaining({ code: 'room.invite-expired' }),
    );
  });

  it('refuses a revoked token; revoking a claimed invite tells the claimant', () => {
    const net = new Net(device('o-rev'));
    const url = net.invite();
    const id = net.ownerState.invites[0]!.id;
    net.owner({ kind: 'revoke', invite: id, now: net.now });
    const x = net.join('x', url);
    net.run();
    expect(x.state!.phase).toBe('refused');
    expect(x.events).toContainEqual({ type: 'join-refused', code: 'room.invite-revoked' });
    expect(net.ownerErrors.map((e) => e.code)).toEqual(['room.invite-revoked']);
    expect(net.owner({ kind: 'revoke', invite: id, now: net.now }).error?.code).toBe('room.invite-revoked');
  });

  it('refuses a join request relayed from a different peer key than the one sealed inside', () => {
    const net = new Net(device('o-relay'));
    const url = net.invite();
    const joiner = device('j-relay');
    const req = joinRequestBytes(net, joiner, url);
    ownerRefuses(net, toPeer(device('someone-else')), req, 'room.join-proof');
    // The invite is still usable by its holder: the refusal changed nothing.
    const ok = net.join('x', url, joiner);
    net.run();
    expect(ok.state!.phase).toBe('member');
  });

  it('refuses a confirm that does not prove the accept, and an owner policy that declines', () => {
    const net = new Net(device('o-confirm'));
    const url = net.invite();
    const x = net.join('x', url);
    net.hello(x);
    net.deliverUp(x); // the owner claims the invite and sends join-accept
    const bad = encodeMessage({
      type: 'join-confirm',
      invite: inviteIdBytes(decodeInviteUrl(url).token),
      proof: new Uint8Array(64),
      chain: 0,
    });
    ownerRefuses(net, x.peer, bad, 'room.join-proof');
    net.run();
    expect(x.state!.phase).toBe('member');

    // A full room (MAX_MEMBERS, including the owner) refuses further joins.
    const full = new Net(device('o-full'));
    const filler = full.ownerState.members[0]!;
    full.ownerState = { ...full.ownerState, members: Array.from({ length: 256 }, () => filler) };
    const z = full.join('z', full.invite());
    full.run();
    expect(z.events).toContainEqual({ type: 'join-refused', code: 'room.full' });

    const picky = new Net(device('o-picky'));
    (picky as { ctx: unknown }).ctx = { ...picky.ctx, admit: () => false };
    const y = picky.join('y', picky.invite());
    picky.run();
    expect(y.events).toContainEqual({ type: 'join-refused', code: 'room.not-admitted' });
  });
});

describe('rotation authority', () => {
  function capturedRotation(net: Net, a: MemberNode): Extract<ToMember, { type: 'chain' }> {
    net.owner({ kind: 'rotate', now: net.now });
    const packets = net.take(a, 'down').map(decodeToMember);
    const rotation = packets.find((p) => p.type === 'chain' && p.key !== undefined);
    if (rotation?.type !== 'chain') throw new Error('no rotation');
    return rotation;
  }

  it('refuses a rotation signed by a member (not the owner), and a key sealed by anyone else', () => {
    const { net, nodes } = setup('o-forge');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const real = capturedRotation(net, a);
    const body = decodeChainBody(verify(net.ownerDev.identity.publicKey, real.ann));
    const forgedAnn = sign(b.dev.identity.privateKey, encodeChainBody(body));
    const key = new Uint8Array(32).fill(9);
    const forgedKey = sealTo(
      b.dev.identity.privateKey,
      a.dev.identity.publicKey,
      encodeKeyBody({ room: body.room, epoch: body.epoch, firstIdx: body.firstIdx, key }),
    );
    memberRefuses(a, encodeMessage({ type: 'chain', ann: forgedAnn, key: forgedKey }), 'room.not-owner');
    // The owner's real entry with a key sealed by someone else: bad-rekey.
    memberRefuses(a, encodeMessage({ type: 'chain', ann: real.ann, key: forgedKey }), 'room.bad-rekey');
    // The owner's real entry with a key sealed by the owner that is not the one it commits to.
    const wrongKey = sealTo(
      net.ownerDev.identity.privateKey,
      a.dev.identity.publicKey,
      encodeKeyBody({ room: body.room, epoch: body.epoch, firstIdx: body.firstIdx, key }),
    );
    memberRefuses(a, encodeMessage({ type: 'chain', ann: real.ann, key: wrongKey }), 'room.bad-rekey');
    // A rotation without its key.
    memberRefuses(a, encodeMessage({ type: 'chain', ann: real.ann }), 'room.bad-rekey');
    // The genuine rotation still works afterwards.
    expect(net.member(a, { kind: 'received', bytes: encodeMessage(real), now: net.now }).error).toBeUndefined();
    expect(a.state!.epoch).toBe(1);
    memberRefuses(a, encodeMessage(real), 'room.duplicate');
  });

  it('refuses a second, different entry at a position it holds (fork), and one that does not chain', () => {
    const { net, nodes } = setup('o-fork');
    const [a] = nodes as [MemberNode];
    const real = capturedRotation(net, a);
    net.member(a, { kind: 'received', bytes: encodeMessage(real), now: net.now });
    const body = decodeChainBody(verify(net.ownerDev.identity.publicKey, real.ann));
    const rk = decodeKeyBody(openFrom(a.dev.identity.privateKey, net.ownerDev.identity.publicKey, real.key!));
    const other = sign(net.ownerDev.identity.privateKey, encodeChainBody({ ...body, ts: body.ts + 1 }));
    const key = sealTo(net.ownerDev.identity.privateKey, a.dev.identity.publicKey, encodeKeyBody(rk));
    memberRefuses(a, encodeMessage({ type: 'chain', ann: other, key }), 'room.fork');
    // The next position, but chained onto something else.
    const next = sign(
      net.ownerDev.identity.privateKey,
      encodeChainBody({ ...body, n: body.n + 1, epoch: body.epoch + 1, prev: new Uint8Array(32).fill(3) }),
    );
    memberRefuses(a, encodeMessage({ type: 'chain', ann: next, key }), 'room.fork');
  });
});

describe('messages', () => {
  it('refuses a send from a non-member peer (removed + close) and envelopes signed by a non-member', () => {
    const { net, nodes } = setup('o-nonmember');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const outsider = device('outsider');
    const epoch = a.state!.epochs.find((e) => e.epoch === a.state!.epoch)!;
    // The outsider somehow has the room key, signs with its own key, claims to be b.
    const env = sealEnvelope(outsider.identity.privateKey, {
      room: net.ownerState.room,
      epoch: epoch.epoch,
      key: epoch.key!,
      from: b.state!.selfId,
      seq: 99,
      chain: 0,
      prev: ZERO_HASH,
      body: { text: 'forged', ts: 0 },
    });
    const out = ownerRefuses(net, toPeer(outsider), encodeMessage({ type: 'send', env }), 'room.not-member');
    expect(sentTypes(out.effects)).toEqual(['removed', 'close']);
    // Delivered to a member as if b sent it: the signature is not b's.
    memberRefuses(a, encodeMessage({ type: 'deliver', idx: a.state!.lastIdx + 1, from: b.state!.selfId, env }), 'room.bad-signature');
    // Under its own id: not a member.
    const ownId = sealEnvelope(outsider.identity.privateKey, {
      room: net.ownerState.room,
      epoch: epoch.epoch,
      key: epoch.key!,
      from: idOf(outsider),
      seq: 1,
      chain: 0,
      prev: ZERO_HASH,
      body: { text: 'forged', ts: 0 },
    });
    memberRefuses(a, encodeMessage({ type: 'deliver', idx: a.state!.lastIdx + 1, from: idOf(outsider), env: ownId }), 'room.not-member');
  });

  it('refuses impersonation: a member signing an envelope that claims another sender', () => {
    const { net, nodes } = setup('o-imp');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const epoch = b.state!.epochs.find((e) => e.epoch === b.state!.epoch)!;
    const env = sealEnvelope(b.dev.identity.privateKey, {
      room: net.ownerState.room,
      epoch: epoch.epoch,
      key: epoch.key!,
      from: a.state!.selfId,
      seq: 1,
      chain: 0,
      prev: ZERO_HASH,
      body: { text: 'I am a', ts: 0 },
    });
    const out = ownerRefuses(net, b.peer, encodeMessage({ type: 'send', env }), 'room.impersonation');
    expect(sentTypes(out.effects)).toEqual(['refused']);
    const refusal = out.effects[0]!;
    if (refusal.kind !== 'send') throw new Error('no refusal');
    expect(decodeToMember(refusal.bytes)).toEqual({ type: 'refused', code: 'room.impersonation' });
    // A replayed send names the refused sequence number; the member reports it.
    net.member(b, { kind: 'send', text: 'one', now: net.now });
    const [once] = net.take(b, 'up');
    net.owner({ kind: 'received', from: b.peer, bytes: once!, now: net.now });
    net.run();
    net.owner({ kind: 'received', from: b.peer, bytes: once!, now: net.now });
    net.run();
    expect(b.events).toContainEqual({ type: 'send-refused', code: 'room.replay', seq: 1 });
    memberRefuses(a, encodeMessage({ type: 'deliver', idx: a.state!.lastIdx + 1, from: b.state!.selfId, env }), 'room.impersonation');
  });

  it('refuses a message replayed in a later epoch (owner and member), and stale epochs past the grace window', () => {
    const { net, nodes } = setup('o-replay');
    const [a, b] = nodes as [MemberNode, MemberNode];
    net.member(b, { kind: 'send', text: 'once', now: net.now });
    const [sendBytes] = net.take(b, 'up');
    net.owner({ kind: 'received', from: b.peer, bytes: sendBytes!, now: net.now });
    const [deliverToA] = net.take(a, 'down');
    net.member(a, { kind: 'received', bytes: deliverToA!, now: net.now });
    net.run();
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    // Same bytes again: the owner refuses (sequence), the member too (index, then sequence).
    ownerRefuses(net, b.peer, sendBytes!, 'room.replay');
    memberRefuses(a, deliverToA!, 'room.duplicate');
    const d = decodeToMember(deliverToA!) as Extract<ToMember, { type: 'deliver' }>;
    memberRefuses(a, encodeMessage({ ...d, idx: a.state!.lastIdx + 1 }), 'room.replay');

    // A fresh sequence number under the previous epoch's key, after the grace time: refused.
    const old = b.state!.epochs.find((e) => e.epoch === 0)!;
    const stale = sealEnvelope(b.dev.identity.privateKey, {
      room: net.ownerState.room,
      epoch: 0,
      key: old.key!,
      from: b.state!.selfId,
      seq: b.state!.seq + 1,
      chain: b.state!.chain,
      prev: b.state!.tail,
      body: { text: 'stale', ts: 0 },
    });
    const inGrace = net.owner({ kind: 'received', from: b.peer, bytes: encodeMessage({ type: 'send', env: stale }), now: net.now });
    expect(inGrace.error).toBeUndefined(); // within graceMs of the rotation: ordered
    net.run();
    expect(a.texts()).toContain('stale');
    const stale2 = sealEnvelope(b.dev.identity.privateKey, {
      room: net.ownerState.room,
      epoch: 0,
      key: old.key!,
      from: b.state!.selfId,
      seq: b.state!.seq + 2,
      chain: b.state!.chain,
      prev: sha256(stale),
      body: { text: 'stale2', ts: 0 },
    });
    net.now += 31_000;
    ownerRefuses(net, b.peer, encodeMessage({ type: 'send', env: stale2 }), 'room.epoch-expired');
    // Two epochs back, delivered to a member: outside the index-based grace rule.
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    memberRefuses(
      a,
      encodeMessage({ type: 'deliver', idx: a.state!.lastIdx + 1, from: b.state!.selfId, env: stale2 }),
      'room.epoch-expired',
    );
  });

  it('refuses a tampered ciphertext (signed by the real sender) and a tampered envelope', () => {
    const { net, nodes } = setup('o-tamper');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const epoch = b.state!.epochs.find((e) => e.epoch === b.state!.epoch)!;
    const room = net.ownerState.room;
    const from = b.state!.selfId;
    const ct = cellSeal(asSymmetricKey(epoch.key!), encodeBody({ text: 'x', ts: 0 }), contextOf(LABEL.msg, room, epoch.epoch, from, 1));
    ct[ct.length - 1]! ^= 1;
    const env = sign(
      b.dev.identity.privateKey,
      encodeEnvelopeBody({ room, epoch: epoch.epoch, from, seq: 1, chain: 0, prev: ZERO_HASH, ct }),
    );
    ownerRefuses(net, b.peer, encodeMessage({ type: 'send', env }), 'room.bad-ciphertext');
    memberRefuses(a, encodeMessage({ type: 'deliver', idx: a.state!.lastIdx + 1, from, env }), 'room.bad-ciphertext');
    // A ciphertext sealed for another sequence number (context binding) is refused the same way.
    const ct2 = cellSeal(asSymmetricKey(epoch.key!), encodeBody({ text: 'x', ts: 0 }), contextOf(LABEL.msg, room, epoch.epoch, from, 5));
    const env2 = sign(
      b.dev.identity.privateKey,
      encodeEnvelopeBody({ room, epoch: epoch.epoch, from, seq: 1, chain: 0, prev: ZERO_HASH, ct: ct2 }),
    );
    ownerRefuses(net, b.peer, encodeMessage({ type: 'send', env: env2 }), 'room.bad-ciphertext');
    // Flip one byte of a genuine envelope in transit: the signature fails.
    net.member(b, { kind: 'send', text: 'genuine', now: net.now });
    net.run();
    const genuine = net.ownerState.log.at(-1)!;
    const flipped = genuine.env.slice();
    flipped[flipped.length - 100]! ^= 1;
    memberRefuses(a, encodeMessage({ type: 'deliver', idx: a.state!.lastIdx + 1, from, env: flipped }), 'room.bad-signature');
  });
});

describe('history', () => {
  it('refuses a history entry altered by the owner, whole message, no state change', () => {
    const { net, nodes } = setup('o-hist', ['a', 'b', 'c']);
    const [a, b, c] = nodes as [MemberNode, MemberNode, MemberNode];
    net.member(b, { kind: 'send', text: 'b says hi', now: net.now });
    net.member(c, { kind: 'send', text: 'c says hi', now: net.now });
    net.deliverUp(b);
    net.deliverUp(c);
    net.take(a, 'down'); // a missed both delivers
    net.run();
    const entries = net.ownerState.log.filter((e) => e.idx > a.state!.lastIdx).map((e) => ({ idx: e.idx, from: e.from, env: e.env }));
    expect(entries).toHaveLength(2);
    const history = (es: typeof entries) => encodeMessage({ type: 'history', from_idx: es[0]!.idx, log_start: 0, entries: es });
    // 1. The owner rewrites b's text: it can only re-sign as itself, the signature is not b's.
    const e0 = entries[0]!;
    const epoch = net.ownerState.epochs.at(-1)!;
    const rewritten = sealEnvelope(net.ownerDev.identity.privateKey, {
      room: net.ownerState.room,
      epoch: epoch.epoch,
      key: epoch.key!,
      from: e0.from,
      seq: 50,
      chain: 0,
      prev: ZERO_HASH,
      body: { text: 'b never said this', ts: 0 },
    });
    memberRefuses(a, history([{ ...e0, env: rewritten }, entries[1]!]), 'room.bad-signature');
    // 2. A flipped byte in c's entry.
    const flipped = entries[1]!.env.slice();
    flipped[flipped.length - 80]! ^= 1;
    memberRefuses(a, history([e0, { ...entries[1]!, env: flipped }]), 'room.bad-signature');
    // 3. c's message attributed to b.
    memberRefuses(a, history([e0, { ...entries[1]!, from: e0.from }]), 'room.bad-signature');
    // The genuine history is accepted (the refusals were about the alterations).
    expect(net.member(a, { kind: 'received', bytes: history(entries), now: net.now }).error).toBeUndefined();
    expect(a.texts()).toEqual(expect.arrayContaining(['b says hi', 'c says hi']));
  });
});

describe('membership', () => {
  it('a removed member is refused everywhere and reads nothing later', () => {
    const { net, nodes } = setup('o-removed', ['a', 'b', 'c']);
    const [a, b, c] = nodes as [MemberNode, MemberNode, MemberNode];
    net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now });
    net.run();
    expect(net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now }).error?.code).toBe('room.not-member');
    expect(net.owner({ kind: 'kick', member: net.ownerState.selfId, now: net.now }).error?.code).toBe('room.forbidden');
    // c (still holding old keys) asks for a resync: removed + close.
    const sync = encodeMessage({ type: 'sync', last_idx: 0, epoch: 0, chain: 0 });
    const out = ownerRefuses(net, c.peer, sync, 'room.not-member');
    expect(sentTypes(out.effects)).toEqual(['removed', 'close']);
    // c's machine refuses input after removal.
    expect(net.member(c, { kind: 'send', text: 'x', now: net.now }).error?.code).toBe('room.closed');
    everyoneReadsEveryone(net, 'after', [c]);
    // Nothing that ever reached c's link after the kick decrypts with the keys c holds.
    expect(c.state!.epochs.map((e) => e.epoch)).toEqual([0]);
    for (const n of [a, b]) expect(n.state!.members.some((m) => m.info.id === c.state!.selfId)).toBe(false);
  });
});

describe('what the link layer refuses with an authenticated refusal (4.1, 5.3, 5.8)', () => {
  it('keeps the auth token of a used, revoked or expired invite until the record is pruned, never of a pending one', () => {
    const net = new Net(device('o-retired'));
    const usedUrl = net.invite();
    const used = decodeInviteUrl(usedUrl);
    const revoked = decodeInviteUrl(net.invite());
    const expiring = decodeInviteUrl(net.invite(1000));
    const pending = decodeInviteUrl(net.invite());
    net.join('u', usedUrl);
    net.run();
    net.owner({ kind: 'revoke', invite: net.ownerState.invites[1]!.id, now: net.now });
    const retired = (): string[] => retiredAuthTokens(net.ownerState, net.now).map(toHex);
    expect(retired().sort()).toEqual([used.token, revoked.token].map((t) => toHex(saltyAuthToken(t))).sort());
    net.now += 1001;
    expect(retired()).toContain(toHex(saltyAuthToken(expiring.token)));
    net.owner({ kind: 'tick', now: net.now }); // expiry deletes the token; the derived one stays
    expect(net.ownerState.invites.filter((i) => i.token !== undefined)).toHaveLength(1); // the pending one
    expect(retired()).toHaveLength(3);
    expect(retired()).not.toContain(toHex(saltyAuthToken(pending.token)));
    // It survives the state codec (the owner's restart) and the raw tokens are gone from the record.
    const again = decodeOwnerState(encodeOwnerState(net.ownerState));
    expect(retiredAuthTokens(again, net.now).map(toHex).sort()).toEqual(retired().sort());
    // Pruned a day after expiry, with its record.
    net.now += 49 * 60 * 60 * 1000; // past every expiry (the default lifetime is a day) plus the day of grace
    net.owner({ kind: 'tick', now: net.now });
    expect(retired()).toEqual([]);
  });

  it('keeps the peer keys of removed members, and refuses a state that holds one twice or a malformed one', () => {
    const { net, nodes } = setup('o-removed-peers', ['a', 'b']);
    const [a] = nodes as [MemberNode, MemberNode];
    net.owner({ kind: 'kick', member: a.state!.selfId, now: net.now });
    net.run();
    expect(removedPeerKeys(net.ownerState)).toEqual([a.peer]);
    expect(removedPeerKeys(decodeOwnerState(encodeOwnerState(net.ownerState)))).toEqual([a.peer]);
    const twice = { ...net.ownerState, removedPeers: [a.peer, a.peer] };
    expect(() => decodeOwnerState(encodeOwnerState(twice))).toThrow(expect.objectContaining({ code: 'room.bad-state' }));
    const bad = { ...net.ownerState, removedPeers: ['XYZ' as never] };
    expect(() => decodeOwnerState(encodeOwnerState(bad))).toThrow(expect.objectContaining({ code: 'room.bad-state' }));
  });
});

describe('harness', () => {
  it('the immutability check catches a step that mutates its input', () => {
    const mutating = (s: { n: number; b: Uint8Array }, _e: { k: 1 }) => {
      s.b[0] = 1;
      return { state: s, effects: [] };
    };
    expect(() => checkedStep(mutating, { n: 1, b: new Uint8Array(2) }, { k: 1 })).toThrow(/mutated/);
  });
  it('invite URLs built by the owner decode to what it issued', () => {
    const net = new Net(device('o-url'));
    const url = net.invite();
    const inv = decodeInviteUrl(url);
    const params = { ...inv, opub: net.ownerDev.identity.publicKey, exp: net.ownerState.invites[0]!.expiresAt };
    expect(inviteUrl('https://zeroroom.test/app/', params)).toBe(url);
    expect(url.startsWith('https://zeroroom.test/app/#join=')).toBe(true);
  });
});

/** A joiner's join-request for a v2 invite: after the owner key it learns over the link (5.3). */
function joinRequestBytes(net: Net, joiner: ReturnType<typeof device>, url: string): Uint8Array {
  const invite = decodeInviteUrl(url);
  const start = startJoin(memberCtx(joiner), invite, { now: net.now, name: 'x' });
  const ownerKey = encodeMessage({ type: 'owner-key', invite: inviteIdBytes(invite.token), opub: net.ownerDev.identity.publicKey });
  const req = memberStep(memberCtx(joiner), start.state, { kind: 'received', bytes: ownerKey, now: net.now }).effects[0];
  if (req?.kind !== 'send') throw new Error('no join request');
  return req.bytes;
}

function toPeer(d: ReturnType<typeof device>): string {
  return Array.from(d.box.publicKey, (x) => x.toString(16).padStart(2, '0')).join('');
}

function idOf(d: ReturnType<typeof device>): MemberId {
  return memberIdOf(d.identity.publicKey);
}
