/**
 * In-memory world for the room driver (protocol/room/driver.ts): a fake link layer with the link
 * contract the driver relies on (in-order delivery, a link object that survives drops and is given a
 * new session, admission by invite token or trusted key, fatal refusals), a memory store that can
 * fail or "crash" after a save, and manual timers. The thing under test is the driver; the machines
 * and crypto are the real ones.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { equalBytes, generateBoxKeyPair, generateIdentity, toHex, type BoxPublicKey, type RandomBytes } from '../../crypto/index.ts';
import { ZeroRoomError } from '../../protocol/errors.ts';
import { Emitter } from '../../protocol/link/emitter.ts';
import { FATAL_JOIN_CODES } from '../../protocol/link/member.ts';
import type { OwnerHandle } from '../../protocol/link/owner.ts';
import { LinkClosedError, type LinkState, type PeerLink, type PeerLinkEvents } from '../../protocol/link/peer-link.ts';
import { SaltyClientError } from '../../protocol/saltyrtc/client-errors.ts';
import type { Timers } from '../../protocol/saltyrtc/client-driver.ts';
import type {
  DriverEnv,
  DriverEvent,
  Logger,
  OwnerLinkHooks,
  OwnerLinkPort,
  MemberLinkPort,
  RoomStore,
} from '../../protocol/room/driver-ports.ts';
import { MemberDriver } from '../../protocol/room/member-driver.ts';
import { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import {
  decodeRoomRecord,
  encodeRoomRecord,
  type HistoryRecord,
  type OutboxRecord,
  type RoomIdentity,
} from '../../protocol/room/records.ts';
import {
  createRoom,
  decodeInviteUrl,
  startJoin,
  type MemberState,
  type OwnerState,
  type RoomConfig,
  type RoomEvent,
} from '../../protocol/room/index.ts';
import { seededRandom } from './harness.ts';

export const APP_URL = 'https://zeroroom.test/';
/** The link layer's final refusal code (whichever FATAL_JOIN_CODES names first). */
export const REFUSED = [...FATAL_JOIN_CODES][0]!;

/** A final refusal of the owner, as the link layer reports it. */
function refusal(message: string): ZeroRoomError {
  return new ZeroRoomError(REFUSED, message);
}
export const SERVER = 'ws://127.0.0.1:9';

// ---- time ----------------------------------------------------------------------------------

/** Timers that fire only when the test advances the clock. */
export class ManualTimers implements Timers {
  private clock = 1_700_000_000_000;
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; f: () => void }>();

  now(): number {
    return this.clock;
  }

  setTimeout(f: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.clock + Math.max(0, ms), f });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Moves the clock by `ms`, firing due timers in time order (a timer set meanwhile fires too, if due). */
  advance(ms: number): void {
    const end = this.clock + ms;
    for (;;) {
      let first: [number, { at: number; f: () => void }] | undefined;
      for (const entry of this.pending) if (entry[1].at <= end && (first === undefined || entry[1].at < first[1].at)) first = entry;
      if (first === undefined) break;
      this.pending.delete(first[0]);
      this.clock = Math.max(this.clock, first[1].at);
      first[1].f();
    }
    this.clock = end;
  }

  get count(): number {
    return this.pending.size;
  }
}

// ---- links ---------------------------------------------------------------------------------

const isOpen = (s: LinkState): boolean => s === 'direct' || s === 'relayed';

export class FakeLink implements PeerLink {
  stateValue: LinkState = 'connecting';
  peer: FakeLink | null = null;
  /** Sent and not yet handed to a peer (survives drops, like the link layer's resend queue). */
  readonly queue: Uint8Array[] = [];
  /** A crashed process: its side of the link is gone. */
  dead = false;
  readonly sent: Uint8Array[] = [];
  private readonly events = new Emitter<PeerLinkEvents>();
  private early: Uint8Array[] | null = [];
  readonly counts = { peerConnections: 1, iceRestarts: 0 };
  readonly bufferedAmount = 0;
  /** No files channel (5.17.3) in the fake network. */
  readonly files = null;

