/**
 * A member's room driver (driver.ts): the member machine, the link to the owner and the outbox.
 *
 * Connector: until the welcome the owner knows us only by the invite, so the link's first contact
 * uses the invite's SaltyRTC auth token (5.3); afterwards the trusted-key path. The link layer
 * repairs drops itself (4.6; the same link object, nothing queued is lost); when a link closes or
 * cannot be made, a new one is tried with the shared backoff (protocol/link/backoff.ts). A fatal
 * refusal (FATAL_JOIN_CODES: a used, revoked or wrong invite, a key the owner no longer trusts)
 * ends the attempts with a 'refused' event.
 *
 * Outbox (5.6, 6.4): an own message is stored BEFORE it leaves and removed when the owner delivers
 * it back (or refuses a copy as `room.replay`: it is in the room already). Every new link carries
 * every stored message again, unchanged. One refused as `room.epoch-expired`/`room.epoch-unknown`
 * (the key rotated while it waited) or `room.sender-chain` (an earlier one was refused) is sealed
 * again, through the same step path as a new send. At
 * most MAX_OUTBOX wait; another send is refused with `room.outbox-full`.
 */
import { asBoxPublicKey, fromHex } from '../../crypto/index.ts';
import { backoffDelay } from '../link/backoff.ts';
import { FATAL_JOIN_CODES } from '../link/member.ts';
import type { LinkState, PeerLink } from '../link/peer-link.ts';
import { RoomDriver, describeError } from './driver.ts';
import { DriverError, type DriverEnv, type MemberLinkPort, type MeshLinkPort, type RoomStore } from './driver-ports.ts';
import { decodeToOwner } from './codec.ts';
import { RoomFiles, isFileControl, type RoomFilesOptions } from './file-driver.ts';
import type { FileOffer } from '../files/offer.ts';
import { MeshDriver } from './mesh-driver.ts';
import { DeliveryTracker, type OutboxDelivery } from './delivery.ts';
import { saltyAuthToken } from './ids.ts';
import { memberSafetyCode, memberStep } from './member.ts';
import { KeyUpdateKeys } from './key-update-driver.ts';
import { MAX_OUTBOX, committedOutbox, type OutboxRecord, type RoomIdentity } from './records.ts';
import type { MemberCtx, MemberState, PeerKeyHex, RoomEvent } from './types.ts';

export interface MemberDriverOptions {
  readonly identity: RoomIdentity;
  readonly link: MemberLinkPort;
  /** Mesh links while the owner is away (5.16); without it, messages wait for the owner. */
  readonly mesh?: MeshLinkPort;
  /** New keys stored by a key update the owner may not have committed yet (5.8.1). */
  readonly pending?: RoomIdentity | null;
  /** Files (5.17): storage and AEAD backend; without it the driver offers and receives no files. */
  readonly files?: RoomFilesOptions;
}

/** Phases after which nothing connects any more. */
export function memberFinished(state: MemberState): boolean {
  return state.phase === 'removed' || state.phase === 'left' || state.phase === 'refused';
}

const isOpen = (s: LinkState): boolean => s === 'direct' || s === 'relayed';

/**
 * Refusals of an outbox message that sealing the same text again repairs (5.13 driver rule 6): the
 * key rotated while it waited (epoch codes), or an earlier message of ours was refused so this one
 * no longer continues our sender chain (`room.sender-chain`, 5.6).
 */
const RESEAL_CODES: ReadonlySet<string> = new Set(['room.epoch-expired', 'room.epoch-unknown', 'room.sender-chain']);

export class MemberDriver extends RoomDriver<MemberState> {
  private link: PeerLink | null = null;
  private linkStateValue: LinkState = 'connecting';
  private attempt = 0;
  private retryTimer: unknown = null;
  private started = false;
  private refusedBy: string | null = null;
  private outboxList: OutboxRecord[] = [];
  private readonly delivery = new DeliveryTracker();
  /** Code of the last failed connection attempt ('' for one without a code); null once a link opened. */
  private lastFailureCode: string | null = null;
  private ctx: MemberCtx;
  /** Owner away (5.16): null without a mesh port. */
  private readonly meshDriver: MeshDriver | null;
  /** Our keys and a key update's pending ones (5.8.1, key-update-driver.ts). */
  private readonly keys: KeyUpdateKeys;
  /** Files in the room (file-driver.ts); null without MemberDriverOptions.files. */
  readonly files: RoomFiles | null;
  /** Offers among the outbox messages (sealed again as offers when refused for a rotated key). */
  private readonly outboxFiles = new Map<number, FileOffer>();

