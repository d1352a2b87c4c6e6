/**
 * The adapter between the views and everything below them: it owns the vault (encrypted storage),
 * the settings and one RoomRuntime per room (room machine + peer links + sealed records), and
 * publishes RoomViews to the store.
 */
import { asBoxPublicKey, fromHex, generateBoxKeyPair, generateIdentity, toHex } from '../../crypto/index.ts';
import {
  checkIce,
  checkSignaling,
  type IceCheck,
  type LinkPathInfo,
  type PeerConnectionCtor,
  type SignalingCheck,
} from '../../protocol/link/diagnostics.ts';
import { browserWebSocket } from './browser-websocket.ts';
import { discardPrewarmed, takePrewarmed } from './prewarm.ts';
import { saltyAuthToken } from '../../protocol/room/ids.ts';
import { checkInviteFresh, decodeInviteUrl } from '../../protocol/room/invite.ts';
import { DEFAULT_CONFIG, type MemberId, type MemberState, type OwnerState } from '../../protocol/room/types.ts';
import type { Vault } from '../storage/vault.ts';
import { createRoom as createOwnerState, rotationCount, startJoin } from './machines.ts';
import { MemberRuntime } from './member-runtime.ts';
import { OwnerRuntime } from './owner-runtime.ts';
import { decodeHistory, decodeOutbox, decodeSettings, encodeSettings, type HistoryRecord } from './records.ts';
import { decodeIdentity, decodeRoomRecord, encodeIdentity, encodeRoomRecord, type RoomIdentity, type RoomRecord } from './room-record.ts';
import type { RuntimeDeps } from './runtime.ts';
import type { InviteView, RoomView, ServerConfig, Settings } from './types.ts';

/** What Settings' diagnostics show (web/views/diagnostics.ts). */
export interface DiagnosticsReport {
  readonly signalingUrl: string;
  readonly signaling: SignalingCheck;
  readonly ice: IceCheck;
  readonly links: ReadonlyArray<{ readonly room: string; readonly name: string; readonly path: LinkPathInfo | null }>;
}

export type RoomsListener = (rooms: ReadonlyMap<string, RoomView>) => void;
type Runtime = OwnerRuntime | MemberRuntime;

export function defaultSettings(config: ServerConfig | null): Settings {
  return {
    displayName: '',
    signalingUrl: config?.signalingUrl ?? '',
    serverKey: config?.serverKey ?? '',
    iceServers: config?.iceServers ?? [],
    customIce: false,
    relayOnly: false,
    rotation: { everyMessages: DEFAULT_CONFIG.rotateEveryMessages, everyMinutes: DEFAULT_CONFIG.rotateAfterMs / 60_000 },
  };
}

/** The owner's log from its history records (newest maxLogEntries entries, section 5.9). */
function restoreLog(record: RoomRecord & { state: OwnerState }, history: readonly HistoryRecord[]): RoomRecord & { state: OwnerState } {
  const log = history
    .filter((h) => h.env !== undefined && h.epoch !== undefined)
    .map((h) => ({ idx: h.idx, from: h.senderId as MemberId, epoch: h.epoch as number, env: h.env as Uint8Array }))
    .slice(-record.state.config.maxLogEntries);
  return { ...record, state: { ...record.state, log } };
}

export class Session {
  private readonly rooms = new Map<string, Runtime>();
  private listener: RoomsListener = () => undefined;
  private publishQueued = false;
  private readonly deps: RuntimeDeps;

  private constructor(
    readonly vault: Vault,
    public settings: Settings,
    readonly config: ServerConfig | null,
    report: (text: string) => void,
  ) {
    this.deps = {
      vault,
      iceServers: () => this.iceServers(),
      iceTransportPolicy: () => (this.settings.relayOnly ? 'relay' : undefined),
      appUrl: config?.appUrl ?? location.origin,
      changed: () => this.schedulePublish(),
      report,
    };
  }

