/**
 * Test harness for the room machines: seeded randomness, an immutability check around every step,
 * and a tiny network simulator that routes effects between the owner and its members over
 * per-member links (FIFO per direction, like a peer link), optionally interleaving links at
 * random, duplicating and dropping messages, or (fullShuffle) reordering within a link too.
 */
import { expect } from 'vitest';
import {
  equalBytes,
  generateBoxKeyPair,
  generateIdentity,
  sha256,
  type IdentityKeyPair,
  type BoxKeyPair,
  type RandomBytes,
} from '../../crypto/index.ts';
import { ZeroRoomError } from '../../protocol/errors.ts';
import { encode, type Encodable } from '../../protocol/msgpack.ts';
import {
  createRoom,
  decodeInviteUrl,
  memberStep,
  ownerStep,
  peerKeyHex,
  startJoin,
  type Effect,
  type MemberCtx,
  type MemberEvent,
  type MemberState,
  type OwnerCtx,
  type OwnerEvent,
  type OwnerState,
  type PeerKeyHex,
  type RoomConfig,
  type RoomEvent,
  type Step,
} from '../../protocol/room/index.ts';

/** Deterministic bytes: SHA-256 in counter mode over a seed (tests must be reproducible). */
export function seededRandom(seed: string): RandomBytes {
  let counter = 0;
  const seedBytes = new TextEncoder().encode(seed);
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 32) {
      const block = sha256(new Uint8Array([...seedBytes, ...new Uint8Array(new Uint32Array([counter++]).buffer)]));
      out.set(block.subarray(0, Math.min(32, n - at)), at);
    }
    return out;
  };
}

/** A small PRNG for the network's choices (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Freeze plain objects and arrays deeply (typed arrays cannot be frozen; the clone compare covers them). */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  for (const v of Object.values(value as object)) deepFreeze(v);
  return Object.freeze(value);
}

function snapshot(value: unknown): Uint8Array {
  return encode(value as Encodable);
}

/** Runs one step and asserts it mutated neither its state nor its event. */
export function checkedStep<S, E>(step: (state: S, event: E) => Step<S>, state: S, event: E): Step<S> {
  // A byte snapshot (msgpack covers every field, typed arrays included) is much cheaper than a
  // structural deep-equal and catches the same mutations.
  const stateBefore = snapshot(state);
  const eventBefore = snapshot(event);
  deepFreeze(state);
  deepFreeze(event);
  const out = step(state, event);
  if (!equalBytes(snapshot(state), stateBefore)) expect.fail('the step mutated its input state');
  if (!equalBytes(snapshot(event), eventBefore)) expect.fail('the step mutated its input event');
  if (out.error !== undefined) {
    expect(out.error).toBeInstanceOf(ZeroRoomError);
    expect(out.state).toBe(state);
  }
  return out;
}

export interface Device {
  readonly identity: IdentityKeyPair;
  readonly box: BoxKeyPair;
  readonly random: RandomBytes;
}

export function device(seed: string): Device {
  const random = seededRandom(seed);
  return { identity: generateIdentity(), box: generateBoxKeyPair(random), random };
}

export const APP_URL = 'https://zeroroom.test/app/';
export const SERVER = 'ws://127.0.0.1:9/';

export function ownerCtx(d: Device, admit?: OwnerCtx['admit']): OwnerCtx {
  return {
    random: d.random,
    identity: d.identity,
    peerKey: d.box.publicKey,
    invites: { appUrl: APP_URL, server: SERVER },
    ...(admit ? { admit } : {}),
  };
}

export function memberCtx(d: Device): MemberCtx {
  return { random: d.random, identity: d.identity, peerKey: d.box.publicKey };
}

export interface NetOptions {
  /** Pick the next link at random instead of round-robin (links stay FIFO). */
  readonly interleave?: () => number;
  /** Also reorder messages within one link (breaks the link's guarantee: safety checks only). */
  readonly fullShuffle?: boolean;
  readonly dupRate?: number;
  readonly dropRate?: number;
}

interface Packet {
  readonly bytes: Uint8Array;
}

export class MemberNode {
  state: MemberState | null = null;
  events: RoomEvent[] = [];
  errors: ZeroRoomError[] = [];
  /** New keys made for a key update (PROTOCOL.md 5.8.1), until the node switches to them. */
  pending: Device | null = null;
  constructor(
    readonly name: string,
    public dev: Device,
  ) {}
  get ctx(): MemberCtx {
    const ctx = memberCtx(this.dev);
    return this.pending === null ? ctx : { ...ctx, pending: { identity: this.pending.identity, peerKey: this.pending.box.publicKey } };
  }
  get peer(): PeerKeyHex {
    return peerKeyHex(this.dev.box.publicKey);
  }
  texts(): string[] {
    return this.events.flatMap((e) => (e.type === 'message' ? [e.text] : []));
  }
}

