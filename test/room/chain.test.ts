// The hardening of docs/PROTOCOL.md sections 5.4-5.10 as scenarios (in the ts-mls style: after
// each step, who can and cannot read; every step through the harness checks that inputs are not
// mutated): catch-up across any number of rotations, one agreed member list (a withheld admission
// is seen), per-sender chains (a withheld message is seen), one peer key per member, and the new
// wire messages replayed, reordered and forged.
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, openFrom, type BoxPublicKey } from '../../crypto/index.ts';
import { decodeKeyBody, encodeEnvelopeBody } from '../../protocol/room/codec.ts';
import { ZERO_HASH, inviteIdBytes, keyHashOf, memberIdOf } from '../../protocol/room/ids.ts';
import {
  decodeInviteUrl,
  decodeMemberState,
  decodeToMember,
  decodeToOwner,
  encodeMemberState,
  encodeMessage,
  memberSafetyCode,
  memberStep,
  ownerSafetyCode,
  startJoin,
  type MemberState,
  type RoomEvent,
  type ToMember,
} from '../../protocol/room/index.ts';
import { membersHashOf, sealEnvelope, signCert, signChainEntry } from '../../protocol/room/verify.ts';
import { Net, checkedStep, device, everyoneReadsEveryone, memberCtx, type Device, type MemberNode } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

function joinAll(net: Net, names: string[]): MemberNode[] {
  const nodes = names.map((n) => net.join(n, net.invite()));
  net.run();
  for (const n of nodes) expect(n.state!.phase, n.name).toBe('member');
  return nodes;
}

const warnings = (n: MemberNode) => n.events.filter((e): e is Extract<RoomEvent, { type: 'warning' }> => e.type === 'warning');
const decoded = (packets: readonly Uint8Array[]) => packets.map(decodeToMember);
const feed = (net: Net, n: MemberNode, m: ToMember | Uint8Array) =>
  net.member(n, { kind: 'received', bytes: m instanceof Uint8Array ? m : encodeMessage(m), now: net.now });

/** Feed a message to a member; assert a typed refusal with that code and the state unchanged. */
function memberRefuses(net: Net, n: MemberNode, m: ToMember, code: string): void {
  const before = n.state!;
  const out = checkedStep((s: MemberState, e: Parameters<typeof memberStep>[2]) => memberStep(n.ctx, s, e), before, {
    kind: 'received',
    bytes: encodeMessage(m),
    now: net.now,
  });
  expect(out.error?.code).toBe(code);
  expect(out.state).toBe(before);
}

function ownerRefuses(net: Net, from: string, bytes: Uint8Array, code: string): readonly ToMember[] {
  const before = net.ownerState;
  const out = net.owner({ kind: 'received', from: from as never, bytes, now: net.now });
  expect(out.error?.code).toBe(code);
  expect(out.state).toBe(before);
  return out.effects.flatMap((e) => (e.kind === 'send' ? [decodeToMember(e.bytes)] : []));
}

