/**
 * A room this device owns: the owner machine plus `startOwner` (protocol/link/owner.ts). The
 * owner's SaltyRTC path stays open while the app runs; members are admitted at the link level by
 * their invite's auth token (first contact) or their known peer key (reconnects), and at the room
 * level by the owner machine (section 5.4).
 */
import { asBoxPublicKey, equalBytes, fromHex, toHex } from '../../crypto/index.ts';
import { startOwner, type OwnerHandle } from '../../protocol/link/owner.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';
import { inviteUrl } from '../../protocol/room/invite.ts';
import type { OwnerState, PeerKeyHex } from '../../protocol/room/types.ts';
import { memberPeerKeys, ownerStep, pendingAuthTokens, rotationCount, type OwnerCtx } from './machines.ts';
import type { HistoryRecord } from './records.ts';
import type { RoomIdentity, RoomRecord } from './room-record.ts';
import { browserWebSocket } from './browser-websocket.ts';
import { linkBadge, RoomRuntime, type RuntimeDeps } from './runtime.ts';
import type { InviteView, RoomView } from './types.ts';

/** Rotation timer and invite expiry run on the owner's clock (section 5.7). */
const TICK_MS = 15_000;

export class OwnerRuntime extends RoomRuntime<OwnerState> {
  private handle: OwnerHandle | null = null;
  private tickTimer: ReturnType<typeof setInterval> | null = null;
  private statusTimer: ReturnType<typeof setInterval> | null = null;
  private readonly ctx: OwnerCtx;
  private lastSignaling = false;

  constructor(deps: RuntimeDeps, record: RoomRecord & { readonly state: OwnerState }, keys: RoomIdentity, history: HistoryRecord[]) {
    super(deps, record, keys, history, []);
    this.ctx = {
      random: (n) => crypto.getRandomValues(new Uint8Array(n)),
      identity: keys.identity,
      peerKey: keys.peer.publicKey,
      invites: {
        appUrl: deps.appUrl,
        server: record.server,
        ...(record.serverKey !== '' ? { serverKey: fromHex(record.serverKey, 32) } : {}),
      },
    };
  }

  start(): void {
    const policy = this.deps.iceTransportPolicy();
    this.handle = startOwner({
      signalingUrl: this.record.server,
      ...(this.record.serverKey !== '' ? { serverKey: asBoxPublicKey(fromHex(this.record.serverKey, 32)) } : {}),
      permanentKeys: this.keys.peer,
      WebSocket: browserWebSocket(),
      iceServers: this.deps.iceServers(),
      ...(policy !== undefined ? { iceTransportPolicy: policy } : {}),
      pendingTokens: () => pendingAuthTokens(this.state, Date.now()),
      // The link layer only checks the auth token is one of ours; the room machine admits (5.3).
      acceptToken: (token) => [...pendingAuthTokens(this.state, Date.now())].some((t) => equalBytes(t, token)),
      trustedKeys: () => memberPeerKeys(this.state).map((hex) => asBoxPublicKey(fromHex(hex, 32))),
      onLink: (link) => this.attach(link),
      onWarning: (m) => console.warn(`owner ${this.id.slice(0, 8)}: ${m}`),
    });
    this.tickTimer = setInterval(() => {
      this.serial(() => this.apply(ownerStep(this.ctx, this.state, { kind: 'tick', now: Date.now() }))).catch((e: unknown) =>
        console.error('tick failed', e),
      );
    }, TICK_MS);
    // signalingReady has no event; the header badge follows it.
    this.statusTimer = setInterval(() => {
      const ready = this.handle?.signalingReady ?? false;
      if (ready !== this.lastSignaling) {
        this.lastSignaling = ready;
        this.deps.changed();
      }
    }, 500);
  }

  /** Diagnostics: each member's link (protocol/link/diagnostics.ts reads its path and RTT). */
  diagnosticLinks(): Array<{ name: string; link: PeerLink | undefined }> {
    return this.state.members
      .filter((m) => m.info.id !== this.state.selfId)
      .map((m) => ({ name: m.info.name, link: this.handle?.links.get(m.peer) }));
  }

  stop(): void {
    this.closed = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    this.handle?.close();
    this.handle = null;
  }

