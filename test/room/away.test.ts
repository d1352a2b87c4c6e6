// Owner away (docs/PROTOCOL.md 5.16, THREAT-MODEL.md "While the owner is away"): members talk
// directly while the owner is unreachable and hand it what was said; the owner orders it once.
// The machines and crypto are the real ones; the mesh below routes away.ts effects between members
// (FIFO per link, like a peer link), the owner side goes through the harness (every step checked
// for input mutation).
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, toHex } from '../../crypto/index.ts';
import { encode } from '../../protocol/msgpack.ts';
import {
  EMPTY_AWAY,
  MAX_AWAY_MESSAGES,
  awayClosed,
  awayHandover,
  awayOpened,
  awayOwn,
  awayReceived,
  awaySettle,
  decodeAwayMessage,
  encodeAwayMessage,
  isAwayMessage,
  meshRoles,
  ownerHandover,
  type AwayEvent,
  type AwayState,
  type AwayStep,
} from '../../protocol/room/away.ts';
import { decodeToOwner, encodeMessage, type MemberState, type PeerKeyHex, type RoomEvent } from '../../protocol/room/index.ts';
import { sealEnvelope, signChainEntry } from '../../protocol/room/verify.ts';
import { decodeChainBody } from '../../protocol/room/codec.ts';
import { verify } from '../../crypto/index.ts';
import { Net, deepFreeze, device, type MemberNode } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

/** The members' direct links: away.ts steps, FIFO per link. */
class Mesh {
  readonly away = new Map<MemberNode, AwayState>();
  readonly events = new Map<MemberNode, AwayEvent[]>();
  readonly errors: { node: string; code: string }[] = [];
  readonly closed: { node: string; to: PeerKeyHex }[] = [];
  private queue: { from: MemberNode; to: MemberNode; bytes: Uint8Array }[] = [];
  /** Own messages sent while away: the driver's outbox, per member. */
  readonly outbox = new Map<MemberNode, Uint8Array[]>();

  constructor(
    readonly net: Net,
    readonly nodes: MemberNode[],
  ) {
    for (const n of nodes) this.reset(n);
  }

  reset(n: MemberNode): void {
    this.away.set(n, EMPTY_AWAY);
    this.events.set(n, []);
  }

  node(peer: PeerKeyHex): MemberNode {
    return this.nodes.find((n) => n.peer === peer)!;
  }

  apply(n: MemberNode, step: AwayStep): AwayStep {
    // Pure: the inputs are not mutated.
    deepFreeze(this.away.get(n)!);
    this.away.set(n, step.state);
    if (step.error !== undefined) {
      this.errors.push({ node: n.name, code: step.error.code });
      expect(step.state).toBe(this.away.get(n));
    }
    for (const e of step.effects) {
      if (e.kind === 'send') this.queue.push({ from: n, to: this.node(e.to), bytes: e.bytes });
      else if (e.kind === 'close') this.closed.push({ node: n.name, to: e.to });
      else this.events.get(n)!.push(e.event);
    }
    return step;
  }

  link(a: MemberNode, b: MemberNode): void {
    this.apply(a, awayOpened(a.state!, this.away.get(a)!, b.peer));
    this.apply(b, awayOpened(b.state!, this.away.get(b)!, a.peer));
  }

  unlink(a: MemberNode, b: MemberNode): void {
    this.apply(a, awayClosed(this.away.get(a)!, b.peer));
    this.apply(b, awayClosed(this.away.get(b)!, a.peer));
    this.queue = this.queue.filter((q) => !((q.from === a && q.to === b) || (q.from === b && q.to === a)));
  }

  /** Every pair once, by the pairing rule: each member dials the smaller keys. */
  connectAll(nodes: MemberNode[] = this.nodes): void {
    for (const n of nodes) for (const k of meshRoles(n.state!).dial) if (nodes.some((x) => x.peer === k)) this.link(n, this.node(k));
  }

  deliver(from: MemberNode, to: MemberNode, bytes: Uint8Array): AwayStep {
    return this.apply(to, awayReceived(to.state!, this.away.get(to)!, from.peer, bytes));
  }