  constructor(
    state: MemberState,
    store: RoomStore<MemberState>,
    env: DriverEnv,
    private readonly opts: MemberDriverOptions,
  ) {
    super(state, store, env);
    this.keys = new KeyUpdateKeys(opts.identity, opts.pending ?? null);
    this.ctx = this.keys.ctx(env.random);
    this.meshDriver =
      opts.mesh === undefined
        ? null
        : new MeshDriver(opts.mesh, env, {
            state: () => this.state,
            serial: (what, fn) => this.background(what, fn),
            ownerOpen: () => isOpen(this.linkStateValue),
            sendToOwner: (bytes) => this.sendTo(this.state.ownerPeer, bytes),
            linkKeys: () => this.keys.linkKeys(),
          });
    this.files =
      opts.files === undefined
        ? null
        : new RoomFiles(
            {
              role: 'member',
              random: env.random,
              log: env.log,
              now: () => this.now(),
              event: (e) => env.events(e),
              selfId: () => this.state.selfId,
              memberOf: (peer) => (peer === this.state.ownerPeer ? this.ownerId() : null),
              upstream: () => this.state.ownerPeer,
              displayName: (id) => this.state.members.find((m) => m.info.id === id)?.info.name ?? '',
              announce: (offer) => this.sendFile(offer),
              sendControl: (_peer, bytes) => {
                const link = this.link;
                if (link !== null && link.state !== 'closed') link.send(bytes);
              },
              linkOf: () => this.link,
            },
            opts.files,
          );
  }

