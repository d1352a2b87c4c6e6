/**
 * A room this device joined: the member machine plus `joinRoom` (protocol/link/member.ts). The first
 * contact uses the invite's auth token; afterwards (and after every reload) the trusted-key path.
 * Own messages are sealed into the outbox before they leave and removed when the owner delivers
 * them back (section 5.6), so a reload never loses one; re-sending the exact bytes lets the
 * owner's per-sender sequence check drop a copy it already has, so none is doubled.
 */
import { asBoxPublicKey, fromHex } from '../../crypto/index.ts';
import { FATAL_JOIN_CODES, joinRoom } from '../../protocol/link/member.ts';
import type { LinkState, PeerLink } from '../../protocol/link/peer-link.ts';
import type { MemberState, RoomEvent } from '../../protocol/room/types.ts';
import { memberStep, type MemberCtx } from './machines.ts';
import { encodeOutbox, seqKey, type HistoryRecord, type OutboxRecord } from './records.ts';
import type { RoomIdentity, RoomRecord } from './room-record.ts';
import { browserWebSocket } from './browser-websocket.ts';
import { RoomRuntime, type RuntimeDeps } from './runtime.ts';
import type { ConnectionState, RoomView } from './types.ts';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class MemberRuntime extends RoomRuntime<MemberState> {
  private link: PeerLink | null = null;
  private linkState: ConnectionState = 'connecting';
  private readonly ctx: MemberCtx;
  /** Outbox entries not yet handed to any link in this run (after a reload, or sent while no link). */
  private readonly unsent = new Set<number>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  /** The first contact's SaltyRTC auth token; absent once the owner knows our peer key. */
  private authToken: Uint8Array | undefined;

  constructor(
    deps: RuntimeDeps,
    record: RoomRecord & { readonly state: MemberState },
    keys: RoomIdentity,
    history: HistoryRecord[],
    outbox: OutboxRecord[],
    authToken?: Uint8Array,
    /** A link already being made for this join (web/session/prewarm.ts), used by the first connect. */
    private firstLink?: Promise<PeerLink>,
  ) {
    super(deps, record, keys, history, outbox);
    this.ctx = { random: (n) => crypto.getRandomValues(new Uint8Array(n)), identity: keys.identity, peerKey: keys.peer.publicKey };
    for (const o of outbox) this.unsent.add(o.seq);
    this.authToken = authToken;
  }

  start(): void {
    if (this.state.phase === 'removed' || this.state.phase === 'left' || this.state.phase === 'refused') {
      this.linkState = 'closed';
      return;
    }
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.retryTimer = null;
    this.linkState = 'connecting';
    this.deps.changed();
    const policy = this.deps.iceTransportPolicy();
    const prepared = this.firstLink;
    this.firstLink = undefined;
    (
      prepared ??
      joinRoom({
        signalingUrl: this.record.server,
        ...(this.record.serverKey !== '' ? { serverKey: asBoxPublicKey(fromHex(this.record.serverKey, 32)) } : {}),
        ownerKey: asBoxPublicKey(fromHex(this.state.ownerPeer, 32)),
        ...(this.authToken !== undefined ? { token: this.authToken } : {}),
        permanentKeys: this.keys.peer,
        WebSocket: browserWebSocket(),
        iceServers: this.deps.iceServers(),
        ...(policy !== undefined ? { iceTransportPolicy: policy } : {}),
      })
    ).then(
      (link) => this.attach(link),
      (e: unknown) => this.connectFailed(e),
    );
  }

  private connectFailed(e: unknown): void {
    const code = (e as { code?: unknown }).code;
    // One line per attempt: the only trace a failed join leaves outside the device (no secrets).
    console.info(`room ${this.id.slice(0, 8)}: link to the owner failed: ${typeof code === 'string' ? code : describe(e)}`);
    if (typeof code === 'string' && FATAL_JOIN_CODES.has(code)) {
      this.linkState = 'closed';
      this.note(`the owner did not let us in (${code})`);
      this.deps.changed();
      return;
    }
    this.linkState = 'offline';
    this.deps.changed();
    if (this.closed) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private attach(link: PeerLink): void {
    if (this.closed) {
      link.close();
      return;
    }
    this.link = link;
    this.authToken = undefined;
    this.attempt = 0;
    link.on('message', (bytes) => {
      this.serial(() => this.applyReceived(memberStep(this.ctx, this.state, { kind: 'received', bytes, now: Date.now() }))).catch(
        (e: unknown) => console.error('member step failed', e),
      );
    });
    console.info(`room ${this.id.slice(0, 8)}: link to the owner ${link.state}`);
    link.on('state', (state: LinkState) => {
      console.info(`room ${this.id.slice(0, 8)}: link to the owner ${state}`);
      this.linkState = state;
      // One PeerLink per connection (see OwnerRuntime.attach): a dropped link is closed and a fresh
      // one is made, so a restarted owner never sees resumed message ids it does not know.
      // 'restarting' is not a drop: the same peer connection, keys and message ids carry on.
      if (state === 'offline') link.close();
      this.deps.changed();
    });
    link.on('close', () => {
      if (this.link !== link) return;
      this.link = null;
      this.linkState = 'offline';
      // Every outbox entry goes out again on the next link; the owner's replay check drops copies.
      for (const o of this.outbox) this.unsent.add(o.seq);
      this.deps.changed();
      // Dropped, or closed by the owner (kick: the 'removed' message is processed first, in order).
      this.serial(async () => {
        if (!this.closed && (this.state.phase === 'member' || this.state.phase === 'joining' || this.state.phase === 'accepted'))
          this.connectFailed(new Error('link closed'));
      }).catch((e: unknown) => console.error('reconnect failed', e));
    });
    this.linkState = link.state;
    this.connected();
    this.deps.changed();
  }

  /** The link to the owner is open (again): stored outbox, then the machine's join-request / join-confirm / sync (5.4, 5.10). */
  private connected(): void {
    const link = this.link;
    if (link === null) return;
    for (const o of this.outbox) {
      if (this.unsent.delete(o.seq)) link.send(o.wire);
    }
    this.serial(() => this.apply(memberStep(this.ctx, this.state, { kind: 'connected', now: Date.now() }))).catch((e: unknown) =>
      console.error('connected step failed', e),
    );
  }

  /** Diagnostics: the link to the owner. */
  diagnosticLinks(): Array<{ name: string; link: PeerLink | undefined }> {
    const owner = this.state.members.find((m) => m.info.owner);
    return [{ name: owner?.info.name ?? 'owner', link: this.link ?? undefined }];
  }

  stop(): void {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.link?.close();
    this.link = null;
  }

  protected sendTo(_to: string, bytes: Uint8Array): void {
    // A member has exactly one peer: the owner. Without a link the sync after reconnecting catches up.
    if (this.link !== null && this.link.state !== 'closed') this.link.send(bytes);
  }

  protected closeLink(): void {
    this.link?.close();
  }

  send(text: string): Promise<void> {
    return this.serial(async () => {
      const step = memberStep(this.ctx, this.state, { kind: 'send', text, now: Date.now() });
      if (step.error !== undefined) throw step.error;
      const wire = step.effects.find((e) => e.kind === 'send');
      if (wire !== undefined && wire.kind === 'send') {
        const rec: OutboxRecord = { seq: step.state.seq, text, at: Date.now(), wire: wire.bytes };
        await this.deps.vault.put('outbox', seqKey(this.id, rec.seq), encodeOutbox(rec));
        this.outbox.push(rec);
        if (this.link === null || this.link.state === 'closed') this.unsent.add(rec.seq);
      }
      await this.apply(step);
    });
  }

  protected override async addMessage(ev: Extract<RoomEvent, { type: 'message' }>): Promise<void> {
    await super.addMessage(ev);
    if (ev.from === this.state.selfId) await this.dropOutbox(ev.seq);
  }

  private async dropOutbox(seq: number): Promise<void> {
    if (!this.outbox.some((o) => o.seq === seq)) return;
    this.outbox = this.outbox.filter((o) => o.seq !== seq);
    this.unsent.delete(seq);
    await this.deps.vault.delete('outbox', seqKey(this.id, seq));
  }

  protected override async onSendRefused(code: string, seq: number | null): Promise<void> {
    if (seq === null) return super.onSendRefused(code, seq);
    const entry = this.outbox.find((o) => o.seq === seq);
    await this.dropOutbox(seq);
    // A copy of a message the owner already ordered: it is in history already (or arrives there).
    if (code === 'room.replay') return;
    // Sealed under an epoch that rotated away while it waited: seal it again under the current key.
    if (entry !== undefined && (code === 'room.epoch-expired' || code === 'room.epoch-unknown') && this.state.phase === 'member') {
      const step = memberStep(this.ctx, this.state, { kind: 'send', text: entry.text, now: Date.now() });
      if (step.error === undefined) {
        const wire = step.effects.find((e) => e.kind === 'send');
        if (wire !== undefined && wire.kind === 'send') {
          const rec: OutboxRecord = { seq: step.state.seq, text: entry.text, at: entry.at, wire: wire.bytes };
          await this.deps.vault.put('outbox', seqKey(this.id, rec.seq), encodeOutbox(rec));
          this.outbox.push(rec);
        }
        this.record = { ...this.record, state: step.state };
        for (const e of step.effects) if (e.kind === 'send') this.sendTo(e.to, e.bytes);
        return;
      }
    }
    return super.onSendRefused(code, seq);
  }

  view(): RoomView {
    const s = this.state;
    const self = s.members.find((m) => m.info.id === s.selfId);
    const members = s.members.map((m) =>
      this.memberView(
        m.info,
        s.selfId,
        m.info.id === s.selfId ? 'self' : m.info.owner ? this.linkState : 'via-owner',
        m.info.owner ? (this.link?.counts ?? null) : null,
      ),
    );
    return {
      id: this.id,
      name: s.roomName ?? 'Room',
      role: 'member',
      selfId: s.selfId,
      epoch: Math.max(0, s.epoch),
      safetyCode: this.safety(),
      members,
      messages: this.messageViews(s.selfId, self?.info.name ?? s.name),
      invites: [],
      removed: s.phase === 'removed',
      status: s.phase === 'member' ? `owner ${this.linkState}` : s.phase,
    };
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