  run(): void {
    while (this.queue.length > 0) {
      const q = this.queue.shift()!;
      this.deliver(q.from, q.to, q.bytes);
    }
  }

  /** A member says something while away: the machine seals it (outbox), the mesh carries it. */
  say(n: MemberNode, text: string): Uint8Array {
    const out = this.net.member(n, { kind: 'send', text, now: this.net.now });
    expect(out.error).toBeUndefined();
    const wire = out.effects.find((e) => e.kind === 'send')!;
    if (wire.kind !== 'send') throw new Error('no send');
    this.outbox.set(n, [...(this.outbox.get(n) ?? []), wire.bytes]);
    const msg = decodeToOwner(wire.bytes);
    if (msg.type !== 'send') throw new Error('not a send');
    this.apply(n, awayOwn(n.state!, this.away.get(n)!, msg.env));
    return msg.env;
  }

  provisional(n: MemberNode): string[] {
    return this.events.get(n)!.flatMap((e) => (e.type === 'away-message' ? [e.entry.text] : []));
  }

  /** The owner is back for `n`: sync (reconnect), its outbox again, then its handover pages. */
  handBack(n: MemberNode): void {
    this.net.reconnect(n);
    this.net.run();
    for (const wire of this.outbox.get(n) ?? []) this.net.owner({ kind: 'received', from: n.peer, bytes: wire, now: this.net.now });
    for (const page of awayHandover(this.away.get(n)!))
      this.net.ownerApply((s) => ownerHandover(this.net.ctx, s, n.peer, page, this.net.now));
    this.net.run();
  }
}

type Message = Extract<RoomEvent, { type: 'message' }>;
const ordered = (events: readonly RoomEvent[]): Message[] => events.filter((e): e is Message => e.type === 'message');
const view = (events: readonly RoomEvent[]): string[] => ordered(events).map((e) => `${e.idx}:${e.text}`);

function room(seed: string, names = ['ann', 'bob', 'cat']): { net: Net; nodes: MemberNode[] } {
  const net = new Net(device(seed));
  const nodes = names.map((n) => net.join(n, net.invite()));
  net.run();
  for (const n of nodes) expect(n.state!.phase).toBe('member');
  return { net, nodes };
}

describe('away messages (5.16 wire)', () => {
  const env = new Uint8Array([1, 2, 3]);
  const from = 'a'.repeat(32);

  it('round-trips each message and tells them from room messages', () => {
    for (const m of [
      { type: 'away-hello', head: env },
      { type: 'away-msg', from, env },
      { type: 'away-handover', entries: [{ from, env }] },
    ] as const) {
      const bytes = encodeAwayMessage(m as never);
      expect(decodeAwayMessage(bytes)).toEqual(m);
      expect(isAwayMessage(bytes)).toBe(true);
    }
    expect(isAwayMessage(encodeMessage({ type: 'leave' }))).toBe(false);
    expect(isAwayMessage(new Uint8Array([0xc1]))).toBe(false);
  });

  it('refuses malformed, oversized and unknown input with a typed error', () => {
    const bad = [
      encode({ type: 'away-nope' }),
      encode({ type: 'away-hello', head: env, extra: 1 }),
      encode({ type: 'away-hello', head: new Uint8Array(0) }),
      encode({ type: 'away-hello', head: 'text' }),
      encode({ type: 'away-msg', from: 'A'.repeat(32), env }),
      encode({ type: 'away-msg', from, env: new Uint8Array(128 * 1024 + 1) }),
      encode({ type: 'away-msg', from }),
      encode({ type: 'away-handover', entries: [{ from, env, idx: 0 }] }),
      encode({ type: 'away-handover', entries: Array.from({ length: MAX_AWAY_MESSAGES + 1 }, () => ({ from, env })) }),
      encode({ type: 'away-handover', entries: [1] }),
      encode([1, 2]),
      new Uint8Array(1024 * 1024 + 1),
    ];
    for (const b of bad) expect(() => decodeAwayMessage(b)).toThrowError(expect.objectContaining({ code: 'decode' }) as Error);
  });
});