  static async open(vault: Vault, config: ServerConfig | null, report: (text: string) => void): Promise<Session> {
    const stored = await vault.get('settings', 'settings');
    const session = new Session(vault, stored === undefined ? defaultSettings(config) : decodeSettings(stored), config, report);
    // Fail closed per record: a record that does not open is left out (never shown), and the user is told.
    const refused: string[] = [];
    const onRefused = (store: string) => (key: string) => refused.push(`${store}/${key}`);
    for (const { key, value } of await vault.list('rooms', '', onRefused('rooms'))) {
      try {
        const record = decodeRoomRecord(value);
        if (record.id !== key) throw new TypeError(`room record ${key} carries id ${record.id}`);
        const identityBytes = await vault.get('identities', key);
        if (identityBytes === undefined) throw new TypeError(`room ${key} has no identity record`);
        const keys = decodeIdentity(identityBytes);
        const history = (await vault.list('history', `${key}/`, onRefused('history'))).map((r) => decodeHistory(r.value));
        const outbox = (await vault.list('outbox', `${key}/`, onRefused('outbox'))).map((r) => decodeOutbox(r.value));
        const runtime =
          record.role === 'owner'
            ? new OwnerRuntime(session.deps, restoreLog(record as RoomRecord & { state: OwnerState }, history), keys, history)
            : new MemberRuntime(session.deps, record as RoomRecord & { state: MemberState }, keys, history, outbox);
        if (runtime instanceof OwnerRuntime)
          runtime.setRotation(session.settings.rotation.everyMessages, session.settings.rotation.everyMinutes);
        session.rooms.set(key, runtime);
      } catch (e) {
        console.error(`room ${key} could not be restored`, e);
        refused.push(`rooms/${key}`);
      }
    }
    if (refused.length > 0) {
      report(`${refused.length} stored record(s) failed their integrity check and were not loaded (${refused.slice(0, 3).join(', ')})`);
    }
    for (const runtime of session.rooms.values()) runtime.start();
    return session;
  }