  constructor(
    readonly peerKey: BoxPublicKey,
    private readonly net: FakeNet,
    /** Member side: the member's own key (to reconnect on the trusted-key path). */
    readonly selfKey: BoxPublicKey | null = null,
  ) {}

  get state(): LinkState {
    return this.stateValue;
  }

  on<K extends keyof PeerLinkEvents>(ev: K, f: PeerLinkEvents[K]): () => void {
    const off = this.events.on(ev, f);
    if (ev === 'message' && this.early !== null) {
      const early = this.early;
      this.early = null;
      for (const m of early) this.net.deliver(this, m);
    }
    return off;
  }

  setState(s: LinkState): void {
    if (this.stateValue === s || this.stateValue === 'closed') return;
    this.stateValue = s;
    this.events.emit('state', s);
  }

  /** No real path: an in-memory link (diagnostics read nothing here). */
  pathInfo(): Promise<null> {
    return Promise.resolve(null);
  }

  /** Tickets of send() (1, 2, ...) and the highest one the peer has (PeerLink 'acked'). */
  private lastTicket = 0;
  private queuedTickets: number[] = [];

  send(bytes: Uint8Array): number {
    if (this.stateValue === 'closed') throw new LinkClosedError();
    this.sent.push(bytes.slice());
    this.queue.push(bytes.slice());
    this.queuedTickets.push(++this.lastTicket);
    this.flush();
    return this.lastTicket;
  }

  flush(): void {
    const peer = this.peer;
    if (peer === null || this.dead || !isOpen(this.stateValue) || !isOpen(peer.state)) return;
    const tickets = this.queuedTickets.splice(0);
    for (const m of this.queue.splice(0)) this.net.deliver(peer, m);
    // The peer's link layer has them: acknowledged (after the deliveries, like a real ACK).
    const last = tickets.at(-1);
    if (last !== undefined) this.net.later(() => this.events.emit('acked', last));
  }

  receive(bytes: Uint8Array): void {
    if (this.dead || this.stateValue === 'closed') return;
    if (this.early !== null) this.early.push(bytes);
    else this.events.emit('message', bytes);
  }

  close(): void {
    if (this.stateValue === 'closed') return;
    this.flush();
    const peer = this.peer;
    this.peer = null;
    this.end(null);
    if (peer !== null) this.net.later(() => peer.end(null));
  }

  end(error: Error | null): void {
    if (this.stateValue === 'closed') return;
    this.peer = null;
    this.stateValue = 'closed';
    this.events.emit('state', 'closed');
    this.events.emit('close', error);
  }

  drop(): void {
    this.peer = null;
    this.setState('offline');
  }
}

interface OwnerSide {
  readonly hooks: OwnerLinkHooks;
  readonly links: Map<string, FakeLink>;
  readonly handle: OwnerHandle;
}

/** The signaling server, the network and the link layer of every party, in one object. */
export class FakeNet {
  owner: OwnerSide | null = null;
  /** Member-side links by member key hex (the newest one per member). */
  readonly members = new Map<string, FakeLink>();
  readonly partitioned = new Set<string>();
  private inFlight = 0;
  /** Every join attempt: [member key hex, outcome]. */
  readonly attempts: [string, string][] = [];

  get busy(): boolean {
    return this.inFlight > 0;
  }

  later(f: () => void): void {
    this.inFlight++;
    void Promise.resolve().then(() => {
      this.inFlight--;
      f();
    });
  }

  deliver(to: FakeLink, bytes: Uint8Array): void {
    this.later(() => to.receive(bytes));
  }

