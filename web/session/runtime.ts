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
import { messageRecord } from '../../protocol/room/driver.ts';
import { fingerprint } from '../../protocol/room/ids.ts';
import type { HistoryRecord, OutboxRecord, RoomIdentity, RoomRecord } from '../../protocol/room/records.ts';
import type { MemberInfo, RoomEvent } from '../../protocol/room/types.ts';
import { systemTimers } from '../../protocol/saltyrtc/client-driver.ts';
import type { Vault } from '../storage/vault.ts';
import { S, type Delivery } from '../strings.ts';
import { browserWebSocket } from './browser-websocket.ts';
import type { ConnectionState, LinkCountsView, MemberView, MessageView, RoomView } from './types.ts';
import { orderMessages } from './view-model.ts';
import { FilesModel } from './files.ts';
import { lazyFileStore, type IdbFileStore } from '../storage/file-store.ts';
import type { RoomFiles, RoomFilesOptions } from '../../protocol/room/file-driver.ts';
import { webCryptoAead } from '../../crypto/index.ts';

export interface RuntimeDeps {
  readonly vault: Vault;
  readonly iceServers: () => RTCIceServer[];
  readonly iceTransportPolicy: () => RTCIceTransportPolicy | undefined;
  readonly appUrl: string;
  /** Something visible changed: re-publish the room views. */
  readonly changed: () => void;
  /** A problem the user should see (not tied to a button press). */
  readonly report: (text: string) => void;
  /** The per-file limit in bytes (settings, default 100 MiB). */
  readonly fileLimit: () => number;
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
  /** This room's files (web/session/files.ts); its `api` is the driver's once the driver exists. */
  readonly files: FilesModel;
  private fileStore: Promise<IdbFileStore> | undefined;

  protected constructor(
    protected readonly deps: RuntimeDeps,
    readonly record: Omit<RoomRecord, 'state'>,
    readonly id: string,
    protected readonly keys: RoomIdentity,
    /** Delivered messages in index order (committed history records). */
    protected history: HistoryRecord[],
  ) {
    this.files = new FilesModel({
      store: () => this.filesStore(),
      limit: deps.fileLimit,
      changed: deps.changed,
      report: deps.report,
      selfId: () => this.selfId(),
      api: () => this.filesApi(),
    });
  }

  /** The sealed chunk store of this room (web/storage/file-store.ts), opened once. */
  protected filesStore(): Promise<IdbFileStore> {
    this.fileStore ??= this.deps.vault.fileStore(this.id);
    return this.fileStore;
  }

  /** Our member id in this room. */
  protected abstract selfId(): string;

  /** What the room driver is given for files (PROTOCOL.md 5.17): WebCrypto AES-GCM and the sealed IndexedDB chunks. */
  protected filesOptions(): RoomFilesOptions {
    return { store: lazyFileStore(() => this.filesStore()), aead: webCryptoAead };
  }

  /** The driver's file API. */
  protected abstract filesApi(): RoomFiles | null;

  /** Once the driver has started (its known files restored): the views of those files. */
  protected filesStarted(nameOf: (id: string) => string): void {
    const api = this.filesApi();
    if (api !== null) this.files.restore(api.list(), nameOf);
  }

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
    if (this.files.onEvent(e)) return;
    // A link-level refusal ('refused') shows as the room's state (view-model.ts), not as a line.
    if (e.kind === 'room') this.onRoomEvent(e.event);
    // Owner: another device may hold a member's keys (PROTOCOL.md 5.14): said in the room.
    if (e.kind === 'second-session') this.note(S.systemSecondSession(this.nameOf(e.member)));
    this.deps.changed();
  }

  protected onRoomEvent(ev: RoomEvent): void {
    switch (ev.type) {
      case 'message':
        if (ev.file !== undefined) this.files.ordered(ev.file.file, ev.idx);
        return this.addMessage(ev);
      case 'member-joined':
        return this.note(S.systemJoined(ev.member.name));
      case 'member-left':
        return this.note(ev.reason === 'left' ? S.systemLeft(ev.member.name) : S.systemRemoved(ev.member.name));
      case 'rotated':
        // The first epoch comes with the room (create) or the join: no line for it.
        if (ev.reason !== 'create') this.note(S.systemNewKey);
        return;
      case 'joined':
        return this.note(S.systemYouJoined);
      case 'join-refused':
        return; // the room's state ('refused', worded by code in web/strings.ts) says it
      case 'removed':
        return this.note(ev.reason === 'left' ? S.systemYouLeft : S.systemYouRemoved);
      case 'left':
        return this.note(S.systemYouLeft);
      case 'send-refused':
        console.warn(`room ${this.id.slice(0, 8)}: the owner refused message #${String(ev.seq)}: ${ev.code}`);
        return this.note(S.systemSendRefused);
      case 'history-skipped':
        return this.note(S.systemHistorySkipped(ev.count));
      case 'warning':
        // What a member detected about the owner's conduct (PROTOCOL.md 5.13): drivers MUST show it.
        return this.note(S.systemWarning(ev.code, ev.member?.name ?? null));
      case 'keys-updated':
        // A member replaced its keys (PROTOCOL.md 5.8.1).
        if (ev.self && ev.member.owner) return this.note(S.systemOwnerKeysReplaced(ev.revoked ?? 0));
        return this.note(ev.self ? S.systemYourKeysReplaced : S.systemKeysReplaced(ev.member.name));
      default:
        return; // invites are listed from the owner's state; newer event types have no view yet
    }
  }

  /** The driver saved this message's history record already; here it joins the view once. */
  private addMessage(ev: Extract<RoomEvent, { type: 'message' }>): void {
    if (this.history.some((h) => h.idx === ev.idx)) return;
    const rec = messageRecord(ev);
    const at = this.history.findIndex((h) => h.idx > ev.idx);
    if (at === -1) this.history.push(rec);
    else this.history.splice(at, 0, rec);
  }

  /** A member's display name in this room, null when unknown (subclasses know their member lists). */
  protected nameOf(_member: string | null): string | null {
    return null;
  }

  protected note(text: string): void {
    this.notes.push({
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

  /** `delivery`: where an outbox entry is (members: queued or at the owner). */
  protected messageViews(
    selfId: string,
    selfName: string,
    pending: readonly OutboxRecord[],
    delivery: (seq: number) => Delivery = () => 'queued',
    /** Others' messages said while the owner is away (5.16), not in the room order yet. */
    provisional: readonly MessageView[] = [],
  ): MessageView[] {
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
    const waiting: MessageView[] = pending.map((o) => ({
      key: `${selfId}/${o.seq}`,
      senderId: selfId,
      senderName: selfName,
      text: o.text,
      at: o.at,
      pending: true,
      system: false,
      own: true,
      delivery: delivery(o.seq),
      idx: null,
    }));
    // File offers (5.17) show as file cards: at their room index once ordered, else with our pending lines.
    const files = this.files.messages(selfName);
    const fileIdx = new Set(files.flatMap((f) => (f.idx === null ? [] : [f.idx])));
    // An offer's history line has no text; one whose file this device no longer knows shows nothing.
    const ordered = [
      ...delivered.filter((m) => m.text !== '' && (m.idx === null || !fileIdx.has(m.idx))),
      ...files.filter((f) => f.idx !== null),
    ].sort((a, b) => (a.idx ?? 0) - (b.idx ?? 0));
    return orderMessages(ordered, [...provisional, ...waiting, ...files.filter((f) => f.idx === null)], this.notes);
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