describe('members talk while the owner is away (5.16)', () => {
  it('owner and three members: the owner leaves, members chat, one restarts, the owner returns: one history, each message once', () => {
    const { net, nodes } = room('away-scenario');
    const [ann, bob, cat] = nodes as [MemberNode, MemberNode, MemberNode];
    net.owner({ kind: 'send', text: 'before', now: net.now });
    net.member(bob, { kind: 'send', text: 'bob before', now: net.now });
    net.run();

    // The owner goes away: every member's link to it is down.
    for (const n of nodes) net.disconnect(n);
    const mesh = new Mesh(net, nodes);
    mesh.connectAll();
    mesh.run();
    for (const n of nodes) expect(mesh.away.get(n)!.peers.map((p) => p.status)).toEqual(['ready', 'ready']);

    mesh.say(ann, 'ann 1');
    mesh.say(bob, 'bob 1');
    mesh.run();
    mesh.say(cat, 'cat 1');
    mesh.say(ann, 'ann 2');
    mesh.run();
    for (const n of nodes) expect(mesh.provisional(n).sort(), n.name).toEqual(['ann 1', 'ann 2', 'bob 1', 'cat 1']);

    // cat restarts: its away state is gone (not persisted); its peers see the links close.
    mesh.unlink(cat, ann);
    mesh.unlink(cat, bob);
    mesh.reset(cat);
    mesh.say(bob, 'bob 2 (cat is down)');
    mesh.run();
    mesh.connectAll();
    mesh.run();
    // Back: it has everything again, from its peers (its own message too).
    expect(mesh.away.get(cat)!.held.map((h) => h.seq).length).toBe(5);
    expect(mesh.provisional(cat).sort()).toEqual(['ann 1', 'ann 2', 'bob 1', 'bob 2 (cat is down)', 'cat 1']);
    mesh.say(cat, 'cat 2');
    mesh.run();
    // Flooding brings most envelopes twice (directly and forwarded): the copy is dropped, nothing else is refused.
    expect(mesh.errors.filter((e) => e.code !== 'room.duplicate')).toEqual([]);

    // The owner returns. cat stays offline at first: its messages reach the owner through the others.
    mesh.handBack(ann);
    mesh.handBack(bob);
    const said = ['ann 1', 'ann 2', 'bob 1', 'bob 2 (cat is down)', 'cat 1', 'cat 2'];
    const ownerTexts = ordered(net.ownerEvents).map((e) => e.text);
    for (const t of said)
      expect(
        ownerTexts.filter((x) => x === t),
        t,
      ).toHaveLength(1);
    mesh.handBack(cat); // its outbox and handover now only repeat what is ordered: nothing new
    expect(ordered(net.ownerEvents).map((e) => e.text)).toEqual(ownerTexts);

    // Every member and the owner: the same history, same order, no duplicates.
    const owner = view(net.ownerEvents);
    expect(new Set(owner).size).toBe(owner.length);
    expect(ordered(net.ownerEvents).map((e) => e.text)).toEqual(expect.arrayContaining([...said, 'before', 'bob before']));
    for (const n of nodes) expect(view(n.events), n.name).toEqual(owner);

    // Each held (provisional) message is settled by its ordered copy.
    for (const n of nodes) {
      const step = mesh.apply(n, awaySettle(n.state!, mesh.away.get(n)!, ordered(n.events)));
      expect(step.state.held).toEqual([]);
      const settled = step.effects.flatMap((e) => (e.kind === 'event' && e.event.type === 'away-settled' ? [e.event.idx] : []));
      expect(settled.every((i) => i !== null)).toBe(true);
    }
  });

  it('refuses replayed, out-of-order, forged and foreign envelopes on a mesh link', () => {
    const { net, nodes } = room('away-refusals');
    const [ann, bob] = nodes as [MemberNode, MemberNode, MemberNode];
    for (const n of nodes) net.disconnect(n);
    const mesh = new Mesh(net, nodes);
    mesh.connectAll();
    mesh.run();
    const env1 = mesh.say(ann, 'one');
    mesh.run();
    const codeOf = (s: AwayStep) => s.error?.code;
    const msg = (env: Uint8Array, from = ann.state!.selfId) => encodeAwayMessage({ type: 'away-msg', from, env });
    // Replayed: the same envelope again.
    expect(codeOf(mesh.deliver(ann, bob, msg(env1)))).toBe('room.duplicate');
    // Claimed for another sender: it does not verify with that sender's key.
    expect(codeOf(mesh.deliver(ann, bob, msg(env1, bob.state!.selfId)))).toBe('room.bad-signature');
    // Tampered.
    const bent = env1.slice();
    bent[bent.length - 1]! ^= 1;
    expect(['room.bad-signature', 'crypto.auth']).toContain(codeOf(mesh.deliver(ann, bob, msg(bent))));
    // Out of order: ann's third message reaches bob before its second.
    mesh.unlink(ann, bob);
    const env2 = mesh.say(ann, 'two');
    const env3 = mesh.say(ann, 'three');
    mesh.run();
    mesh.link(ann, bob);
    mesh.run(); // the hellos; gossip brings two and three in order
    expect(mesh.provisional(bob)).toEqual(['one', 'two', 'three']);
    expect(codeOf(mesh.deliver(ann, bob, msg(env2)))).toBe('room.duplicate');
    const cat = nodes[2]!;
    mesh.reset(cat);
    mesh.unlink(cat, ann);
    mesh.link(cat, ann);
    // Before the hello nothing is taken.
    expect(codeOf(mesh.deliver(ann, cat, msg(env1)))).toBe('room.state');
    mesh.run();
    mesh.reset(cat);
    mesh.unlink(cat, ann);
    mesh.link(cat, ann);
    mesh.run();
    // cat got one, two, three in order from ann; a fresh cat fed three before two is refused.
    mesh.reset(cat);
    mesh.unlink(cat, ann);
    mesh.apply(cat, awayOpened(cat.state!, mesh.away.get(cat)!, ann.peer));
    const hello = encodeAwayMessage({ type: 'away-hello', head: ann.state!.epochs.find((e) => e.epoch === ann.state!.epoch)!.ann! });
    mesh.deliver(ann, cat, hello);
    expect(codeOf(mesh.deliver(ann, cat, msg(env1)))).toBeUndefined();
    expect(codeOf(mesh.deliver(ann, cat, msg(env3)))).toBe('room.sender-chain');
    expect(codeOf(mesh.deliver(ann, cat, msg(env2)))).toBeUndefined();
    expect(codeOf(mesh.deliver(ann, cat, msg(env2)))).toBe('room.duplicate');
    // A handover is for the owner only.
    expect(codeOf(mesh.deliver(ann, cat, encodeAwayMessage({ type: 'away-handover', entries: [] })))).toBe('room.forbidden');
    // Malformed.
    expect(codeOf(mesh.deliver(ann, cat, encode({ type: 'away-msg' })))).toBe('decode');
  });

  it("a removed member's key cannot join the mesh", () => {
    const { net, nodes } = room('away-removed', ['ann', 'bob', 'cat', 'eve']);
    const [ann, bob, cat, eve] = nodes as [MemberNode, MemberNode, MemberNode, MemberNode];
    net.owner({ kind: 'kick', member: eve.state!.selfId, now: net.now });
    net.run();
    expect(eve.state!.phase).toBe('removed');
    for (const n of [ann, bob, cat]) net.disconnect(n);
    // Nobody dials or trusts eve's key (the link layer refuses it) ...
    for (const n of [ann, bob, cat]) {
      const roles = meshRoles(n.state!);
      expect([...roles.trust, ...roles.dial]).not.toContain(eve.peer);
    }
    // ... and a link from it is refused and closed by the machine.
    const mesh = new Mesh(net, nodes);
    const step = mesh.apply(ann, awayOpened(ann.state!, mesh.away.get(ann)!, eve.peer));
    expect(step.error?.code).toBe('room.not-member');
    expect(mesh.closed).toEqual([{ node: 'ann', to: eve.peer }]);
    expect(mesh.away.get(ann)!.peers).toEqual([]);
    // Input on a link that was never admitted is refused too.
    const env = encodeAwayMessage({ type: 'away-hello', head: eve.state!.epochs.at(-1)!.ann! });
    expect(awayReceived(ann.state!, mesh.away.get(ann)!, eve.peer, env).error?.code).toBe('room.not-member');
    // eve (removed: not a member any more) takes part in nothing.
    expect(meshRoles(eve.state!)).toEqual({ trust: [], dial: [] });
    // Its envelope relayed by a member is refused as not-member.
    mesh.link(ann, bob);
    mesh.run();
    const old = eve.state!.epochs.find((e) => e.epoch === eve.state!.epoch)!;
    const forged = sealEnvelope(eve.dev.identity.privateKey, {
      room: eve.state!.room,
      epoch: ann.state!.epoch,
      key: old.key!,
      from: eve.state!.selfId,
      seq: eve.state!.seq + 1,
      chain: eve.state!.chain,
      prev: eve.state!.tail,
      body: { text: 'eve', ts: 0 },
    });
    const relayed = mesh.deliver(bob, ann, encodeAwayMessage({ type: 'away-msg', from: eve.state!.selfId, env: forged }));
    expect(relayed.error?.code).toBe('room.not-member');
    expect(mesh.provisional(ann)).toEqual([]);
  });

  it('a forged roster (a chain head not signed by the owner) is refused', () => {
    const { net, nodes } = room('away-forged');
    const [ann, bob] = nodes as [MemberNode, MemberNode, MemberNode];
    for (const n of nodes) net.disconnect(n);
    const mesh = new Mesh(net, nodes);
    mesh.apply(ann, awayOpened(ann.state!, mesh.away.get(ann)!, bob.peer));
    // bob's head, re-signed with bob's own identity key (a roster of its choosing).
    const head = bob.state!.epochs.find((e) => e.epoch === bob.state!.epoch)!.ann!;
    const body = decodeChainBody(verify(net.ownerState.members.find((m) => m.info.owner)!.info.ipub, head));
    const forged = signChainEntry(bob.dev.identity.privateKey, body);
    const step = mesh.deliver(bob, ann, encodeAwayMessage({ type: 'away-hello', head: forged }));
    expect(step.error?.code).toBe('room.not-owner');
    expect(mesh.away.get(ann)!.peers.map((p) => p.status)).toEqual(['hello']);
    // A different owner-signed head at the same position would be a fork; an older one makes bob stale.
    expect(toHex(forged)).not.toBe(toHex(head));
  });

  it('two members who disagree about the epoch talk to nobody and are reconciled by the owner on return', () => {
    const { net, nodes } = room('away-epochs');
    const [ann, bob, cat] = nodes as [MemberNode, MemberNode, MemberNode];
    // bob misses a rotation: its link is down while the owner rotates, then the owner leaves.
    net.disconnect(bob);
    net.owner({ kind: 'rotate', now: net.now });
    net.run();
    expect(ann.state!.epoch).toBe(bob.state!.epoch + 1);
    net.disconnect(ann);
    net.disconnect(cat);
    const mesh = new Mesh(net, nodes);
    mesh.connectAll();
    mesh.run();
    // ann and cat agree; bob is behind (each thinks the other is wrong about the epoch).
    expect(mesh.away.get(bob)!.behind).toBe(true);
    expect(mesh.away.get(ann)!.peers.find((p) => p.peer === bob.peer)!.status).toBe('stale');
    expect(mesh.away.get(cat)!.peers.find((p) => p.peer === ann.peer)!.status).toBe('ready');
    mesh.say(ann, 'ann new epoch');
    const bobEnv = mesh.say(bob, 'bob old epoch');
    mesh.run();
    expect(mesh.provisional(cat)).toEqual(['ann new epoch']);
    expect(mesh.provisional(bob)).toEqual([]); // behind: neither sends nor takes (its own stays in the outbox)
    expect(mesh.errors.map((e) => `${e.node}:${e.code}`)).toContain('bob:room.state');
    // bob's old-epoch envelope forced onto ann is refused.
    expect(mesh.deliver(bob, cat, encodeAwayMessage({ type: 'away-msg', from: bob.state!.selfId, env: bobEnv })).error?.code).toBe(
      'room.state',
    );

    // The owner returns after the grace window.
    net.now += 60_000;
    mesh.handBack(ann);
    mesh.handBack(cat);
    mesh.handBack(bob);
    // bob got the rotation in its resync; its old-epoch message was refused and is sealed again (driver rule 6).
    expect(bob.state!.epoch).toBe(ann.state!.epoch);
    const refused = bob.events.filter((e) => e.type === 'send-refused');
    expect(refused.map((e) => (e.type === 'send-refused' ? e.code : ''))).toContain('room.epoch-expired');
    net.member(bob, { kind: 'send', text: 'bob old epoch', now: net.now });
    net.run();
    const owner = view(net.ownerEvents);
    for (const n of nodes) expect(view(n.events), n.name).toEqual(owner);
    expect(ordered(net.ownerEvents).filter((e) => e.text === 'bob old epoch')).toHaveLength(1);
    expect(ordered(net.ownerEvents).filter((e) => e.text === 'ann new epoch')).toHaveLength(1);
  });

  it('the owner refuses a handover from a non-member, skips duplicates and defers the count rotation to the end of the step', () => {
    const net = new Net(device('away-owner'), { rotateEveryMessages: 3 });
    const nodes = ['ann', 'bob'].map((n) => net.join(n, net.invite()));
    net.run();
    const [ann, bob] = nodes as [MemberNode, MemberNode];
    for (const n of nodes) net.disconnect(n);
    const mesh = new Mesh(net, nodes);
    mesh.connectAll();
    mesh.run();
    for (let i = 0; i < 5; i++) mesh.say(ann, `a${i}`);
    mesh.run();
    const page = awayHandover(mesh.away.get(bob)!)[0]!;
    const stranger = device('stranger');
    const refused = net.ownerApply((s) => ownerHandover(net.ctx, s, toHex(stranger.box.publicKey) as PeerKeyHex, page, net.now));
    expect(refused.error?.code).toBe('room.not-member');
    const epoch = net.ownerState.epoch;
    net.reconnect(bob);
    net.run();
    // Reversed: the rounds still order all five, in chain order.
    const reversed = encodeAwayMessage({ type: 'away-handover', entries: [...decodeAway(page)].reverse() });
    net.ownerApply((s) => ownerHandover(net.ctx, s, bob.peer, reversed, net.now));
    const texts = ordered(net.ownerEvents).map((e) => e.text);
    expect(texts).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    // All five in one epoch, one rotation at the end.
    expect(net.ownerState.log.map((l) => l.epoch)).toEqual([epoch, epoch, epoch, epoch, epoch]);
    expect(net.ownerState.epoch).toBe(epoch + 1);
    // The same page again changes nothing.
    const before = net.ownerState;
    const again = net.ownerApply((s) => ownerHandover(net.ctx, s, bob.peer, page, net.now));
    expect(again.error).toBeUndefined();
    expect(again.effects).toEqual([]);
    expect(net.ownerState).toBe(before);
    // A mesh message sent to the owner is refused.
    const bad = encodeAwayMessage({ type: 'away-hello', head: new Uint8Array([1]) });
    expect(net.ownerApply((s) => ownerHandover(net.ctx, s, bob.peer, bad, net.now)).error?.code).toBe('room.forbidden');
  });
});

function decodeAway(page: Uint8Array): readonly { from: MemberState['selfId']; env: Uint8Array }[] {
  const m = decodeAwayMessage(page);
  if (m.type !== 'away-handover') throw new Error('not a handover');
  return m.entries;
}