  private attach(link: PeerLink): void {
    const from = toHex(link.peerKey) as PeerKeyHex;
    link.on('message', (bytes) => {
      this.serial(() => this.applyReceived(ownerStep(this.ctx, this.state, { kind: 'received', from, bytes, now: Date.now() }))).catch(
        (e: unknown) => console.error('owner step failed', e),
      );
    });
    console.info(`owner ${this.id.slice(0, 8)}: link ${from.slice(0, 8)} ${link.state}`);
    link.on('state', (state) => {
      console.info(`owner ${this.id.slice(0, 8)}: link ${from.slice(0, 8)} ${state}`);
      // One PeerLink per connection: the link layer resumes message ids across drops, which breaks
      // when the member's page restarted (its ids start again at 1). Closing a dropped link makes the
      // member's reconnect create a fresh one; room-level sync (5.10) re-sends what was missed.
      // 'restarting' (an ICE restart on the same peer connection) keeps the link.
      if (state === 'offline') link.close();
      this.deps.changed();
    });
    link.on('error', (e) => console.warn(`link ${from.slice(0, 8)}: ${e.message}`));
    this.deps.changed();
  }

  /**
   * The log (up to maxLogEntries signed envelopes) is not written with the room record after every
   * step: each entry goes once into its message's history record, and `restoreLog` rebuilds it.
   */
  protected override persistable(): RoomRecord {
    return { ...this.record, state: { ...this.state, log: [] } };
  }

  protected override logFields(idx: number): Partial<HistoryRecord> {
    const entry = this.state.log.find((e) => e.idx === idx);
    return entry === undefined ? {} : { epoch: entry.epoch, env: entry.env };
  }

  protected sendTo(to: string, bytes: Uint8Array): void {
    const link = this.handle?.links.get(to);
    // A member without a live link catches up with sync/history when it reconnects (5.10).
    if (link !== undefined && link.state !== 'closed') link.send(bytes);
  }

  protected closeLink(to: string): void {
    this.handle?.links.get(to)?.close();
  }

  send(text: string): Promise<void> {
    return this.serial(() => this.apply(ownerStep(this.ctx, this.state, { kind: 'send', text, now: Date.now() })));
  }

  createInvite(ttlMinutes: number): Promise<void> {
    return this.serial(() => this.apply(ownerStep(this.ctx, this.state, { kind: 'invite', now: Date.now(), ttlMs: ttlMinutes * 60_000 })));
  }

  revokeInvite(inviteId: string): Promise<void> {
    return this.serial(async () => {
      await this.apply(ownerStep(this.ctx, this.state, { kind: 'revoke', invite: inviteId as never, now: Date.now() }));
    });
  }

  kick(memberId: string): Promise<void> {
    return this.serial(() => this.apply(ownerStep(this.ctx, this.state, { kind: 'kick', member: memberId as never, now: Date.now() })));
  }

  rotateNow(): Promise<void> {
    return this.serial(() => this.apply(ownerStep(this.ctx, this.state, { kind: 'rotate', now: Date.now() })));
  }

  /** Settings' rotation policy applies to rooms this device owns (RoomConfig, section 5.2). */
  setRotation(everyMessages: number, everyMinutes: number): void {
    const config = { ...this.state.config, rotateEveryMessages: rotationCount(everyMessages), rotateAfterMs: everyMinutes * 60_000 };
    this.record = { ...this.record, state: { ...this.state, config } };
  }

  /**
   * Invites that can still admit someone (pending, not expired), rebuilt from the machine state so
   * they survive a reload; the URL is the one the machine issued (same fields, section 5.3).
   */
  private openInvites(now: number): InviteView[] {
    const s = this.state;
    const serverKey = this.ctx.invites.serverKey;
    return s.invites
      .filter((i) => i.status === 'pending' && i.token !== undefined && now <= i.expiresAt)
      .map((i) => ({
        id: i.id,
        expiresAt: i.expiresAt,
        url: inviteUrl(this.deps.appUrl, {
          v: 1,
          room: s.room,
          token: i.token as Uint8Array,
          opub: this.keys.identity.publicKey,
          npub: this.keys.peer.publicKey,
          server: this.record.server,
          exp: i.expiresAt,
          ...(serverKey !== undefined ? { spub: serverKey } : {}),
          ...(s.name !== null ? { name: s.name } : {}),
        }),
      }));
  }

  view(): RoomView {
    const s = this.state;
    const self = s.members.find((m) => m.info.id === s.selfId);
    return {
      id: this.id,
      name: s.name ?? 'Room',
      role: 'owner',
      selfId: s.selfId,
      epoch: s.epoch,
      safetyCode: this.safety(),
      members: s.members.map((m) => {
        const link = m.info.id === s.selfId ? undefined : this.handle?.links.get(m.peer);
        return this.memberView(m.info, s.selfId, m.info.id === s.selfId ? 'self' : linkBadge(link), link?.counts ?? null);
      }),
      messages: this.messageViews(s.selfId, self?.info.name ?? ''),
      invites: this.openInvites(Date.now()),
      removed: false,
      status: this.handle?.signalingReady === true ? 'open for members' : 'connecting to the signaling server',
    };
  }
}
