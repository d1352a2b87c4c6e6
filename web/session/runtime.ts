/**
 * One room on this device: the room machine's state, its peer link(s), and the sealed records that
 * mirror it. Steps run one at a time (a promise queue); after each step the effects go to the
 * links, messages go to history, and the new state is sealed into the room record before the next
 * step runs.
 */
import { toHex } from '../../crypto/index.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';
import { fingerprint, safetyCode } from '../../protocol/room/ids.ts';
import type { Effect, MemberState, OwnerState, RoomEvent, Step } from '../../protocol/room/types.ts';
import type { Vault } from '../storage/vault.ts';
import { S, type Delivery } from '../strings.ts';
import { encodeHistory, seqKey, type HistoryRecord, type OutboxRecord } from './records.ts';
import { encodeRoomRecord, type RoomIdentity, type RoomRecord } from './room-record.ts';
import type { ConnectionState, LinkCountsView, MemberView, MessageView, RoomView } from './types.ts';
import { orderMessages } from './view-model.ts';

export interface RuntimeDeps {
  readonly vault: Vault;
  readonly iceServers: () => RTCIceServer[];
  readonly iceTransportPolicy: () => RTCIceTransportPolicy | undefined;
  readonly appUrl: string;
  /** Something visible changed: re-publish the room views. */
  readonly changed: () => void;
  /** A problem the user should see (not tied to a button press). */
  readonly report: (text: string) => void;
}

let systemCounter = 0;

export abstract class RoomRuntime<S extends OwnerState | MemberState> {
  protected queue: Promise<void> = Promise.resolve();
  protected readonly system: MessageView[] = [];
  closed = false;

  constructor(
    protected readonly deps: RuntimeDeps,
    public record: RoomRecord & { readonly state: S },
    protected readonly keys: RoomIdentity,
    protected history: HistoryRecord[],
    protected outbox: OutboxRecord[],
  ) {}

  get id(): string {
    return this.record.id;
  }

  get state(): S {
    return this.record.state;
  }