  /** Reads the outbox, then connects (unless the member is no longer in the room). */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    await this.serial(async () => {
      await this.keys.settle(this.store, this.state.selfId); // a switch the state has that the keys record missed (crash)
      this.ctx = this.keys.ctx(this.env.random);
      const stored = await this.store.listOutbox();
      this.outboxList = committedOutbox(this.state, stored);
      // A send whose state never got saved: its seq will be given again.
      for (const r of stored) if (!this.outboxList.includes(r)) await this.store.removeOutbox(r.seq);
      await this.files?.restore();
    });
    if (memberFinished(this.state)) {
      this.setLinkState('closed');
      return;
    }
    this.connect();
    // Owner away (5.16): a start without the owner goes away-mode too.
    this.meshDriver?.ownerLink(isOpen(this.linkStateValue));
  }

  // ---- connector ----

  private connect(): void {
    this.retryTimer = null;
    if (this.stopped || memberFinished(this.state)) return;
    const s = this.state;
    // Until the welcome the owner knows us only by the invite: use its auth token (5.3).
    const token = s.join !== null ? saltyAuthToken(s.join.token) : undefined;
    // With a token, a first contact the owner never answers ends when the invite expires (4.1).
    const exp = s.join?.exp ?? null;
    this.setLinkState('connecting');
    this.opts
      .link({
        ownerKey: asBoxPublicKey(fromHex(s.ownerPeer, 32)),
        ...this.keys.linkKeys(),
        ...(token !== undefined ? { token } : {}),
        ...(token !== undefined && exp !== null ? { inviteExpiresAt: exp } : {}),
      })
      .then(
        (link) => this.attach(link),
        (e: unknown) => this.connectFailed(e),
      );
  }

  private connectFailed(e: unknown): void {
    if (this.stopped) return;
    this.lastFailureCode = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : '';
    if (this.fatal(e)) return;
    this.env.log.warn(`link to the owner failed (${describeError(e)}); retrying`);
    this.setLinkState('offline');
    this.scheduleReconnect();
  }

  /** A refusal retrying cannot change: report it once and stop connecting. */
  private fatal(e: unknown): boolean {
    const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : null;
    if (code === null || !FATAL_JOIN_CODES.has(code)) return false;
    // Our update may be committed and the entry lost with the old link: try the pending keys (5.8.1).
    if (this.keys.tryPending()) {
      this.env.log.warn(`the owner refused our key (${code}); trying the keys of our key update`);
      this.scheduleReconnect();
      return true;
    }
    const message = e instanceof Error ? e.message : String(e);
    this.refusedBy = code;
    this.env.log.warn(`the owner did not let us in: ${code}: ${message}`);
    this.setLinkState('closed');
    this.env.events({ kind: 'refused', code, message });
    return true;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer !== null || memberFinished(this.state)) return;
    this.retryTimer = this.env.timers.setTimeout(() => this.connect(), backoffDelay(this.attempt++, this.env.random));
  }

  private attach(link: PeerLink): void {
    if (this.stopped) {
      link.close();
      return;
    }
    this.link = link;
    this.attempt = 0;
    this.lastFailureCode = null;
    link.on('acked', (ticket) => {
      if (this.delivery.acked(link, ticket)) this.env.events({ kind: 'delivery' });
    });
    this.files?.attachLink(this.state.ownerPeer, link);
    link.on('message', (bytes) =>
      this.files !== null && isFileControl(bytes)
        ? this.files.control(this.state.ownerPeer, bytes)
        : this.input('peer input', (s, now) => memberStep(this.ctx, s, { kind: 'received', bytes, now })),
    );
    link.on('state', (state) => {
      const reopened = isOpen(state) && !isOpen(this.linkStateValue);
      this.setLinkState(state);
      if (reopened) this.connected();
    });
    link.on('error', (e) => this.env.log.warn(`link to the owner: ${e.message}`));
    link.on('close', (error) => {
      if (this.link !== link) return;
      this.link = null;
      if (this.stopped || memberFinished(this.state)) return this.setLinkState('closed');
      if (error !== null && this.fatal(error)) return;
      // Closed by the owner (it stopped) or given up: a new link, which carries the outbox again.
      this.setLinkState('offline');
      this.scheduleReconnect();
    });
    this.setLinkState(link.state);
    // A new link: every stored own message goes out again; the owner drops copies it has (room.replay).
    for (const o of this.outboxList) this.delivery.sent(link, link.send(o.wire), o.seq);
    this.connected();
  }

  /** The link to the owner is open (again): the machine sends join-request, join-confirm or sync (5.4, 5.10). */
  private connected(): void {
    this.input('connected', (s, now) => memberStep(this.ctx, s, { kind: 'connected', now }));
  }

  private setLinkState(state: LinkState): void {
    if (state === this.linkStateValue) return;
    this.linkStateValue = state;
    this.env.log.info(`link to the owner ${state}`);
    this.env.events({ kind: 'link', peer: this.state.ownerPeer, member: this.ownerId(), state });
    this.meshDriver?.ownerLink(isOpen(state));
  }

  private ownerId(): MemberState['selfId'] | null {
    return this.state.members.find((m) => m.info.owner)?.info.id ?? null;
  }

  protected sendTo(_to: PeerKeyHex, bytes: Uint8Array): void {
    // One peer: the owner. An offline link queues; without a link, sync and the outbox catch up.
    const link = this.link;
    if (link === null || link.state === 'closed') return;
    const ticket = link.send(bytes);
    const own = this.outboxList.find((o) => o.wire === bytes);
    if (own !== undefined) this.delivery.sent(link, ticket, own.seq);
  }

  protected closeLink(): void {
    if (this.link !== null) this.linger(this.link);
  }

  // ---- outbox ----

  protected override outboxCommitted(record: OutboxRecord): void {
    this.outboxList = [...this.outboxList.filter((o) => o.seq !== record.seq), record];
  }

  private async dropOutbox(seq: number): Promise<OutboxRecord | undefined> {
    const entry = this.outboxList.find((o) => o.seq === seq);
    if (entry === undefined) return undefined;
    await this.store.removeOutbox(seq);
    this.outboxList = this.outboxList.filter((o) => o !== entry);
    this.outboxFiles.delete(seq);
    this.delivery.done(seq);
    return entry;
  }

  protected override async onEvent(event: RoomEvent): Promise<void> {
    if (event.type === 'message') this.meshDriver?.settle([event]);
    if (event.type === 'keys-updated' && event.self) {
      // Switched (5.8.1): our old messages in the outbox were signed by the old key and go nowhere now.
      await this.keys.switched(this.store);
      this.ctx = this.keys.ctx(this.env.random);
      for (const o of this.outboxList) await this.dropOutbox(o.seq);
      this.env.log.info('our keys were replaced; reconnecting with the new peer key');
      this.link?.close();
    }
    if (event.type === 'keys-updated' && event.member.owner && !event.self) {
      // The owner moved to the path of its new peer key (5.8.1 step 5); the state names it already.
      this.env.log.info('the owner replaced its keys; reconnecting on its new path');
      this.link?.close();
    }
    if (event.type === 'message' && event.from === this.state.selfId) await this.dropOutbox(event.seq);
    if (event.type === 'send-refused' && event.seq !== null) {
      // room.replay: the owner has this seq from us already, so the message is in the room (a copy
      // from a resend: the link's own queue and the outbox may both deliver one).
      if (event.code === 'room.replay') {
        await this.dropOutbox(event.seq);
        return;
      }
      // A break in our sender chain while an earlier message of ours still waits: this one continues
      // that message, which may still be accepted when it arrives (it was lost in transit, not
      // refused); both go out again on the next link. Sealing it again now could deliver it twice.
      if (event.code === 'room.sender-chain' && this.outboxList.some((o) => o.seq < event.seq!)) return;
      const file = this.outboxFiles.get(event.seq);
      const entry = await this.dropOutbox(event.seq);
      // An offer whose record this run does not hold (a restart) is not sealed again as an empty text.
      const resealable = entry !== undefined && (file !== undefined || entry.text !== '');
      if (entry !== undefined && resealable && RESEAL_CODES.has(event.code) && this.state.phase === 'member') {
        this.env.log.warn(`message #${entry.seq} was refused (${event.code}); sealing it again`);
        try {
          await this.sealAndSend(entry.text, entry.at, file);
          return;
        } catch (e) {
          // The machine refused the new send (it left meanwhile) or a store failed: report the refusal.
          this.env.log.warn(`sealing message #${entry.seq} again failed: ${describeError(e)}`);
        }
      }
    }
    await super.onEvent(event);
    this.files?.roomEvent(event);
  }

  /** One send through the machine: its outbox record is written before the state, both before it leaves. */
  private async sealAndSend(text: string, at: number, file?: FileOffer): Promise<void> {
    const step = memberStep(this.ctx, this.state, { kind: 'send', text, now: this.now(), ...(file !== undefined ? { file } : {}) });
    if (step.error !== undefined) throw step.error;
    const wire = step.effects.find((e) => e.kind === 'send');
    if (file !== undefined) this.outboxFiles.set(step.state.seq, file);
    await this.commit(step, wire !== undefined && wire.kind === 'send' ? { seq: step.state.seq, text, at, wire: wire.bytes } : undefined);
    if (this.meshDriver?.active === true && wire !== undefined && wire.kind === 'send') {
      const msg = decodeToOwner(wire.bytes);
      if (msg.type === 'send') this.meshDriver.ownSent(msg.env);
    }
  }

  // ---- commands ----

  /** Send a message; rejects with the machine's refusal or `room.outbox-full`. */
  send(text: string): Promise<void> {
    return this.queueSend(text);
  }

  /** A file offer as a room message (RoomFiles.send): through the outbox like a text. */
  private sendFile(offer: FileOffer): Promise<void> {
    return this.queueSend('', offer);
  }

  private queueSend(text: string, offer?: FileOffer): Promise<void> {
    try {
      this.checkRunning();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      if (this.outboxList.length >= MAX_OUTBOX)
        throw new DriverError('room.outbox-full', `${MAX_OUTBOX} messages wait for the owner already; not sent`);
      await this.sealAndSend(text, this.now(), offer);
    });
  }

  leave(): Promise<void> {
    return this.command((s, now) => memberStep(this.ctx, s, { kind: 'leave', now }));
  }

  /**
   * Replace our identity and peer keys (5.8.1): new keys, stored as pending BEFORE the request
   * leaves; the switch happens when the owner's `update` entry arrives (event `keys-updated` with
   * `self`), then the link reconnects with the new peer key. Asking again while one is pending
   * sends the same pending keys again.
   */
  updateKeys(): Promise<void> {
    try {
      this.checkRunning();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      await this.keys.prepare(this.store);
      this.ctx = this.keys.ctx(this.env.random);
      const step = memberStep(this.ctx, this.state, { kind: 'update-keys', now: this.now() });
      if (step.error !== undefined) throw step.error;
      await this.commit(step);
    });
  }

  /** The keys this member uses now (they change with a key update). */
  get identity(): RoomIdentity {
    return this.keys.current;
  }

  // ---- queries ----

  safetyCode(): string | null {
    return memberSafetyCode(this.state);
  }

  /** Own messages the owner has not delivered back yet, in send order. */
  get outbox(): readonly OutboxRecord[] {
    return this.outboxList;
  }

  /** The link to the owner: 'connecting' before the first one, 'closed' once refused, removed or stopped. */
  get linkState(): LinkState {
    return this.linkStateValue;
  }

  /** Owner away (5.16): whether members talk directly now, the mesh peers and the provisional messages. */
  get away(): MeshDriver | null {
    return this.meshDriver;
  }

  /** The link to the owner right now (diagnostics read its path); null between links. */
  get currentLink(): PeerLink | null {
    return this.link;
  }

  get linkCounts(): PeerLink['counts'] | null {
    return this.link?.counts ?? null;
  }

  /** Where an outbox message is: not yet at the owner, or acknowledged by its link layer. */
  deliveryOf(seq: number): OutboxDelivery {
    return this.delivery.state(seq);
  }

  /** Code of the last failed connection attempt ('' when it had none); null once a link opened. */
  get lastFailure(): string | null {
    return this.lastFailureCode;
  }

  /** The code of the owner's link-level refusal, if it refused us. */
  get refusal(): string | null {
    return this.refusedBy;
  }

  // ---- lifecycle ----

  protected halt(): void {
    this.meshDriver?.stop();
    if (this.retryTimer !== null) this.env.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  protected closeAll(): void {
    this.link?.close();
    this.link = null;
    this.setLinkState('closed');
  }
}
