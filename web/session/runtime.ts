/**
 * One room on this device, as the views see it: the room driver (protocol/room/driver.ts, the same
 * one `zeroroom host`/`join` run) does the work; this adapter gives it the browser's WebRTC,
 * WebSocket, clock and vault, and turns what it reports into RoomViews (delivered history, pending
 * outbox messages, system notes).
 */
import { asBoxPublicKey, fromHex, systemRandom } from '../../crypto/index.ts';
import type { EndpointOptions } from '../../protocol/link/endpoint.ts';
import type { LinkState } from '../../protocol/link/peer-link.ts';
import type { DriverEnv, DriverEvent, Logger } from '../../protocol/room/driver-ports.ts';
import { fingerprint } from '../../protocol/room/ids.ts';
import type { HistoryRecord, OutboxRecord, RoomIdentity, RoomRecord } from '../../protocol/room/records.ts';
import type { MemberInfo, RoomEvent } from '../../protocol/room/types.ts';
import { systemTimers } from '../../protocol/saltyrtc/client-driver.ts';
import type { Vault } from '../storage/vault.ts';
import { browserWebSocket } from './browser-websocket.ts';
import type { ConnectionState, LinkCountsView, MemberView, MessageView, RoomView } from './types.ts';

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

/** The browser console, one prefix per room (errors there are real errors: e2e tests fail on them). */
function consoleLogger(prefix: string): Logger {
  return {
    info: (m) => console.info(`${prefix}: ${m}`),
    warn: (m) => console.warn(`${prefix}: ${m}`),
    error: (m) => console.error(`${prefix}: ${m}`),
  };
}

export abstract class RoomRuntime {
  private readonly notes: MessageView[] = [];

  protected constructor(
    protected readonly deps: RuntimeDeps,
    readonly record: Omit<RoomRecord, 'state'>,
    readonly id: string,
    protected readonly keys: RoomIdentity,
    /** Delivered messages in index order (committed history records). */
    protected history: HistoryRecord[],
  ) {}

  /** Clock, randomness, console logger and the event sink for this room's driver. */
  protected env(): DriverEnv {
    return {
      timers: systemTimers,
      random: systemRandom,
      log: consoleLogger(`room ${this.id.slice(0, 8)}`),
      events: (e) => this.onDriverEvent(e),
    };
  }

  /** Signaling, keys and ICE settings, read at every connect (fresh TURN credentials). */
  protected endpoint(): EndpointOptions {
    const policy = this.deps.iceTransportPolicy();
    return {
      signalingUrl: this.record.server,
      ...(this.record.serverKey !== '' ? { serverKey: asBoxPublicKey(fromHex(this.record.serverKey, 32)) } : {}),
      permanentKeys: this.keys.peer,
      WebSocket: browserWebSocket(),
      iceServers: this.deps.iceServers(),
      ...(policy !== undefined ? { iceTransportPolicy: policy } : {}),
    };
  }

  private onDriverEvent(e: DriverEvent): void {
    if (e.kind === 'room') this.onRoomEvent(e.event);
    else if (e.kind === 'refused') this.note(`the owner did not let us in (${e.code})`);
    this.deps.changed();
  }

  private onRoomEvent(ev: RoomEvent): void {
    switch (ev.type) {
      case 'message':
        return this.addMessage(ev);
      case 'member-joined':
        return this.note(`${ev.member.name} joined`);
      case 'member-left':
        return this.note(`${ev.member.name} left (${ev.reason})`);
      case 'rotated':
        return this.note(`new room key: epoch ${ev.epoch} (${ev.reason})`);
      case 'joined':
        return this.note('you joined the room');
      case 'join-refused':
        this.note(`the owner refused the join: ${ev.code}`);
        return this.deps.report(`Joining failed: ${ev.code}`);
      case 'removed':
        return this.note(ev.reason === 'left' ? 'you left the room' : 'you were removed from the room');
      case 'left':
        return this.note('you left the room');
      case 'send-refused':
        return this.note(`a message was refused by the owner: ${ev.code}${ev.seq === null ? '' : ` (#${ev.seq})`}`);
      case 'history-skipped':
        return this.note(`${ev.count} earlier message(s) cannot be shown (${ev.reason})`);
      default:
        return; // invites are listed from the owner's state; newer event types have no view yet
    }
  }

  /** The driver saved this message's history record already; here it joins the view once. */
  private addMessage(ev: Extract<RoomEvent, { type: 'message' }>): void {
    if (this.history.some((h) => h.idx === ev.idx)) return;
    const rec: HistoryRecord = {
      idx: ev.idx,
      senderId: ev.from,
      senderName: ev.name,
      seq: ev.seq,
      text: ev.text,
      at: ev.ts,
      system: false,
    };
    const at = this.history.findIndex((h) => h.idx > ev.idx);
    if (at === -1) this.history.push(rec);
    else this.history.splice(at, 0, rec);
  }

  protected note(text: string): void {
    this.notes.push({ key: `sys/${++systemCounter}`, senderId: '', senderName: '', text, at: Date.now(), pending: false, system: true });
  }

  protected messageViews(selfId: string, selfName: string, pending: readonly OutboxRecord[]): MessageView[] {
    const delivered: MessageView[] = this.history.map((m) => ({
      key: `${m.senderId}/${m.seq}`,
      senderId: m.senderId,
      senderName: m.senderName,
      text: m.text,
      at: m.at,
      pending: false,
      system: false,
    }));
    const waiting: MessageView[] = pending.map((o) => ({
      key: `${selfId}/${o.seq}`,
      senderId: selfId,
      senderName: selfName,
      text: o.text,
      at: o.at,
      pending: true,
      system: false,
    }));
    return [...delivered, ...waiting, ...this.notes];
  }

  protected memberView(
    info: MemberInfo,
    selfId: string,
    connection: MemberView['connection'],
    linkCounts: LinkCountsView | null = null,
  ): MemberView {
    return {
      id: info.id,
      name: info.name,
      fingerprint: fingerprint(info.ipub, info.npub),
      isOwner: info.owner,
      isSelf: info.id === selfId,
      connection,
      linkCounts,
    };
  }

  abstract view(): RoomView;
  abstract start(): Promise<void>;
  /** Resolves once queued steps are done and the links are closed. */
  abstract stop(): Promise<void>;
  abstract send(text: string): Promise<void>;
}

export function linkBadge(state: LinkState | undefined): ConnectionState {
  return state ?? 'offline';
}