  /** Runs `fn` after every earlier step has been applied and persisted. */
  protected serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(
      () => undefined,
      () => undefined, // the caller of serial() gets the rejection; the queue itself goes on
    );
    return run;
  }

  /** Applies one step: refuses nothing silently (an error is returned to the caller). */
  protected async apply(step: Step<S>): Promise<void> {
    if (step.error !== undefined) throw step.error;
    // A tick that changed nothing (the common case) costs no storage write.
    if (step.state === this.record.state && step.effects.length === 0) return;
    this.record = { ...this.record, state: step.state };
    for (const effect of step.effects) await this.effect(effect);
    await this.deps.vault.put('rooms', this.id, encodeRoomRecord(this.persistable()));
    this.deps.changed();
  }

  /** A step caused by peer input: a refusal is logged (the machine kept its state), not thrown. */
  protected async applyReceived(step: Step<S>): Promise<void> {
    if (step.error !== undefined) {
      console.warn(`room ${this.id.slice(0, 8)}: refused peer input: ${step.error.code}: ${step.error.message}`);
      return;
    }
    await this.apply(step);
  }

  private async effect(e: Effect): Promise<void> {
    if (e.kind === 'send') this.sendTo(e.to, e.bytes);
    else if (e.kind === 'close') this.closeLink(e.to, e.reason);
    else await this.onEvent(e.event);
  }

  /** The room record as stored (the owner keeps its log in history records instead). */
  protected persistable(): RoomRecord {
    return this.record;
  }

  protected abstract sendTo(to: string, bytes: Uint8Array): void;
  protected abstract closeLink(to: string, reason: string): void;

  protected async onEvent(ev: RoomEvent): Promise<void> {
    switch (ev.type) {
      case 'message':
        await this.addMessage(ev);
        return;
      case 'member-joined':
        this.note(S.systemJoined(ev.member.name));
        return;
      case 'member-left':
        this.note(ev.reason === 'left' ? S.systemLeft(ev.member.name) : S.systemRemoved(ev.member.name));
        return;
      case 'rotated':
        // The first epoch comes with the room (create) or the join: no line for it.
        if (ev.reason !== 'create') this.note(S.systemNewKey);
        return;
      case 'joined':
        this.note(S.systemYouJoined);
        return;
      case 'join-refused':
        // The room's state ('refused', worded by code in web/strings.ts) says it; no line needed.
        return;
      case 'removed':
        this.note(ev.reason === 'left' ? S.systemYouLeft : S.systemYouRemoved);
        return;
      case 'left':
        this.note(S.systemYouLeft);
        return;
      case 'invite':
        return; // OwnerRuntime lists open invites from its state (they survive a reload)
      case 'send-refused':
        await this.onSendRefused(ev.code, ev.seq);
        return;
      case 'history-skipped':
        this.note(S.systemHistorySkipped(ev.count));
        return;
    }
  }

  protected async onSendRefused(code: string, seq: number | null): Promise<void> {
    console.warn(`room ${this.id.slice(0, 8)}: the owner refused message #${String(seq)}: ${code}`);
    this.note(S.systemSendRefused);
  }

  /** Extra fields stored with a history record (the owner adds its log entry). */
  protected logFields(_idx: number): Partial<HistoryRecord> {
    return {};
  }

  protected async addMessage(ev: Extract<RoomEvent, { type: 'message' }>): Promise<void> {
    if (this.history.some((h) => h.idx === ev.idx)) return;
    const rec: HistoryRecord = {
      idx: ev.idx,
      senderId: ev.from,
      senderName: ev.name,
      seq: ev.seq,
      text: ev.text,
      at: ev.ts,
      system: false,
      ...this.logFields(ev.idx),
    };
    await this.deps.vault.put('history', seqKey(this.id, ev.idx), encodeHistory(rec));
    this.history.push(rec);
    this.history.sort((a, b) => a.idx - b.idx);
  }

  protected note(text: string): void {
    this.system.push({
      key: `sys/${++systemCounter}`,
      senderId: '',
      senderName: '',
      text,
      at: Date.now(),
      pending: false,
      system: true,
      own: false,
      delivery: null,
      idx: null,
    });
  }

  protected currentAnnHash(): Uint8Array | null {
    const s = this.state;
    return s.epochs.find((e) => e.epoch === s.epoch)?.annHash ?? null;
  }

  /** `pendingDelivery`: where an outbox entry is (members: queued or at the owner). */
  protected messageViews(selfId: string, selfName: string, pendingDelivery: (seq: number) => Delivery = () => 'queued'): MessageView[] {
    const delivered: MessageView[] = this.history.map((m) => ({
      key: `${m.senderId}/${m.seq}`,
      senderId: m.senderId,
      senderName: m.senderName,
      text: m.text,
      at: m.at,
      pending: false,
      system: false,
      own: m.senderId === selfId,
      delivery: m.senderId === selfId ? 'delivered' : null,
      idx: m.idx,
    }));
    const pending: MessageView[] = this.outbox.map((o) => ({
      key: `${selfId}/${o.seq}`,
      senderId: selfId,
      senderName: selfName,
      text: o.text,
      at: o.at,
      pending: true,
      system: false,
      own: true,
      delivery: pendingDelivery(o.seq),
      idx: null,
    }));
    return orderMessages(delivered, pending, this.system);
  }

  protected memberView(
    info: { id: string; name: string; owner: boolean; ipub: Uint8Array; npub: Uint8Array },
    selfId: string,
    connection: MemberView['connection'],
    linkCounts: LinkCountsView | null = null,
  ): MemberView {
    return {
      id: info.id,
      name: info.name,
      fingerprint: fingerprint(info.ipub as never, info.npub as never),
      isOwner: info.owner,
      isSelf: info.id === selfId,
      connection,
      linkCounts,
    };
  }

  protected safety(): string {
    const ann = this.currentAnnHash();
    return ann === null ? '' : safetyCode(this.state.room, ann);
  }

  abstract view(): RoomView;
  abstract start(): void;
  abstract stop(): void;
  abstract send(text: string): Promise<void>;
}

export function linkBadge(link: PeerLink | undefined): ConnectionState {
  return link === undefined ? 'offline' : link.state;
}

export function roomIdOf(room: Uint8Array): string {
  return toHex(room);
}
