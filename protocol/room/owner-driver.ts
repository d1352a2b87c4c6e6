/**
 * The owner's room driver (driver.ts): the owner machine plus its side of the peer links. The link
 * layer admits a first contact whose SaltyRTC auth token belongs to a pending invite and a returning
 * member by its known peer key (section 5.3); the machine then admits at the room level (5.4). A
 * timer ticks the machine for rotation by time and invite expiry (5.7).
 */
import { asBoxPublicKey, equalBytes, fromHex, toHex } from '../../crypto/index.ts';
import type { OwnerHandle } from '../link/owner.ts';
import type { PeerLink } from '../link/peer-link.ts';
import { RoomDriver } from './driver.ts';
import type { DriverEnv, OwnerLinkPort, RoomStore } from './driver-ports.ts';
import { isAwayMessage, ownerHandover } from './away.ts';
import { memberPeerKeys, ownerSafetyCode, ownerStep, pendingAuthTokens, removedPeerKeys, retiredAuthTokens } from './owner.ts';
import type { RoomIdentity } from './records.ts';
import { PendingKeys } from './key-update-driver.ts';
import { PreviousPathHandles } from './owner-update-driver.ts';
import { expirePreviousPaths, memberMoved, ownerUpdateStep } from './owner-update.ts';
import { RoomFiles, isFileControl, type RoomFilesOptions } from './file-driver.ts';
import type { InviteId, InviteSettings, MemberId, OwnerCtx, OwnerState, PeerKeyHex, RoomConfig, RoomEvent } from './types.ts';

/** The longest time between ticks, and the shortest (a short rotation timer ticks more often). */
export const MAX_TICK_MS = 15_000;
export const MIN_TICK_MS = 250;

/** Tick interval for a rotation timer: a quarter of it, within MIN_TICK_MS..MAX_TICK_MS (none: MAX). */
export function tickInterval(rotateAfterMs: number): number {
  return rotateAfterMs > 0 ? Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(rotateAfterMs / 4))) : MAX_TICK_MS;
}

export interface OwnerDriverOptions {
  readonly identity: RoomIdentity;
  /** What invites carry (app URL, signaling server and its pinned key). */
  readonly invites: InviteSettings;
  readonly link: OwnerLinkPort;
  /** Admission decision after the token proof checked out (OwnerCtx.admit; default yes). */
  readonly admit?: OwnerCtx['admit'];
  /** New keys stored by an owner key update whose step may not have been saved (5.8.1 step 5). */
  readonly pending?: RoomIdentity | null;
  /** Files (5.17): storage, AEAD backend, relay history budget; without it no files are offered or relayed. */
  readonly files?: RoomFilesOptions;
}

export class OwnerDriver extends RoomDriver<OwnerState> {
  private handle: OwnerHandle | null = null;
  private tickTimer: unknown = null;
  private ctx: OwnerCtx;
  /** Our keys and an owner update's pending ones; the paths we left (5.8.1 step 5, owner-update-driver.ts). */
  private readonly keys: PendingKeys<OwnerState>;
  private readonly previous: PreviousPathHandles;
  /** Files in the room and the relay (file-driver.ts); null without OwnerDriverOptions.files. */
  readonly files: RoomFiles | null;

  constructor(
    state: OwnerState,
    store: RoomStore<OwnerState>,
    env: DriverEnv,
    private readonly opts: OwnerDriverOptions,
  ) {
    super(state, store, env);
    this.keys = new PendingKeys<OwnerState>(opts.identity, opts.pending ?? null);
    this.ctx = this.ctxFor(opts.identity);
    this.previous = new PreviousPathHandles(
      opts.link,
      env,
      () => this.state,
      (link) => this.attach(link),
    );
    this.files =
      opts.files === undefined
        ? null
        : new RoomFiles(
            {
              role: 'owner',
              random: env.random,
              log: env.log,
              now: () => this.now(),
              event: (e) => env.events(e),
              selfId: () => this.state.selfId,
              memberOf: (peer) => this.memberOf(peer),
              upstream: (from) => this.state.members.find((m) => m.info.id === from && !m.info.owner)?.peer ?? null,
              displayName: (id) => this.state.members.find((m) => m.info.id === id)?.info.name ?? '',
              announce: (offer) => this.command((s, now) => ownerStep(this.ctx, s, { kind: 'send', text: '', file: offer, now })),
              sendControl: (peer, bytes) => this.sendTo(peer, bytes),
              linkOf: (peer) => this.linkTo(peer) ?? null,
            },
            opts.files,
          );
  }

  private ctxFor(keys: RoomIdentity): OwnerCtx {
    return {
      random: this.env.random,
      identity: keys.identity,
      peerKey: keys.peer.publicKey,
      invites: this.opts.invites,
      ...(this.opts.admit !== undefined ? { admit: this.opts.admit } : {}),
    };
  }