/** Owner + members + links. Owner->member queues are keyed by member peer, member->owner by 'up:'+peer. */
export class Net {
  ownerState: OwnerState;
  ownerEvents: RoomEvent[] = [];
  ownerErrors: ZeroRoomError[] = [];
  /** Replaced by an owner key update (PROTOCOL.md 5.8.1 step 5, ownerAdoptKeys). */
  ctx: OwnerCtx;
  readonly members = new Map<PeerKeyHex, MemberNode>();
  private readonly queues = new Map<string, Packet[]>();
  private readonly closed = new Set<PeerKeyHex>();
  /** Members whose link is down: what the owner sends them is lost until they reconnect. */
  private readonly offline = new Set<PeerKeyHex>();
  now = 1_000_000;
  opts: NetOptions = {};
  /** Everything a member link ever carried to a member (to assert what a removed member could read). */
  readonly wire = new Map<PeerKeyHex, Uint8Array[]>();

  constructor(
    readonly ownerDev: Device,
    config: Partial<RoomConfig> = {},
  ) {
    this.ctx = ownerCtx(ownerDev);
    const s = createRoom(this.ctx, { now: this.now, ownerName: 'owner', name: 'test room', config });
    this.ownerState = s.state;
    this.collectOwner(s);
  }

  owner(event: OwnerEvent): Step<OwnerState> {
    const out = checkedStep((s: OwnerState, e: OwnerEvent) => ownerStep(this.ctx, s, e), this.ownerState, event);
    this.ownerState = out.state;
    this.collectOwner(out);
    return out;
  }

  /** A step of owner code outside ownerStep (away.ts ownerHandover), checked and routed like owner(). */
  ownerApply(f: (s: OwnerState) => Step<OwnerState>): Step<OwnerState> {
    const out = checkedStep((s: OwnerState) => f(s), this.ownerState, {});
    this.ownerState = out.state;
    this.collectOwner(out);
    return out;
  }

  member(node: MemberNode, event: MemberEvent): Step<MemberState> {
    const out = checkedStep((s: MemberState, e: MemberEvent) => memberStep(node.ctx, s, e), node.state!, event);
    node.state = out.state;
    if (out.error !== undefined) node.errors.push(out.error);
    this.route(node.peer, out.effects, node);
    return out;
  }

  private collectOwner(out: Step<OwnerState>): void {
    if (out.error !== undefined) this.ownerErrors.push(out.error);
    this.route(null, out.effects, null);
  }

  private route(fromMember: PeerKeyHex | null, effects: readonly Effect[], node: MemberNode | null): void {
    for (const e of effects) {
      if (e.kind === 'event') {
        (node ? node.events : this.ownerEvents).push(e.event);
      } else if (e.kind === 'send') {
        const key = fromMember === null ? e.to : `up:${fromMember}`;
        if (fromMember === null && (this.closed.has(e.to) || this.offline.has(e.to))) continue;
        if (fromMember !== null && this.offline.has(fromMember)) continue;
        if (!this.queues.has(key)) this.queues.set(key, []);
        this.queues.get(key)!.push({ bytes: e.bytes });
      } else {
        // A closed link delivers what was queued before the close, then nothing more.
        this.closed.add(fromMember ?? e.to);
      }
    }
  }

  invite(ttlMs?: number): string {
    const out = this.owner({ kind: 'invite', now: this.now, ...(ttlMs === undefined ? {} : { ttlMs }) });
    const ev = out.effects.find((e) => e.kind === 'event' && e.event.type === 'invite');
    if (ev?.kind !== 'event' || ev.event.type !== 'invite') throw new Error('no invite event');
    return ev.event.url;
  }

  /** Start a join from an invite URL on a new (or given) device; delivery happens in run(). */
  join(name: string, url: string, dev: Device = device(`dev-${name}-${this.now}`)): MemberNode {
    const node = new MemberNode(name, dev);
    this.members.set(node.peer, node);
    this.closed.delete(node.peer);
    const out = startJoin(node.ctx, decodeInviteUrl(url), { now: this.now, name });
    node.state = out.state;
    this.route(node.peer, out.effects, node);
    return node;
  }

  /**
   * After a member's machine switched to its pending keys (5.8.1): the device now is the new one,
   * and its link to the owner is a new one (under the new peer key), opened here.
   */
  adoptKeys(node: MemberNode): void {
    if (node.pending === null) throw new Error(`${node.name} has no pending keys`);
    this.members.delete(node.peer);
    node.dev = node.pending;
    node.pending = null;
    this.members.set(node.peer, node);
    this.reconnect(node);
  }

  /** After an owner key update (5.8.1 step 5): the owner runs on its new device from now on. */
  ownerAdoptKeys(dev: Device): void {
    this.ctx = ownerCtx(dev);
  }