  /** ICE servers: the server's current list (fresh TURN credentials) unless the user set their own. */
  private iceServers(): RTCIceServer[] {
    const list = this.settings.customIce || this.config === null ? this.settings.iceServers : this.config.iceServers;
    return list.map((s) => ({
      urls: [...s.urls],
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.credential !== undefined ? { credential: s.credential } : {}),
    }));
  }

  onChange(fn: RoomsListener): void {
    this.listener = fn;
    this.publish();
  }

  /** Coalesces bursts of changes (a history replay) into one render. */
  private schedulePublish(): void {
    if (this.publishQueued) return;
    this.publishQueued = true;
    queueMicrotask(() => {
      this.publishQueued = false;
      this.publish();
    });
  }

  private publish(): void {
    const views = new Map<string, RoomView>();
    for (const [id, room] of this.rooms) views.set(id, room.view());
    this.listener(views);
  }

  async saveSettings(settings: Settings): Promise<void> {
    await this.vault.put('settings', 'settings', encodeSettings(settings));
    this.settings = settings;
    for (const room of this.rooms.values())
      if (room instanceof OwnerRuntime) room.setRotation(settings.rotation.everyMessages, settings.rotation.everyMinutes);
  }

  private signaling(): { server: string; serverKey: string } {
    const server = this.settings.signalingUrl || this.config?.signalingUrl || '';
    if (server === '') throw new Error('no signaling server configured (Settings)');
    return { server, serverKey: this.settings.serverKey };
  }

  async createRoom(name: string): Promise<string> {
    const keys: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    const { server, serverKey } = this.signaling();
    const now = Date.now();
    const config = {
      ...DEFAULT_CONFIG,
      rotateEveryMessages: rotationCount(this.settings.rotation.everyMessages),
      rotateAfterMs: this.settings.rotation.everyMinutes * 60_000,
    };
    const step = createOwnerState(
      {
        random: (n: number) => crypto.getRandomValues(new Uint8Array(n)),
        identity: keys.identity,
        peerKey: keys.peer.publicKey,
        invites: { appUrl: this.deps.appUrl, server },
      },
      { name, ownerName: this.settings.displayName, now, config },
    );
    if (step.error !== undefined) throw step.error;
    const id = toHex(step.state.room);
    const record: RoomRecord & { state: OwnerState } = { id, role: 'owner', server, serverKey, createdAt: now, state: step.state };
    await this.vault.put('identities', id, encodeIdentity(keys));
    await this.vault.put('rooms', id, encodeRoomRecord(record));
    const runtime = new OwnerRuntime(this.deps, record, keys, []);
    this.rooms.set(id, runtime);
    runtime.start();
    this.schedulePublish();
    return id;
  }

  async join(inviteUrl: string): Promise<string> {
    const invite = decodeInviteUrl(inviteUrl);
    checkInviteFresh(invite, Date.now());
    const id = toHex(invite.room);
    const existing = this.rooms.get(id);
    if (existing !== undefined && !(existing instanceof MemberRuntime && existing.view().removed)) {
      discardPrewarmed(); // already a member here: the prepared first-contact link is not needed
      return id;
    }
    if (existing !== undefined) await this.forget(id);
    // The link may be under way already (prewarm.ts), made with the server's ICE settings.
    let prewarmed = takePrewarmed(inviteUrl);
    if (prewarmed !== null && (this.settings.customIce || this.settings.relayOnly)) {
      discardPrewarmed();
      void prewarmed.link.then(
        (l) => l.close(),
        () => undefined,
      );
      prewarmed = null;
    }
    const keys: RoomIdentity = { identity: generateIdentity(), peer: prewarmed?.peer ?? generateBoxKeyPair() };
    const step = startJoin(
      { random: (n: number) => crypto.getRandomValues(new Uint8Array(n)), identity: keys.identity, peerKey: keys.peer.publicKey },
      invite,
      { name: this.settings.displayName, now: Date.now() },
    );
    if (step.error !== undefined) throw step.error;
    const record: RoomRecord & { state: MemberState } = {
      id,
      role: 'member',
      server: invite.server,
      serverKey: invite.spub !== undefined ? toHex(invite.spub) : '',
      createdAt: Date.now(),
      state: step.state,
    };
    await this.vault.put('identities', id, encodeIdentity(keys));
    await this.vault.put('rooms', id, encodeRoomRecord(record));
    const runtime = new MemberRuntime(this.deps, record, keys, [], [], saltyAuthToken(invite.token), prewarmed?.link);
    // startJoin's join-request is sent by the 'connected' step once the link is open (5.4, 5.10).
    this.rooms.set(id, runtime);
    runtime.start();
    this.schedulePublish();
    return id;
  }

  /**
   * Connection diagnostics: the signaling server (reachable, pinned or announced key held), STUN
   * (a reflexive address), TURN over UDP and TCP, and the path and RTT of every live link.
   */
  async diagnose(): Promise<DiagnosticsReport> {
    const { server, serverKey } = this.signaling();
    const key = serverKey !== '' ? serverKey : (this.config?.serverKey ?? '');
    const [signaling, ice, links] = await Promise.all([
      checkSignaling({
        url: server,
        WebSocket: browserWebSocket(),
        ...(/^[0-9a-f]{64}$/.test(key) ? { serverKey: asBoxPublicKey(fromHex(key, 32)) } : {}),
      }),
      checkIce({ iceServers: this.iceServers(), RTCPeerConnection: RTCPeerConnection as unknown as PeerConnectionCtor }),
      Promise.all(
        [...this.rooms.values()].flatMap((room) =>
          room.diagnosticLinks().map(async ({ name, link }) => ({ room: room.view().name, name, path: (await link?.pathInfo()) ?? null })),
        ),
      ),
    ]);
    return { signalingUrl: server, signaling, ice, links };
  }

  send(roomId: string, text: string): Promise<void> {
    return this.room(roomId).send(text);
  }

  async createInvite(roomId: string, ttlMinutes: number): Promise<InviteView | undefined> {
    const room = this.owned(roomId);
    await room.createInvite(ttlMinutes);
    return room.view().invites.at(-1);
  }

  revokeInvite(roomId: string, inviteId: string): Promise<void> {
    return this.owned(roomId).revokeInvite(inviteId);
  }

  kick(roomId: string, memberId: string): Promise<void> {
    return this.owned(roomId).kick(memberId);
  }

  rotateNow(roomId: string): Promise<void> {
    return this.owned(roomId).rotateNow();
  }

  async forget(roomId: string): Promise<void> {
    const room = this.room(roomId);
    room.stop();
    await this.vault.delete('rooms', roomId);
    await this.vault.delete('identities', roomId);
    await this.vault.deletePrefix('history', `${roomId}/`);
    await this.vault.deletePrefix('outbox', `${roomId}/`);
    await this.vault.deletePrefix('keys', `${roomId}/`);
    this.rooms.delete(roomId);
    this.schedulePublish();
  }

  close(): void {
    for (const room of this.rooms.values()) room.stop();
    this.listener = () => undefined;
  }

  private room(roomId: string): Runtime {
    const room = this.rooms.get(roomId);
    if (room === undefined) throw new Error(`no room ${roomId}`);
    return room;
  }

  private owned(roomId: string): OwnerRuntime {
    const room = this.room(roomId);
    if (!(room instanceof OwnerRuntime)) throw new Error('only the owner can do that');
    return room;
  }
}