describe('catch-up across rotations', () => {
  // The case: away while the room rotated every 3 messages, 10 messages missed. Before
  // this change the owner kept two keys and the member read 4 of the 10.
  for (const rotations of [1, 3, 10, 40]) {
    it(`a member away across ${rotations} rotation(s) reads everything it missed, exactly once`, () => {
      const net = new Net(device(`owner-away-${rotations}`), { rotateEveryMessages: 3 });
      const [a, b, c] = joinAll(net, ['a', 'b', 'c']) as [MemberNode, MemberNode, MemberNode];
      everyoneReadsEveryone(net, 'before');
      const epochBefore = net.ownerState.epoch;
      const shownBefore = a.texts().length;
      net.disconnect(a); // a's link is down from here: nothing reaches it
      const missed: string[] = [];
      let i = 0;
      while (net.ownerState.epoch < epochBefore + rotations || missed.length < 10) {
        const text = `missed-${i}`;
        if (i % 2 === 0) net.owner({ kind: 'send', text, now: net.now });
        else net.member(b, { kind: 'send', text, now: net.now });
        missed.push(text);
        if (i === 4) net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now }); // one removal while away
        net.run();
        i++;
      }
      expect(net.ownerState.epoch - epochBefore).toBeGreaterThanOrEqual(rotations);
      net.reconnect(a);
      net.run();
      // Every missed message once, in order; nothing skipped, no warning; the key is current.
      expect(a.texts().slice(shownBefore)).toEqual(missed);
      expect(a.events.filter((e) => e.type === 'history-skipped')).toEqual([]);
      expect(warnings(a)).toEqual([]);
      expect(a.state!.epoch).toBe(net.ownerState.epoch);
      expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
      // c left the room while a was away: a learned it from the chain, and c reads nothing after.
      expect(a.state!.members.some((m) => m.info.id === c.state!.selfId)).toBe(false);
      expect(a.events.some((e) => e.type === 'member-left' && e.member.id === c.state!.selfId)).toBe(true);
      expect(c.texts().filter((t) => t.startsWith('missed-') && missed.indexOf(t) > 4)).toEqual([]);
      everyoneReadsEveryone(net, 'after', [c]);
      // A second reconnect brings nothing twice.
      const shown = a.texts().length;
      net.now += 60_000;
      net.reconnect(a);
      net.run();
      expect(a.texts().length).toBe(shown);
    });
  }

  it('a catch-up of more than one resync page, across empty epochs whose keys the owner deleted', () => {
    const net = new Net(device('owner-pages'));
    const [a] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.disconnect(a);
    net.owner({ kind: 'send', text: 'before the quiet', now: net.now });
    for (let i = 0; i < 300; i++) net.owner({ kind: 'rotate', now: net.now }); // a quiet room, rotating on its timer
    net.owner({ kind: 'send', text: 'after the quiet', now: net.now });
    net.run(); // b follows live
    expect(net.ownerState.epochs.length).toBeLessThan(5); // empty epochs' keys are gone
    net.reconnect(a);
    const pages: MemberState[] = [];
    while (true) {
      const down = net.take(a, 'down');
      const up = net.take(a, 'up');
      for (const bytes of up) net.owner({ kind: 'received', from: a.peer, bytes, now: net.now });
      if (down.length === 0 && up.length === 0) break;
      for (const bytes of down) {
        const m = decodeToMember(bytes);
        feed(net, a, bytes);
        if (m.type === 'resync') pages.push(a.state!);
      }
    }
    expect(pages).toHaveLength(2);
    // Between the pages a's current epoch has no key: it says so rather than failing, and its state persists.
    expect(pages[0]!.epochs.find((e) => e.epoch === pages[0]!.epoch)!.key).toBeNull();
    expect(decodeMemberState(encodeMemberState(pages[0]!))).toEqual(pages[0]);
    expect(memberStep(a.ctx, pages[0]!, { kind: 'send', text: 'x', now: net.now }).error?.code).toBe('room.state');
    expect(a.state!.epoch).toBe(net.ownerState.epoch);
    expect(a.texts()).toEqual(['before the quiet', 'after the quiet']);
    expect(warnings(a)).toEqual([]);
    everyoneReadsEveryone(net, 'after the pages');
  });

  it('the catch-up keys are sealed to the returning member alone, over its link, never under a room key', () => {
    const net = new Net(device('owner-keys'), { rotateEveryMessages: 2 });
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.disconnect(a);
    for (let i = 0; i < 6; i++) net.owner({ kind: 'send', text: `k${i}`, now: net.now });
    const before = (net.wire.get(a.peer) ?? []).length;
    net.reconnect(a);
    net.run();
    const resyncs = decoded((net.wire.get(a.peer) ?? []).slice(before)).filter((m) => m.type === 'resync');
    const keys = resyncs.flatMap((m) => (m.type === 'resync' ? m.keys : []));
    expect(keys).toHaveLength(3); // one per rotation a missed
    const owner = net.ownerDev.identity.publicKey;
    for (const k of keys) {
      const body = decodeKeyBody(openFrom(a.dev.identity.privateKey, owner, k));
      expect(body.key).toEqual(net.ownerState.epochs.find((e) => e.epoch === body.epoch)?.key);
      expect(() => openFrom(b.dev.identity.privateKey, owner, k)).toThrow(expect.objectContaining({ code: 'crypto.auth' }));
    }
    expect(a.texts()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
  });

  it("a member behind the owner's retained chain is re-anchored: it still reads, and is warned", () => {
    const net = new Net(device('owner-anchor'));
    const [a] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.disconnect(a);
    for (let i = 0; i < 5; i++) {
      net.owner({ kind: 'send', text: `r${i}`, now: net.now });
      if (i % 2 === 1) net.owner({ kind: 'rotate', now: net.now });
    }
    const x = net.join('x', net.invite()); // an admission a does not see either
    net.run();
    // As if OWNER_KEPT_CHAIN links had passed: the owner holds only its head.
    net.ownerState = { ...net.ownerState, chain: net.ownerState.chain.slice(-1) };
    const before = a.state!.chain;
    net.reconnect(a);
    net.run();
    expect(warnings(a)).toEqual([
      { type: 'warning', code: 'membership-unverified', count: net.ownerState.chain[0]!.n - before, member: null },
    ]);
    expect(a.texts()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(a.state!.members.some((m) => m.info.id === x.state!.selfId)).toBe(true);
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
    everyoneReadsEveryone(net, 'after the anchor');
  });
});