  /** Put a node (e.g. a copy of a device) on the network under its own peer key. */
  attach(node: MemberNode): void {
    this.members.set(node.peer, node);
    this.closed.delete(node.peer);
  }

  /** A link drops: everything in flight on it is lost; then it reconnects. */
  reconnect(node: MemberNode): void {
    this.queues.delete(node.peer);
    this.queues.delete(`up:${node.peer}`);
    this.offline.delete(node.peer);
    this.member(node, { kind: 'connected', now: this.now });
  }

  /** A member's link goes down and stays down (everything either way is lost) until reconnect(). */
  disconnect(node: MemberNode): void {
    this.queues.delete(node.peer);
    this.queues.delete(`up:${node.peer}`);
    this.offline.add(node.peer);
  }

  /** Deliver until quiet. Returns the number of packets handled. */
  run(maxSteps = 100_000): number {
    let n = 0;
    const pick = this.opts.interleave;
    while (n < maxSteps) {
      const keys = [...this.queues.entries()].filter(([, q]) => q.length > 0).map(([k]) => k);
      if (keys.length === 0) return n;
      const key = pick ? keys[Math.floor(pick() * keys.length)]! : keys[0]!;
      const q = this.queues.get(key)!;
      const at = this.opts.fullShuffle && pick ? Math.floor(pick() * q.length) : 0;
      const [packet] = q.splice(at, 1);
      n++;
      const roll = pick ? pick() : 1;
      if (roll < (this.opts.dropRate ?? 0)) continue;
      if (roll > 1 - (this.opts.dupRate ?? 0)) q.push(packet!);
      this.deliver(key, packet!.bytes);
    }
    throw new Error('network did not go quiet');
  }

  /** Remove and return what is in flight to a member (down) or from it to the owner (up). */
  take(node: MemberNode, direction: 'down' | 'up'): Uint8Array[] {
    const key = direction === 'down' ? node.peer : `up:${node.peer}`;
    const q = this.queues.get(key) ?? [];
    this.queues.delete(key);
    return q.map((p) => p.bytes);
  }

  /**
   * A v2 joiner's first round trip (docs/PROTOCOL.md 5.3): its join-hello up, the owner-key down;
   * afterwards its join-request waits to be delivered (deliverUp).
   */
  hello(node: MemberNode): void {
    if (node.state!.ownerIpub !== null) return;
    this.deliverUp(node);
    for (const bytes of this.take(node, 'down')) this.member(node, { kind: 'received', bytes, now: this.now });
    if (node.state!.ownerIpub === null) throw new Error(`${node.name} did not get the owner key`);
  }

  /** Deliver the oldest packet a member sent to the owner (for precise interleavings). */
  deliverUp(node: MemberNode): void {
    const packet = this.queues.get(`up:${node.peer}`)?.shift();
    if (packet === undefined) throw new Error(`nothing in flight from ${node.name}`);
    this.deliver(`up:${node.peer}`, packet.bytes);
  }

  private deliver(key: string, bytes: Uint8Array): void {
    this.now += 1;
    if (key.startsWith('up:')) {
      const peer = key.slice(3) as PeerKeyHex;
      this.owner({ kind: 'received', from: peer, bytes, now: this.now });
    } else {
      const node = this.members.get(key as PeerKeyHex)!;
      if (!this.wire.has(node.peer)) this.wire.set(node.peer, []);
      this.wire.get(node.peer)!.push(bytes);
      this.member(node, { kind: 'received', bytes, now: this.now });
    }
  }

  /** Members currently in the room according to the owner (excluding the owner). */
  current(): MemberNode[] {
    const peers = new Set(this.ownerState.members.filter((m) => !m.info.owner).map((m) => m.peer));
    return [...this.members.values()].filter((n) => peers.has(n.peer) && n.state?.phase === 'member');
  }
}

/**
 * Everyone in the room sends one message; afterwards every current member and the owner have read
 * all of them, and every node in `excluded` has read none.
 */
export function everyoneReadsEveryone(net: Net, tag: string, excluded: readonly MemberNode[] = []): void {
  const senders = net.current();
  const texts = [`${tag}:owner`, ...senders.map((n) => `${tag}:${n.name}`)];
  net.owner({ kind: 'send', text: texts[0]!, now: net.now });
  for (const n of senders) {
    const out = net.member(n, { kind: 'send', text: `${tag}:${n.name}`, now: net.now });
    expect(out.error).toBeUndefined();
  }
  net.run();
  const ownerTexts = net.ownerEvents.flatMap((e) => (e.type === 'message' ? [e.text] : []));
  for (const t of texts) expect(ownerTexts, `owner reads ${t}`).toContain(t);
  for (const n of senders) {
    const got = n.texts();
    for (const t of texts) expect(got, `${n.name} reads ${t}`).toContain(t);
  }
  for (const n of excluded) {
    for (const t of texts) expect(n.texts(), `${n.name} must not read ${t}`).not.toContain(t);
  }
}