  readonly ownerPort: OwnerLinkPort = (hooks) => {
    const links = new Map<string, FakeLink>();
    const side: OwnerSide = {
      hooks,
      links,
      handle: {
        links,
        signalingReady: true,
        close: () => {
          for (const l of [...links.values()]) l.close();
          if (this.owner === side) this.owner = null;
        },
      },
    };
    this.owner = side;
    this.later(() => hooks.onSignalingState?.(true));
    // Members whose link lost its session come back on the trusted-key path (the link layer does that).
    this.later(() => {
      for (const [hex, m] of this.members) if (m.state === 'offline' && !m.dead) this.resume(hex, m);
    });
    return side.handle;
  };

  memberPort(endpointKey: BoxPublicKey): MemberLinkPort {
    return (opts) =>
      new Promise<PeerLink>((resolve, reject) => {
        // The endpoint's key, or the one the driver presents (after a key update, 5.8.1).
        const key = opts.permanentKeys?.publicKey ?? endpointKey;
        const hex = toHex(key);
        this.later(() => {
          const owner = this.owner;
          if (owner === null || this.partitioned.has(hex)) {
            this.attempts.push([hex, 'no owner']);
            reject(new SaltyClientError('saltyrtc.timeout', 'the owner is not on the server'));
            return;
          }
          if (!this.admits(owner, key, opts.token)) {
            this.attempts.push([hex, 'refused']);
            reject(refusal('the owner refuses our token or key'));
            return;
          }
          this.attempts.push([hex, 'linked']);
          const link = new FakeLink(opts.ownerKey, this, key);
          this.members.set(hex, link);
          this.pair(owner, key, link);
          resolve(link);
        });
      });
  }

  private admits(owner: OwnerSide, key: BoxPublicKey, token: Uint8Array | undefined): boolean {
    if (token !== undefined)
      return [...owner.hooks.pendingTokens()].some((t) => equalBytes(t, token)) && owner.hooks.acceptToken(token, key);
    const live = owner.links.get(toHex(key));
    if (live !== undefined && live.state !== 'closed') return true;
    return [...(owner.hooks.trustedKeys?.() ?? [])].some((k) => equalBytes(k, key));
  }

  /** A new session on the owner's link for `key` (or a new link), joined to `member`. */
  private pair(owner: OwnerSide, key: BoxPublicKey, member: FakeLink): void {
    const hex = toHex(key);
    let ownerLink = owner.links.get(hex);
    const fresh = ownerLink === undefined || ownerLink.state === 'closed';
    if (fresh) {
      ownerLink = new FakeLink(key, this);
      owner.links.set(hex, ownerLink);
      const l = ownerLink;
      l.on('close', () => {
        if (owner.links.get(hex) === l) owner.links.delete(hex);
      });
    }
    const o = ownerLink!;
    o.peer = member;
    member.peer = o;
    o.setState('direct');
    member.setState('direct');
    if (fresh) owner.hooks.onLink(o);
    o.flush();
    member.flush();
  }

  /** The member's link layer reconnects an offline link on the trusted-key path. */
  private resume(hex: string, member: FakeLink): void {
    const owner = this.owner;
    if (owner === null || this.partitioned.has(hex)) return;
    const key = member.selfKey!;
    if (!this.admits(owner, key, undefined)) {
      member.end(refusal('no longer trusted'));
      return;
    }
    this.pair(owner, key, member);
  }

  /** The owner's process dies: its links vanish without a CLOSE; members' links go offline. */
  crashOwner(): void {
    const owner = this.owner;
    if (owner === null) return;
    this.owner = null;
    for (const l of owner.links.values()) {
      l.dead = true;
      l.peer?.drop();
    }
  }

  /** A member's process dies: its link vanishes; the owner's link to it goes offline. */
  crashMember(key: BoxPublicKey): void {
    const hex = toHex(key);
    const m = this.members.get(hex);
    if (m === undefined) return;
    m.dead = true;
    this.members.delete(hex);
    m.peer?.drop();
  }

  /** Cut one member off (both sides offline, queues kept) until heal(). */
  partition(key: BoxPublicKey): void {
    const hex = toHex(key);
    this.partitioned.add(hex);
    const m = this.members.get(hex);
    if (m === undefined) return;
    m.peer?.drop();
    m.drop();
  }

