/**
 * The member driver's part of "owner away" (docs/PROTOCOL.md 5.16), shared by the web app and the
 * CLI through MemberDriver: it watches the link to the owner, goes away-mode after AWAY_AFTER_MS,
 * makes the mesh links of the pairing rule through the injected MeshLinkPort (host on our own path
 * for the greater roster keys, dial the smaller ones, again with backoff when one drops), runs the
 * pure away.ts steps in the driver's one queue, and hands the owner what it holds when the owner's
 * link opens again.
 *
 * The away state is memory only (5.16): a restarted member gets the held envelopes back from its
 * peers; its own messages are in its outbox.
 */
import { asBoxPublicKey, fromHex, toHex, type BoxKeyPair, type BoxPublicKey } from '../../crypto/index.ts';
import { backoffDelay } from '../link/backoff.ts';
import type { LinkState, PeerLink } from '../link/peer-link.ts';
import {
  AWAY_AFTER_MS,
  EMPTY_AWAY,
  awayClosed,
  awayHandover,
  awayOpened,
  awayOwn,
  awayReceived,
  awaySettle,
  meshRoles,
  type AwayEntry,
  type AwayPeer,
  type AwayState,
  type AwayStep,
} from './away.ts';
import { describeError } from './driver.ts';
import type { DriverEnv, MeshLinkPort } from './driver-ports.ts';
import type { MemberId, MemberState, PeerKeyHex } from './types.ts';

const isOpen = (s: LinkState): boolean => s === 'direct' || s === 'relayed';
const keyOf = (hex: PeerKeyHex): BoxPublicKey => asBoxPublicKey(fromHex(hex, 32));

/** What the member driver lends the mesh. */
export interface MeshDriverHooks {
  /** The member state after the last committed step. */
  readonly state: () => MemberState;
  /** Runs `fn` in the driver's one queue (failures are reported as driver errors). */
  readonly serial: (what: string, fn: () => Promise<void>) => void;
  /** Whether the link to the owner is open now. */
  readonly ownerOpen: () => boolean;
  /** Sends on the link to the owner (the handover). */
  readonly sendToOwner: (bytes: Uint8Array) => void;
  /** The peer key pair our links present now (changes with a key update, 5.8.1). */
  readonly linkKeys: () => { permanentKeys: BoxKeyPair };
}

export class MeshDriver {
  private timer: unknown = null;
  private activeValue = false;
  private away: AwayState = EMPTY_AWAY;
  private host: { close(): void } | null = null;
  private readonly links = new Map<PeerKeyHex, PeerLink>();
  private readonly open = new Set<PeerKeyHex>();
  private readonly redial = new Map<PeerKeyHex, unknown>();
  private readonly attempts = new Map<PeerKeyHex, number>();
  private stopped = false;

  constructor(
    private readonly port: MeshLinkPort,
    private readonly env: DriverEnv,
    private readonly hooks: MeshDriverHooks,
  ) {}

  /** Called on every change of the link to the owner (and once at start). */
  ownerLink(open: boolean): void {
    if (this.stopped) return;
    if (open) {
      if (this.timer !== null) this.env.timers.clearTimeout(this.timer);
      this.timer = null;
      if (this.activeValue) this.back();
      return;
    }
    if (this.activeValue || this.timer !== null || this.hooks.state().phase !== 'member') return;
    this.timer = this.env.timers.setTimeout(() => {
      this.timer = null;
      this.enter();
    }, AWAY_AFTER_MS);
  }

  private enter(): void {
    if (this.stopped || this.activeValue || this.hooks.ownerOpen() || this.hooks.state().phase !== 'member') return;
    this.activeValue = true;
    this.away = { ...EMPTY_AWAY, held: this.away.held };
    this.env.log.info('the owner is away: talking directly');
    this.env.events({ kind: 'away', active: true });
    const roles = meshRoles(this.hooks.state());
    if (roles.trust.length > 0) {
      this.host = this.port.host(
        {
          trustedKeys: () => meshRoles(this.hooks.state()).trust.map(keyOf),
          onLink: (link) => this.attach(link),
          onWarning: (m) => this.env.log.warn(`mesh: ${m}`),
        },
        this.hooks.linkKeys(),
      );
    }
    for (const k of roles.dial) this.dial(k);
  }

  /** The owner is back: hand it what we hold (after the steps queued so far), close the mesh. */
  private back(): void {
    this.activeValue = false;
    this.closeMesh();
    this.env.log.info('the owner is back');
    this.env.events({ kind: 'away', active: false });
    this.hooks.serial('handover', async () => {
      for (const page of awayHandover(this.away)) this.hooks.sendToOwner(page);
    });
  }