describe('one agreed member list', () => {
  /** Admit x, but drop the owner's `chain` message with the admission on its way to `victim`. */
  function admitWithheldFrom(net: Net, victim: MemberNode): MemberNode {
    const x = net.join('x', net.invite());
    net.hello(x);
    net.deliverUp(x); // join-request
    for (const bytes of net.take(x, 'down')) feed(net, x, bytes); // accept -> confirm queued
    net.deliverUp(x); // confirm: the owner appends the add entry and tells everyone
    const toVictim = decoded(net.take(victim, 'down'));
    expect(toVictim.map((m) => m.type)).toEqual(['chain']);
    net.run();
    expect(x.state!.phase).toBe('member');
    return x;
  }

  it('an admission withheld from one member: different safety codes, and a warning once anyone who saw it speaks', () => {
    const net = new Net(device('owner-withhold'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    const agreed = ownerSafetyCode(net.ownerState);
    const x = admitWithheldFrom(net, a);
    // The room's code moved on; a's did not: comparing codes shows the difference.
    expect(ownerSafetyCode(net.ownerState)).not.toBe(agreed);
    expect(memberSafetyCode(b.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(memberSafetyCode(x.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(memberSafetyCode(a.state!)).toBe(agreed);
    // b speaks: its envelope names the chain position of x's admission. a reads it and asks.
    net.member(b, { kind: 'send', text: 'hello all', now: net.now });
    net.deliverUp(b);
    for (const bytes of net.take(a, 'down')) feed(net, a, bytes);
    expect(a.texts()).toContain('hello all');
    const asked = net.take(a, 'up').map(decodeToOwner);
    expect(asked.map((m) => m.type)).toEqual(['sync']);
    // The owner keeps withholding: it answers without the entry. a reports it.
    feed(net, a, { type: 'resync', anns: [], keys: [] });
    expect(warnings(a)).toEqual([{ type: 'warning', code: 'membership-withheld', count: 1, member: null }]);
    expect(memberSafetyCode(a.state!)).toBe(agreed);
    // x's messages cannot reach a: unknown sender, refused (and a asks for the chain again).
    net.member(x, { kind: 'send', text: 'from the hidden member', now: net.now });
    net.deliverUp(x);
    const fromX = net.take(a, 'down');
    const out = net.member(a, { kind: 'received', bytes: fromX[0]!, now: net.now });
    expect(out.error?.code).toBe('room.not-member');
    expect(out.effects.map((e) => e.kind === 'send' && decodeToOwner(e.bytes).type)).toEqual(['sync']);
    expect(a.texts()).not.toContain('from the hidden member');
    net.take(a, 'up');
    net.run();
    // An honest answer repairs it: a reconnects, gets the entry, and agrees with everyone.
    net.now += 60_000;
    net.reconnect(a);
    net.run();
    expect(a.state!.members.some((m) => m.info.id === x.state!.selfId)).toBe(true);
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
    expect(a.texts()).toContain('from the hidden member');
    everyoneReadsEveryone(net, 'repaired');
  });

  it('a removal (with its rotation) withheld from one member: it cannot read on, and is warned', () => {
    const net = new Net(device('owner-withhold-kick'));
    const [a, b, c] = joinAll(net, ['a', 'b', 'c']) as [MemberNode, MemberNode, MemberNode];
    net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now });
    const toA = decoded(net.take(a, 'down'));
    expect(toA.map((m) => m.type)).toEqual(['chain']); // the rotation that removes c: withheld
    net.run();
    expect(memberSafetyCode(a.state!)).not.toBe(ownerSafetyCode(net.ownerState));
    // b speaks under the new key: a cannot read it, sees b was ahead of it, and asks.
    net.member(b, { kind: 'send', text: 'after the kick', now: net.now });
    net.deliverUp(b);
    const [deliver] = net.take(a, 'down');
    const out = feed(net, a, deliver!);
    expect(out.error).toBeUndefined();
    expect(out.effects.map((e) => e.kind === 'send' && decodeToOwner(e.bytes).type)).toEqual(['sync']);
    expect(a.texts()).not.toContain('after the kick');
    net.take(a, 'up');
    feed(net, a, { type: 'resync', anns: [], keys: [] }); // the owner keeps withholding
    expect(warnings(a)).toEqual([{ type: 'warning', code: 'membership-withheld', count: 1, member: null }]);
    expect(a.state!.epochs.some((e) => e.epoch === net.ownerState.epoch)).toBe(false);
    // Honest again: a catches up and reads it.
    net.now += 60_000;
    net.reconnect(a);
    net.run();
    expect(a.texts()).toContain('after the kick');
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
    everyoneReadsEveryone(net, 'repaired', [c]);
  });

  it('two members shown two different chains at one position: their safety codes differ', () => {
    const net = new Net(device('owner-fork'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    admitWithheldFrom(net, a);
    // The owner signs a different admission at the same position (someone else) for a alone.
    const y = device('fork-y');
    const info = {
      id: memberIdOf(y.identity.publicKey),
      ipub: y.identity.publicKey,
      npub: y.box.publicKey,
      name: 'y',
      owner: false,
      epoch: a.state!.epoch,
    };
    const cert = signCert(net.ownerDev.identity.privateKey, a.state!.room, info);
    const cur = a.state!.epochs.find((e) => e.epoch === a.state!.epoch)!;
    const ann = signChainEntry(net.ownerDev.identity.privateKey, {
      op: 'add',
      room: a.state!.room,
      n: a.state!.chain + 1,
      prev: cur.annHash!,
      epoch: cur.epoch,
      firstIdx: cur.firstIdx,
      keyHash: keyHashOf(a.state!.room, cur.epoch, cur.key!),
      membersHash: membersHashOf([...a.state!.members.map((m) => m.info), info]),
      ts: 0,
      cert,
    });
    expect(feed(net, a, { type: 'chain', ann }).error).toBeUndefined();
    expect(a.state!.chain).toBe(b.state!.chain);
    expect(memberSafetyCode(a.state!)).not.toBe(memberSafetyCode(b.state!));
    expect(memberSafetyCode(b.state!)).toBe(ownerSafetyCode(net.ownerState));
  });

  it('with an honest owner, a lost admission is fetched again and nothing is reported', () => {
    const net = new Net(device('owner-lost-add'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    admitWithheldFrom(net, a);
    net.member(b, { kind: 'send', text: 'hi', now: net.now });
    net.run(); // a asks, the owner answers with the entry
    expect(warnings(a)).toEqual([]);
    expect(memberSafetyCode(a.state!)).toBe(ownerSafetyCode(net.ownerState));
    everyoneReadsEveryone(net, 'after');
  });

  it('every admission and removal moves the chain head (and the safety code) on every member', () => {
    const net = new Net(device('owner-head'));
    const [a] = joinAll(net, ['a']) as [MemberNode];
    const codes = [ownerSafetyCode(net.ownerState)];
    const [b] = joinAll(net, ['b']) as [MemberNode];
    codes.push(ownerSafetyCode(net.ownerState));
    net.owner({ kind: 'kick', member: b.state!.selfId, now: net.now });
    net.run();
    codes.push(ownerSafetyCode(net.ownerState));
    expect(new Set(codes).size).toBe(3);
    expect(memberSafetyCode(a.state!)).toBe(codes[2]);
    expect(net.ownerState.chain.map((l) => l.op)).toEqual(['create', 'add', 'add', 'rotate']);
    everyoneReadsEveryone(net, 'after', [b]);
  });
});

describe('per-sender chains', () => {
  /** b sends two messages; the owner gives `a` the second in place of the first (renumbered). */
  function withheldFirst(net: Net, a: MemberNode, b: MemberNode): void {
    net.member(b, { kind: 'send', text: 'first', now: net.now });
    net.member(b, { kind: 'send', text: 'second', now: net.now });
    net.deliverUp(b);
    net.deliverUp(b);
    const [d1, d2] = decoded(net.take(a, 'down')) as [Extract<ToMember, { type: 'deliver' }>, Extract<ToMember, { type: 'deliver' }>];
    feed(net, a, { ...d2, idx: d1.idx });
    expect(a.texts()).toEqual(['second']);
  }

  it('a withheld message: the member asks, and is warned when the owner does not produce it', () => {
    const net = new Net(device('owner-msg'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    withheldFirst(net, a, b);
    const [want] = net.take(a, 'up').map(decodeToOwner);
    expect(want?.type).toBe('want');
    if (want?.type !== 'want') throw new Error('no want');
    feed(net, a, { type: 'supply', from: want.from, before: want.before, entries: [] });
    expect(warnings(a)).toEqual([
      { type: 'warning', code: 'message-withheld', count: 1, member: { id: b.state!.selfId, name: 'b', owner: false } },
    ]);
    expect(a.texts()).toEqual(['second']);
    expect(a.state!.gaps).toEqual([]);
  });

  it('with an honest owner the missing message is supplied (late) and nothing is reported', () => {
    const net = new Net(device('owner-msg-honest'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    withheldFirst(net, a, b);
    net.run(); // the want reaches the owner, which has the message
    expect(a.texts()).toEqual(['second', 'first']);
    expect(a.events.filter((e) => e.type === 'message' && e.late === true).map((e) => e.type === 'message' && e.text)).toEqual(['first']);
    expect(warnings(a)).toEqual([]);
    expect(a.state!.gaps).toEqual([]);
  });

  it('a message the owner no longer has (trimmed from its log) is reported as withheld', () => {
    const net = new Net(device('owner-msg-trim'), { maxLogEntries: 2 });
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.member(b, { kind: 'send', text: 'first', now: net.now });
    net.member(b, { kind: 'send', text: 'second', now: net.now });
    net.deliverUp(b);
    net.deliverUp(b);
    const [d1, d2] = decoded(net.take(a, 'down')) as [Extract<ToMember, { type: 'deliver' }>, Extract<ToMember, { type: 'deliver' }>];
    feed(net, a, { ...d2, idx: d1.idx });
    for (let i = 0; i < 2; i++) net.owner({ kind: 'send', text: `pad${i}`, now: net.now }); // the log moves on
    net.take(a, 'down');
    net.run();
    expect(warnings(a).map((w) => w.code)).toEqual(['message-withheld']);
  });

  it("history the owner no longer holds is reported as trimmed, and the senders' chains start again", () => {
    const net = new Net(device('owner-trim'), { maxLogEntries: 3 });
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.member(b, { kind: 'send', text: 'seen', now: net.now });
    net.run();
    net.disconnect(a);
    for (let i = 0; i < 6; i++) net.member(b, { kind: 'send', text: `t${i}`, now: net.now });
    net.run();
    net.reconnect(a);
    net.run();
    expect(a.events.filter((e) => e.type === 'history-skipped')).toEqual([{ type: 'history-skipped', count: 3, reason: 'trimmed' }]);
    expect(a.texts()).toEqual(['seen', 't3', 't4', 't5']);
    expect(warnings(a)).toEqual([]); // b's chain restarted at the trim: no false gap
  });

  it('the owner refuses a send that does not continue its sender chain, and says where it continues', () => {
    const net = new Net(device('owner-sender-chain'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.member(a, { kind: 'send', text: 'one', now: net.now });
    net.run();
    const cur = a.state!.epochs.find((e) => e.epoch === a.state!.epoch)!;
    const seal = (seq: number, prev: Uint8Array | null) =>
      prev === null
        ? encodeEnvelopeBody({
            room: a.state!.room,
            epoch: cur.epoch,
            from: a.state!.selfId,
            seq,
            chain: null,
            prev: null,
            ct: new Uint8Array(1),
          })
        : sealEnvelope(a.dev.identity.privateKey, {
            room: a.state!.room,
            epoch: cur.epoch,
            key: cur.key!,
            from: a.state!.selfId,
            seq,
            chain: a.state!.chain,
            prev,
            body: { text: 'forked', ts: 0 },
          });
    const answer = ownerRefuses(
      net,
      a.peer,
      encodeMessage({ type: 'send', env: seal(2, new Uint8Array(32).fill(5)) }),
      'room.sender-chain',
    );
    expect(answer).toEqual([{ type: 'refused', code: 'room.sender-chain', seq: 2, tail: a.state!.tail }]);
    // A lost message: the next one is refused, the sender continues from the owner's tail.
    net.member(a, { kind: 'send', text: 'lost', now: net.now });
    net.member(a, { kind: 'send', text: 'after the loss', now: net.now });
    const up = net.take(a, 'up'); // both in flight; the first is lost on the way
    expect(a.state!.sent.map((r) => r.seq)).toEqual([2, 3]);
    net.owner({ kind: 'received', from: a.peer, bytes: up[1]!, now: net.now });
    net.run();
    // The forged one, then the one after the loss.
    expect(a.events.filter((e) => e.type === 'send-refused').map((e) => e.type === 'send-refused' && [e.code, e.seq])).toEqual([
      ['room.sender-chain', 2],
      ['room.sender-chain', 3],
    ]);
    expect(a.state!.sent).toEqual([]);
    net.member(a, { kind: 'send', text: 'resent', now: net.now });
    net.run();
    for (const n of [a, b]) expect(n.texts()).toEqual(['one', 'resent']);
    expect(warnings(b)).toEqual([]);
  });
});

describe('one peer key per member', () => {
  /** A second identity on `holder`'s peer key, joining with `url`, up to its join-request. */
  function twin(net: Net, holder: Device, url: string): { dev: Device; state: MemberState; request: Uint8Array } {
    const dev: Device = { ...device(`twin-${net.now}`), box: holder.box };
    const invite = decodeInviteUrl(url);
    const start = startJoin(memberCtx(dev), invite, { now: net.now, name: 'twin' });
    const ownerKey = encodeMessage({ type: 'owner-key', invite: inviteIdBytes(invite.token), opub: net.ownerDev.identity.publicKey });
    const step = memberStep(memberCtx(dev), start.state, { kind: 'received', bytes: ownerKey, now: net.now });
    const req = step.effects[0];
    if (req?.kind !== 'send') throw new Error('no join request');
    return { dev, state: step.state, request: req.bytes };
  }

  it("a join on a member's peer key is refused, so a spare invite cannot outlive a kick", () => {
    const net = new Net(device('owner-twin'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    const spare = net.invite();
    const { request } = twin(net, a.dev, spare);
    ownerRefuses(net, a.peer, request, 'room.peer-key-taken');
    expect(net.ownerState.invites.find((i) => i.id === net.ownerState.invites.at(-1)!.id)!.status).toBe('pending');
    net.owner({ kind: 'kick', member: a.state!.selfId, now: net.now });
    net.run();
    expect(net.ownerState.members.map((m) => m.peer)).not.toContain(a.peer);
    everyoneReadsEveryone(net, 'after the kick', [a]);
    void b;
  });

  it('two identities claiming invites on one peer key: the second confirm is refused', () => {
    const net = new Net(device('owner-twin-claims'));
    const holder = device('holder');
    const first = net.join('first', net.invite(), holder);
    net.hello(first);
    net.deliverUp(first); // claim 1: its accept waits on the link
    const other = twin(net, holder, net.invite());
    net.owner({ kind: 'received', from: first.peer, bytes: other.request, now: net.now }); // claim 2, same peer
    expect(net.ownerErrors).toEqual([]);
    const [accept1, accept2] = net.take(first, 'down');
    feed(net, first, accept1!);
    const twinStep = memberStep(memberCtx(other.dev), other.state, { kind: 'received', bytes: accept2!, now: net.now });
    expect(twinStep.state.phase).toBe('accepted');
    const confirm2 = twinStep.effects[0];
    if (confirm2?.kind !== 'send') throw new Error('no confirm');
    net.run(); // first confirms and becomes a member
    expect(first.state!.phase).toBe('member');
    // The twin's valid confirm is refused at the peer-key check, and changes nothing.
    ownerRefuses(net, first.peer, confirm2.bytes, 'room.peer-key-taken');
    expect(net.ownerState.members.filter((m) => m.peer === first.peer)).toHaveLength(1);
  });
});

describe('the new messages replayed, out of order and forged', () => {
  it('chain entries: a replay is a duplicate, one ahead of a gap waits for a sync, a forged one is refused', () => {
    const net = new Net(device('owner-entries'));
    const [a] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.owner({ kind: 'rotate', now: net.now });
    net.owner({ kind: 'rotate', now: net.now });
    const [r1, r2] = decoded(net.take(a, 'down')) as [Extract<ToMember, { type: 'chain' }>, Extract<ToMember, { type: 'chain' }>];
    // Out of order: the second first is not applied, and a asks for the chain instead.
    const early = feed(net, a, r2);
    expect(early.error).toBeUndefined();
    expect(a.state!.epoch).toBe(0);
    expect(early.effects.map((e) => e.kind === 'send' && decodeToOwner(e.bytes).type)).toEqual(['sync']);
    feed(net, a, r1);
    feed(net, a, r2);
    expect(a.state!.epoch).toBe(2);
    memberRefuses(net, a, r1, 'room.duplicate');
    memberRefuses(net, a, r2, 'room.duplicate');
    memberRefuses(net, a, { ...r2, ann: r2.ann.map((x, i) => (i === 40 ? x ^ 1 : x)) }, 'room.not-owner');
    net.run();
    expect(warnings(a)).toEqual([]);
  });

  it('resync: replays change nothing; a gap inside, a stray key or a wrong member list is refused', () => {
    const net = new Net(device('owner-resync'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.disconnect(a);
    net.owner({ kind: 'rotate', now: net.now });
    net.owner({ kind: 'rotate', now: net.now });
    const sync = encodeMessage({ type: 'sync', last_idx: a.state!.lastIdx, epoch: a.state!.epoch, chain: a.state!.chain });
    const answer = net.owner({ kind: 'received', from: a.peer, bytes: sync, now: net.now });
    const resync = answer.effects.flatMap((e) => (e.kind === 'send' ? [decodeToMember(e.bytes)] : [])).find((m) => m.type === 'resync');
    if (resync?.type !== 'resync') throw new Error('no resync');
    expect(resync.anns).toHaveLength(2);
    memberRefuses(net, a, { ...resync, anns: [resync.anns[1]!], keys: [resync.keys[1]!] }, 'room.chain-gap');
    memberRefuses(net, a, { ...resync, anns: [resync.anns[0]!] }, 'room.bad-rekey'); // a key for no entry here
    memberRefuses(net, a, { ...resync, keys: [resync.keys[1]!, resync.keys[1]!] }, 'room.bad-rekey');
    memberRefuses(net, a, { ...resync, keys: [resync.keys[0]!] }, 'room.bad-rekey'); // the current epoch without its key
    expect(feed(net, a, resync).error).toBeUndefined();
    expect(a.state!.epoch).toBe(2);
    const again = feed(net, a, resync);
    expect(again.error).toBeUndefined();
    expect(a.state!.epoch).toBe(2);
    // A re-anchor whose certificates do not match the head's member list.
    const head = net.ownerState.chain.at(-1)!.ann;
    const certs = net.ownerState.members.filter((m) => m.info.id !== b.state!.selfId).map((m) => m.cert);
    memberRefuses(net, a, { type: 'resync', anns: [head], keys: [], certs }, 'room.fork');
    memberRefuses(net, a, { type: 'resync', anns: [head], keys: [], certs: [...certs, certs[0]!] }, 'room.fork');
    expect(warnings(a)).toEqual([]);
  });

  it('welcome and refused replayed: a second welcome is out of phase; a refusal applied once changes nothing twice', () => {
    const net = new Net(device('owner-replays'));
    const [a] = joinAll(net, ['a']) as [MemberNode];
    const welcome = decoded(net.wire.get(a.peer) ?? []).find((m) => m.type === 'welcome')!;
    memberRefuses(net, a, welcome, 'room.state');
    net.member(a, { kind: 'send', text: 'pending', now: net.now });
    net.take(a, 'up'); // never reaches the owner
    const refusal: ToMember = { type: 'refused', code: 'room.epoch-expired', seq: a.state!.seq, tail: ZERO_HASH };
    feed(net, a, refusal);
    expect(a.state!.sent).toEqual([]);
    expect(a.state!.tail).toEqual(ZERO_HASH);
    const before = a.state!;
    const again = feed(net, a, refusal);
    expect(again.state).toBe(before);
    expect(again.effects.map((e) => e.kind === 'event' && e.event.type)).toEqual(['send-refused']);
    // The next message chains onto the owner's tail and is accepted.
    net.member(a, { kind: 'send', text: 'resealed', now: net.now });
    net.run();
    expect(a.texts()).toEqual(['resealed']);
  });

  it('owner-key: a replay is a duplicate; another invite or another key is refused', () => {
    const net = new Net(device('owner-ok'));
    const url = net.invite();
    const x = net.join('x', url);
    const invite = decodeInviteUrl(url);
    const id = inviteIdBytes(invite.token);
    memberRefuses(net, x, { type: 'owner-key', invite: id, opub: device('impostor').identity.publicKey }, 'room.not-owner');
    memberRefuses(net, x, { type: 'owner-key', invite: new Uint8Array(32), opub: net.ownerDev.identity.publicKey }, 'room.not-owner');
    net.hello(x);
    memberRefuses(net, x, { type: 'owner-key', invite: id, opub: net.ownerDev.identity.publicKey }, 'room.duplicate');
    net.run();
    expect(x.state!.phase).toBe('member');
    memberRefuses(net, x, { type: 'owner-key', invite: id, opub: net.ownerDev.identity.publicKey }, 'room.state');
  });

  it('join-hello for an unusable invite is refused like a join request; it changes nothing', () => {
    const net = new Net(device('owner-hello'));
    const url = net.invite(1000);
    const hello = encodeMessage({ type: 'join-hello', invite: inviteIdBytes(decodeInviteUrl(url).token) });
    const peer = device('stranger').box.publicKey;
    const ok = net.owner({ kind: 'received', from: peer as BoxPublicKey, bytes: hello, now: net.now });
    expect(ok.effects.map((e) => e.kind === 'send' && decodeToMember(e.bytes).type)).toEqual(['owner-key']);
    expect(ok.state).toBe(net.ownerState);
    net.now += 1001;
    const refused = ownerRefuses(net, peer as never, hello, 'room.invite-expired');
    expect(refused.map((m) => m.type)).toEqual(['join-refused']);
    ownerRefuses(net, peer as never, encodeMessage({ type: 'join-hello', invite: new Uint8Array(32) }), 'room.invite-unknown');
  });

  it('positions beyond the owner head are refused: sync, join-confirm, and an envelope in send', () => {
    const net = new Net(device('owner-ahead'));
    const [a] = joinAll(net, ['a']) as [MemberNode];
    const head = net.ownerState.chain.at(-1)!.n;
    ownerRefuses(net, a.peer, encodeMessage({ type: 'sync', last_idx: 0, epoch: 0, chain: head + 1 }), 'room.chain-gap');
    ownerRefuses(
      net,
      a.peer,
      encodeMessage({ type: 'join-confirm', invite: new Uint8Array(32), proof: new Uint8Array(8), chain: head + 1 }),
      'room.chain-gap',
    );
    const cur = a.state!.epochs.at(-1)!;
    const env = sealEnvelope(a.dev.identity.privateKey, {
      room: a.state!.room,
      epoch: cur.epoch,
      key: cur.key!,
      from: a.state!.selfId,
      seq: 1,
      chain: head + 1,
      prev: ZERO_HASH,
      body: { text: 'from the future', ts: 0 },
    });
    ownerRefuses(net, a.peer, encodeMessage({ type: 'send', env }), 'room.chain-gap');
  });

  it('want and supply: unknown hashes get an empty supply; a supply nobody asked for, or forged, is refused', () => {
    const net = new Net(device('owner-want'));
    const [a, b] = joinAll(net, ['a', 'b']) as [MemberNode, MemberNode];
    net.member(b, { kind: 'send', text: 'real', now: net.now });
    net.owner({ kind: 'send', text: "the owner's", now: net.now });
    net.run();
    const want = encodeMessage({ type: 'want', from: b.state!.selfId, after: ZERO_HASH, before: new Uint8Array(32).fill(8) });
    const answer = net.owner({ kind: 'received', from: a.peer, bytes: want, now: net.now });
    expect(answer.effects.map((e) => e.kind === 'send' && decodeToMember(e.bytes))).toEqual([
      { type: 'supply', from: b.state!.selfId, before: new Uint8Array(32).fill(8), entries: [] },
    ]);
    net.take(a, 'down');
    const stranger = encodeMessage({ type: 'want', from: b.state!.selfId, after: ZERO_HASH, before: ZERO_HASH });
    ownerRefuses(net, device('nobody').box.publicKey as unknown as string, stranger, 'room.not-member');
    memberRefuses(net, a, { type: 'supply', from: b.state!.selfId, before: ZERO_HASH, entries: [] }, 'room.state');
    // A gap, then a supply whose entry is not b's: refused whole, the gap stays open.
    withGap(net, a, b);
    const gap = a.state!.gaps[0]!;
    const forged = net.ownerState.log.find((e) => e.from === net.ownerState.selfId)!; // the owner's, not b's
    memberRefuses(
      net,
      a,
      { type: 'supply', from: b.state!.selfId, before: gap.before, entries: [{ idx: 0, env: forged.env }] },
      'room.bad-signature',
    );
    expect(a.state!.gaps).toHaveLength(1);
  });
});

/** Give `a` b's second message in place of its first, so a has an open gap for b. */
function withGap(net: Net, a: MemberNode, b: MemberNode): void {
  net.member(b, { kind: 'send', text: 'g1', now: net.now });
  net.member(b, { kind: 'send', text: 'g2', now: net.now });
  net.deliverUp(b);
  net.deliverUp(b);
  const [d1, d2] = decoded(net.take(a, 'down')) as [Extract<ToMember, { type: 'deliver' }>, Extract<ToMember, { type: 'deliver' }>];
  feed(net, a, { ...d2, idx: d1.idx });
  net.take(a, 'up');
  expect(a.state!.gaps).toHaveLength(1);
}