  heal(key: BoxPublicKey): void {
    const hex = toHex(key);
    this.partitioned.delete(hex);
    const m = this.members.get(hex);
    if (m !== undefined && m.state === 'offline') this.later(() => this.resume(hex, m));
  }

  /** Bytes from the member `key` to the owner, as if its link carried them (hostile input tests). */
  inject(key: BoxPublicKey, bytes: Uint8Array): void {
    const link = this.owner?.links.get(toHex(key));
    if (link === undefined) throw new Error('no owner link for that member');
    this.deliver(link, bytes);
  }
}

// ---- store ---------------------------------------------------------------------------------

/**
 * A store in memory. The state goes through the real record codec on every save (a restart reads
 * bytes, as from disk). `failSave` makes saves throw; `crashAfterSave` makes the next save write and
 * then never return, as a process that died right after its write.
 */
export class MemoryStore<S extends OwnerState | MemberState> implements RoomStore<S> {
  bytes: Uint8Array;
  readonly history = new Map<number, HistoryRecord>();
  readonly outbox = new Map<number, OutboxRecord>();
  saves = 0;
  failSave = false;
  crashAfterSave = false;
  crashed = false;

  constructor(state: S) {
    this.bytes = encodeRoomRecord({ role: state.role, server: SERVER, serverKey: '', appUrl: APP_URL, createdAt: 0, state });
  }

  /** The state as a restarted process would read it. */
  get saved(): S {
    return decodeRoomRecord(this.bytes).state as S;
  }

  async save(state: S): Promise<void> {
    if (this.failSave) throw new Error('disk full');
    this.bytes = encodeRoomRecord({ role: state.role, server: SERVER, serverKey: '', appUrl: APP_URL, createdAt: 0, state });
    this.saves++;
    if (this.crashAfterSave) {
      this.crashed = true;
      await new Promise<never>(() => undefined);
    }
  }

  async appendHistory(record: HistoryRecord): Promise<void> {
    this.history.set(record.idx, record);
  }

  async putOutbox(record: OutboxRecord): Promise<void> {
    this.outbox.set(record.seq, record);
  }

  async removeOutbox(seq: number): Promise<void> {
    this.outbox.delete(seq);
  }

  async listOutbox(): Promise<OutboxRecord[]> {
    return [...this.outbox.values()];
  }

  /** A member's keys and a key update's pending ones (5.8.1), as a restart would read them. */
  keys: { identity: RoomIdentity; pending: RoomIdentity | null } | null = null;

  async saveKeys(keys: { identity: RoomIdentity; pending: RoomIdentity | null }): Promise<void> {
    this.keys = keys;
  }
}

// ---- parties -------------------------------------------------------------------------------

export class Recorder implements Logger {
  readonly events: DriverEvent[] = [];
  readonly lines: string[] = [];
  info(m: string): void {
    this.lines.push(`info: ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn: ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error: ${m}`);
  }
  room(): RoomEvent[] {
    return this.events.flatMap((e) => (e.kind === 'room' ? [e.event] : []));
  }
  texts(): string[] {
    return this.room().flatMap((e) => (e.type === 'message' ? [e.text] : []));
  }
}

export interface Party<D> {
  readonly name: string;
  readonly identity: RoomIdentity;
  readonly rec: Recorder;
  driver: D;
}

export class World {
  readonly timers = new ManualTimers();
  readonly net = new FakeNet();
  readonly drivers: (OwnerDriver | MemberDriver)[] = [];
  private seed = 0;

  random(): RandomBytes {
    return seededRandom(`driver test ${++this.seed}`);
  }

  env(rec: Recorder): DriverEnv {
    return { timers: this.timers, random: this.random(), log: rec, events: (e) => rec.events.push(e) };
  }

  newIdentity(): RoomIdentity {
    return { identity: generateIdentity(), peer: generateBoxKeyPair(this.random()) };
  }