  private dial(peer: PeerKeyHex): void {
    if (!this.activeValue || this.stopped) return;
    this.redial.delete(peer);
    this.port.dial(keyOf(peer), this.hooks.linkKeys()).then(
      (link) => {
        this.attempts.set(peer, 0);
        this.attach(link);
      },
      (e: unknown) => {
        if (!this.activeValue || this.stopped) return;
        this.env.log.info(`mesh link to ${peer.slice(0, 8)} failed (${describeError(e)}); retrying`);
        this.scheduleDial(peer);
      },
    );
  }

  private scheduleDial(peer: PeerKeyHex): void {
    if (!this.activeValue || this.stopped || this.redial.has(peer)) return;
    const n = this.attempts.get(peer) ?? 0;
    this.attempts.set(peer, n + 1);
    this.redial.set(
      peer,
      this.env.timers.setTimeout(() => this.dial(peer), backoffDelay(n, this.env.random)),
    );
  }

  private attach(link: PeerLink): void {
    const peer = toHex(link.peerKey) as PeerKeyHex;
    if (!this.activeValue || this.stopped) {
      link.close();
      return;
    }
    const old = this.links.get(peer);
    if (old !== undefined && old !== link) old.close();
    this.links.set(peer, link);
    const opened = (): void => {
      if (this.links.get(peer) !== link || this.open.has(peer)) return;
      this.open.add(peer);
      this.step('mesh link', (s, a) => awayOpened(s, a, peer));
    };
    const lost = (): void => {
      if (this.links.get(peer) !== link || !this.open.has(peer)) return;
      this.open.delete(peer);
      this.step('mesh link', (_s, a) => awayClosed(a, peer));
    };
    link.on('message', (bytes) => {
      if (this.links.get(peer) === link) this.step('mesh input', (s, a) => awayReceived(s, a, peer, bytes));
    });
    link.on('state', (state) => (isOpen(state) ? opened() : lost()));
    link.on('error', (e) => this.env.log.warn(`mesh link ${peer.slice(0, 8)}: ${e.message}`));
    link.on('close', () => {
      lost();
      if (this.links.get(peer) !== link) return;
      this.links.delete(peer);
      // We dial the smaller keys: make that link again while the owner is away.
      if (meshRoles(this.hooks.state()).dial.includes(peer)) this.scheduleDial(peer);
    });
    if (isOpen(link.state)) opened();
  }

  /** One away.ts step in the driver's queue; its effects go out after it. */
  private step(what: string, make: (s: MemberState, a: AwayState) => AwayStep): void {
    this.hooks.serial(what, async () => {
      this.apply(what, make(this.hooks.state(), this.away));
    });
  }

  private apply(what: string, step: AwayStep): void {
    if (step.error !== undefined) {
      // A copy that arrived twice (flooding) is normal; anything else is worth a line.
      const line = `${what} refused: ${step.error.code}: ${step.error.message}`;
      if (step.error.code === 'room.duplicate') this.env.log.info(line);
      else this.env.log.warn(line);
    }
    this.away = step.state;
    for (const e of step.effects) {
      if (e.kind === 'send') {
        const link = this.links.get(e.to);
        if (link !== undefined && link.state !== 'closed') link.send(e.bytes);
      } else if (e.kind === 'close') {
        this.links.get(e.to)?.close();
      } else {
        this.env.events({ kind: 'mesh', event: e.event });
      }
    }
  }

  /** Our own message was committed (outbox, state): while away it also goes to the mesh. */
  ownSent(env: Uint8Array): void {
    if (this.activeValue) this.step('own away message', (s, a) => awayOwn(s, a, env));
  }

  /** Inside the driver's queue, after a step that delivered `ordered` messages. */
  settle(ordered: readonly { from: MemberId; seq: number; idx: number }[]): void {
    if (this.away.held.length === 0) return;
    this.apply('settle', awaySettle(this.hooks.state(), this.away, ordered, false));
    // Withdrawals after the whole step (its other messages may still settle entries).
    this.hooks.serial('settle', async () => {
      if (this.away.held.length > 0) this.apply('settle', awaySettle(this.hooks.state(), this.away, []));
    });
  }

  private closeMesh(): void {
    this.host?.close();
    this.host = null;
    for (const t of this.redial.values()) this.env.timers.clearTimeout(t);
    this.redial.clear();
    const links = [...this.links.values()];
    this.links.clear();
    this.open.clear();
    for (const l of links) l.close();
    this.away = { ...this.away, peers: [], behind: false };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.env.timers.clearTimeout(this.timer);
    this.timer = null;
    this.activeValue = false;
    this.closeMesh();
  }

  // ---- queries ----

  get active(): boolean {
    return this.activeValue;
  }

  get peers(): readonly AwayPeer[] {
    return this.away.peers;
  }

  /** Held envelopes: shown provisionally until their ordered copy arrives. */
  get held(): readonly AwayEntry[] {
    return this.away.held;
  }
}