  async start(): Promise<void> {
    if (this.handle !== null || this.stopped) return;
    // A switch the saved state has that the keys record missed (a crash after the commit, 5.8.1 step 5).
    await this.serial(async () => {
      await this.keys.settle(this.store, this.state.selfId);
      this.ctx = this.ctxFor(this.keys.current);
      await this.files?.restore();
    });
    if (this.handle !== null || this.stopped) return;
    this.listen();
    this.previous.sync();
    this.scheduleTick();
  }

  /** The link layer on our current path (hex of our peer key). */
  private listen(): void {
    const path = this.keys.current.peer;
    this.handle = this.opts.link(
      {
        pendingTokens: () => pendingAuthTokens(this.state, this.now()),
        // The link layer only checks that the auth token is one of ours; the room machine admits (5.3).
        acceptToken: (token) => pendingAuthTokens(this.state, this.now()).some((t) => equalBytes(t, token)),
        trustedKeys: () => memberPeerKeys(this.state).map((hex) => asBoxPublicKey(fromHex(hex, 32))),
        // A retired invite or a removed member gets the owner's authenticated refusal, final for it (4.1).
        refusedTokens: () => retiredAuthTokens(this.state, this.now()),
        refusedKeys: () => removedPeerKeys(this.state).map((hex) => asBoxPublicKey(fromHex(hex, 32))),
        onLink: (link) => {
          this.attach(link);
          // A member on our current path has applied any owner update of ours (5.8.1 step 5). This
          // handle may be a previous path already (kept across the update): then it proves nothing.
          if (this.state.previousPaths !== undefined && this.keys.current.peer === path)
            this.pathStep('moved', (s) => memberMoved(s, toHex(link.peerKey) as PeerKeyHex));
        },
        onSignalingState: (ready) => {
          if (!this.stopped) this.env.events({ kind: 'signaling', ready });
        },
        onWarning: (m) => this.env.log.warn(m),
        onSecondSession: (key) => {
          if (this.stopped) return;
          const peer = toHex(key) as PeerKeyHex;
          const member = this.memberOf(peer);
          this.env.log.warn(`link ${peer.slice(0, 8)}: a second session presented this member's key while its link was open`);
          this.env.events({ kind: 'second-session', peer, member });
        },
      },
      { permanentKeys: this.keys.current.peer },
    );
  }

  /** A change of the previous paths (5.8.1 step 5): saved like a step, then the handles follow. */
  private pathStep(what: string, f: (s: OwnerState, now: number) => OwnerState): void {
    this.input(what, (s, now) => ({ state: f(s, now), effects: [] }));
    this.background('previous paths', async () => this.previous.sync());
  }

  /** Each tick re-reads the interval, so a changed rotation timer takes effect at the next one. */
  private scheduleTick(): void {
    this.tickTimer = this.env.timers.setTimeout(() => {
      this.tickTimer = null;
      if (this.stopped) return;
      this.input('tick', (s, now) => ownerStep(this.ctx, s, { kind: 'tick', now }));
      if (this.state.previousPaths !== undefined) this.pathStep('previous paths', (s, now) => expirePreviousPaths(s, now));
      this.scheduleTick();
    }, tickInterval(this.state.config.rotateAfterMs));
  }

  /** The member whose link has this peer key, if it is (still) one. */
  memberOf(peer: string): MemberId | null {
    return this.state.members.find((m) => m.peer === peer)?.info.id ?? null;
  }

  /** A member's first link in this run; the same link object carries its later sessions (4.6). */
  private attach(link: PeerLink): void {
    const peer = toHex(link.peerKey) as PeerKeyHex;
    const report = (): void => {
      this.env.log.info(`link ${peer.slice(0, 8)} ${link.state}`);
      this.env.events({ kind: 'link', peer, member: this.memberOf(peer), state: link.state });
    };
    this.files?.attachLink(peer, link);
    link.on('message', (bytes) =>
      this.files !== null && isFileControl(bytes)
        ? this.files.control(peer, bytes)
        : isAwayMessage(bytes)
          ? // What a member holds from while we were away (5.16).
            this.input('handover', (s, now) => ownerHandover(this.ctx, s, peer, bytes, now))
          : this.input('peer input', (s, now) => ownerStep(this.ctx, s, { kind: 'received', from: peer, bytes, now })),
    );
    link.on('state', report);
    link.on('close', report);
    link.on('error', (e) => this.env.log.warn(`link ${peer.slice(0, 8)}: ${e.message}`));
    report();
  }

  protected override async onEvent(event: RoomEvent): Promise<void> {
    await super.onEvent(event);
    this.files?.roomEvent(event);
  }