  /** A new room with its owner driver started. */
  async owner(config: Partial<RoomConfig> = {}): Promise<Party<OwnerDriver> & { store: MemoryStore<OwnerState> }> {
    const identity = this.newIdentity();
    const step = createRoom(
      {
        random: this.random(),
        identity: identity.identity,
        peerKey: identity.peer.publicKey,
        invites: { appUrl: APP_URL, server: SERVER },
      },
      { now: this.timers.now(), ownerName: 'owner', config },
    );
    const store = new MemoryStore(step.state);
    const party = { name: 'owner', identity, rec: new Recorder(), store, driver: null as unknown as OwnerDriver };
    party.driver = this.ownerDriver(step.state, store, identity, party.rec);
    await party.driver.start();
    return party;
  }

  ownerDriver(state: OwnerState, store: MemoryStore<OwnerState>, identity: RoomIdentity, rec: Recorder): OwnerDriver {
    const d = new OwnerDriver(state, store, this.env(rec), {
      identity,
      invites: { appUrl: APP_URL, server: SERVER },
      link: this.net.ownerPort,
    });
    this.drivers.push(d);
    return d;
  }

  memberDriver(state: MemberState, store: MemoryStore<MemberState>, identity: RoomIdentity, rec: Recorder): MemberDriver {
    const d = new MemberDriver(state, store, this.env(rec), { identity, link: this.net.memberPort(identity.peer.publicKey) });
    this.drivers.push(d);
    return d;
  }

  /** A member joining through a fresh invite of `owner`; resolves once it is in. */
  async join(owner: Party<OwnerDriver>, name: string): Promise<Party<MemberDriver> & { store: MemoryStore<MemberState> }> {
    const url = await this.invite(owner);
    const party = await this.startJoin(url, name);
    await this.until(() => party.driver.state.phase === 'member', `${name} is a member`);
    return party;
  }

  async invite(owner: Party<OwnerDriver>): Promise<string> {
    const from = owner.rec.events.length;
    await owner.driver.invite();
    const ev = owner.rec.events.slice(from).find((e) => e.kind === 'room' && e.event.type === 'invite');
    if (ev === undefined || ev.kind !== 'room' || ev.event.type !== 'invite') throw new Error('no invite event');
    return ev.event.url;
  }

  async startJoin(url: string, name: string): Promise<Party<MemberDriver> & { store: MemoryStore<MemberState> }> {
    const identity = this.newIdentity();
    const step = startJoin({ random: this.random(), identity: identity.identity, peerKey: identity.peer.publicKey }, decodeInviteUrl(url), {
      now: this.timers.now(),
      name,
    });
    if (step.error !== undefined) throw step.error;
    const store = new MemoryStore(step.state);
    const party = { name, identity, rec: new Recorder(), store, driver: null as unknown as MemberDriver };
    party.driver = this.memberDriver(step.state, store, identity, party.rec);
    await party.driver.start();
    return party;
  }

  /**
   * Runs the event loop until `pred` holds and nothing is in flight: every driver idle and no fake
   * delivery pending. Not a sleep: it drains work and gives up after a bounded number of turns.
   */
  async until(pred: () => boolean, what: string): Promise<void> {
    for (let turn = 0; turn < 20_000; turn++) {
      await Promise.all(this.drivers.filter((d) => !this.stuck.has(d)).map((d) => d.idle()));
      await nextTurn();
      if (!this.net.busy && pred()) return;
    }
    throw new Error(`never happened: ${what}`);
  }

  /** Drivers abandoned mid-step (a simulated crash): their queue never drains. */
  readonly stuck = new Set<OwnerDriver | MemberDriver>();

  /** Let everything in flight finish. */
  settle(): Promise<void> {
    return this.until(() => true, 'settled');
  }

  /** Advance the clock by `ms` in steps of `step` ms, settling after each (ticks, backoff). */
  async advance(ms: number, step = 250): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.timers.advance(Math.min(step, ms - t));
      await this.settle();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.drivers.filter((d) => !this.stuck.has(d)).map((d) => d.stop()));
  }
}