  /** The member's link on our current path, else on a path we left (a member that has not moved, 5.8.1 step 5). */
  private linkTo(to: PeerKeyHex): PeerLink | undefined {
    const link = this.handle?.links.get(to);
    if (link !== undefined && link.state !== 'closed') return link;
    return this.previous.link(to) ?? link;
  }

  protected sendTo(to: PeerKeyHex, bytes: Uint8Array): void {
    const link = this.linkTo(to);
    // A member without a live link catches up with sync/history when it reconnects (5.10).
    if (link !== undefined && link.state !== 'closed') link.send(bytes);
  }

  protected closeLink(to: PeerKeyHex): void {
    const link = this.linkTo(to);
    if (link !== undefined) this.linger(link);
  }

  // ---- commands ----

  send(text: string): Promise<void> {
    return this.command((s, now) => ownerStep(this.ctx, s, { kind: 'send', text, now }));
  }

  /** A new invite (the machine's 'invite' event carries its URL). */
  invite(ttlMs?: number): Promise<void> {
    return this.command((s, now) => ownerStep(this.ctx, s, { kind: 'invite', now, ...(ttlMs !== undefined ? { ttlMs } : {}) }));
  }

  revoke(invite: InviteId): Promise<void> {
    return this.command((s, now) => ownerStep(this.ctx, s, { kind: 'revoke', invite, now }));
  }

  kick(member: MemberId): Promise<void> {
    return this.command((s, now) => ownerStep(this.ctx, s, { kind: 'kick', member, now }));
  }

  rotate(): Promise<void> {
    return this.command((s, now) => ownerStep(this.ctx, s, { kind: 'rotate', now }));
  }

  /**
   * Replace the owner's identity and peer keys (5.8.1 step 5): new keys, stored as pending BEFORE
   * the step runs; the step (owner-update entry, rekey, invites revoked) is saved before anything
   * leaves; then the new keys are stored as the room's, and we listen on the new path while the old
   * one stays open for members that have not moved. Event `keys-updated` with `self`.
   */
  updateKeys(): Promise<void> {
    try {
      this.checkRunning();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      const current = this.keys.current;
      const next = await this.keys.prepare(this.store);
      const step = ownerUpdateStep(this.ctx, this.state, { current, next }, this.now());
      if (step.error !== undefined) throw step.error;
      await this.commit(step);
      await this.keys.switched(this.store);
      this.ctx = this.ctxFor(this.keys.current);
      // The old handle keeps the links members are on now; it becomes a previous path.
      const old = this.handle;
      this.handle = null;
      if (old !== null) {
        if (this.state.previousPaths?.some((p) => p.peer === toHex(current.peer.publicKey)))
          this.previous.adopt(toHex(current.peer.publicKey) as PeerKeyHex, old);
        else old.close();
      }
      if (!this.stopped) {
        this.listen();
        this.previous.sync();
      }
    });
  }

  /** The keys the room runs on now (they change with an owner key update). */
  get identity(): RoomIdentity {
    return this.keys.current;
  }

  /** The rotation policy a user changed (section 5.2): saved at once, used from the next step and tick. */
  configure(change: Partial<Pick<RoomConfig, 'rotateEveryMessages' | 'rotateAfterMs'>>): Promise<void> {
    return this.serial(async () => {
      const config = { ...this.state.config, ...change };
      if (config.rotateEveryMessages === this.state.config.rotateEveryMessages && config.rotateAfterMs === this.state.config.rotateAfterMs)
        return;
      if (!Number.isSafeInteger(config.rotateEveryMessages) || config.rotateEveryMessages < 1)
        throw new RangeError('rotateEveryMessages must be an integer >= 1');
      if (!Number.isSafeInteger(config.rotateAfterMs) || config.rotateAfterMs < 0)
        throw new RangeError('rotateAfterMs must be an integer >= 0');
      await this.replaceState({ ...this.state, config });
    });
  }

  // ---- queries ----

  safetyCode(): string {
    return ownerSafetyCode(this.state);
  }

  /** The link to a member's peer key (offline ones included), for connection badges. */
  linkOf(peer: string): PeerLink | undefined {
    return this.handle?.links.get(peer);
  }

  get signalingReady(): boolean {
    return this.handle?.signalingReady === true;
  }

  /** The peer key of this owner (hex): its signaling path. */
  get peerKey(): string {
    return toHex(this.keys.current.peer.publicKey);
  }

  /** Paths left by an owner key update that are still listened on (hex of the old peer keys). */
  get previousPaths(): string[] {
    return this.previous.paths;
  }

  // ---- lifecycle ----

  protected halt(): void {
    if (this.tickTimer !== null) this.env.timers.clearTimeout(this.tickTimer);
    this.tickTimer = null;
  }

  protected closeAll(): void {
    this.handle?.close();
    this.handle = null;
    this.previous.close();
  }
}
