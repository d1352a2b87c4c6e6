/**
 * The adapter between the views and everything below them: it owns the vault (encrypted storage),
 * the settings and one RoomRuntime per room (room machine + peer links + sealed records), and
 * publishes RoomViews to the store.
 */
import { asBoxPublicKey, fromHex, generateBoxKeyPair, generateIdentity, systemRandom, toHex } from '../../crypto/index.ts';
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
import { checkInviteFresh, decodeInviteUrl } from '../../protocol/room/invite.ts';
import { RollbackError, type RoomIdentity, type RoomRecord } from '../../protocol/room/records.ts';
import { DEFAULT_CONFIG, type MemberState, type OwnerState } from '../../protocol/room/types.ts';
import type { Vault } from '../storage/vault.ts';
import { S, UiError } from '../strings.ts';
import { createRoom as createOwnerState, rotationCount, startJoin } from './machines.ts';
import { MemberRuntime } from './member-runtime.ts';
import { OwnerRuntime } from './owner-runtime.ts';
import { decodeSettings, DEFAULT_FILE_LIMIT_MIB, encodeSettings } from './records.ts';
import type { RuntimeDeps } from './runtime.ts';
import type { InviteView, RoomView, ServerConfig, Settings } from './types.ts';
import { loadRoom, saveNewRoom, type Refused } from './vault-store.ts';

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
    fileLimitMiB: DEFAULT_FILE_LIMIT_MIB,
  };
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
      fileLimit: () => this.settings.fileLimitMiB * 1024 * 1024,
    };
  }

  static async open(vault: Vault, config: ServerConfig | null, report: (text: string) => void): Promise<Session> {
    const stored = await vault.get('settings', 'settings');
    const session = new Session(vault, stored === undefined ? defaultSettings(config) : decodeSettings(stored), config, report);
    // Fail closed per record: a record that does not open is left out (never shown), and the user is told.
    const refused: string[] = [];
    const rolledBack: string[] = [];
    const onRefused =
      (store: string): Refused =>
      (key) =>
        refused.push(`${store}/${key}`);
    for (const { key } of await vault.list('rooms', '', onRefused('rooms'))) {
      try {
        const { record, keys, history, pending } = await loadRoom(vault, key, onRefused);
        const runtime =
          record.state.role === 'owner'
            ? new OwnerRuntime(session.deps, { ...record, state: record.state }, keys, history, onRefused('outbox'), pending)
            : new MemberRuntime(session.deps, { ...record, state: record.state }, keys, history, onRefused('outbox'), undefined, pending);
        if (runtime instanceof OwnerRuntime)
          await runtime.setRotation(session.settings.rotation.everyMessages, session.settings.rotation.everyMinutes);
        await runtime.start();
        session.rooms.set(key, runtime);
      } catch (e) {
        console.error(`room ${key} could not be restored`, e);
        // An older room record written back (PROTOCOL.md 6.6): said as such; nothing is deleted.
        if (e instanceof RollbackError) rolledBack.push(key);
        else refused.push(`rooms/${key}`);
      }
    }
    if (rolledBack.length > 0) report(S.rollbackRefused(rolledBack.length));
    if (refused.length > 0) {
      console.error(`records that failed their integrity check: ${refused.slice(0, 10).join(', ')}`);
      report(S.integrityFailed(refused.length));
    }
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
      if (room instanceof OwnerRuntime) await room.setRotation(settings.rotation.everyMessages, settings.rotation.everyMinutes);
  }

  private signaling(): { server: string; serverKey: string } {
    const server = this.settings.signalingUrl || this.config?.signalingUrl || '';
    if (server === '') throw new UiError('no-server');
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
      { random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey, invites: { appUrl: this.deps.appUrl, server } },
      { name, ownerName: this.settings.displayName, now, config },
    );
    if (step.error !== undefined) throw step.error;
    const record: RoomRecord & { state: OwnerState } = {
      role: 'owner',
      server,
      serverKey,
      appUrl: this.deps.appUrl,
      createdAt: now,
      state: step.state,
    };
    await saveNewRoom(this.vault, keys, record);
    const runtime = new OwnerRuntime(this.deps, record, keys, [], this.refusedOutbox);
    this.rooms.set(runtime.id, runtime);
    await runtime.start();
    this.schedulePublish();
    return runtime.id;
  }

  async join(inviteUrl: string): Promise<string> {
    const invite = decodeInviteUrl(inviteUrl);
    checkInviteFresh(invite, Date.now());
    const id = toHex(invite.room);
    const existing = this.rooms.get(id);
    // A room we were refused, removed from or left is dead on this device: a new invite replaces it.
    const dead = existing instanceof MemberRuntime && ['refused', 'removed', 'left'].includes(existing.view().state);
    if (existing !== undefined && !dead) {
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
    const step = startJoin({ random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey }, invite, {
      name: this.settings.displayName,
      now: Date.now(),
    });
    if (step.error !== undefined) throw step.error;
    const record: RoomRecord & { state: MemberState } = {
      role: 'member',
      server: invite.server,
      serverKey: invite.spub !== undefined ? toHex(invite.spub) : '',
      appUrl: '',
      createdAt: Date.now(),
      state: step.state,
    };
    await saveNewRoom(this.vault, keys, record);
    // The driver joins with the invite's token while the state holds it, and sends the
    // join-request once the link is open (5.4, 5.10); the first link may be the prewarmed one.
    const runtime = new MemberRuntime(this.deps, record, keys, [], this.refusedOutbox, prewarmed?.link);
    this.rooms.set(id, runtime);
    await runtime.start();
    this.schedulePublish();
    return id;
  }

  /** An outbox record that does not open (tampered) while a room runs: reported, never sent. */
  private readonly refusedOutbox: Refused = (key) =>
    this.deps.report(`a stored message failed its integrity check and was not sent (outbox/${key})`);

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

  /** A member leaves the room (section 5.8); the room stays on this device until forgotten. */
  leave(roomId: string): Promise<void> {
    const room = this.room(roomId);
    if (!(room instanceof MemberRuntime)) throw new UiError('not-owner');
    return room.leave();
  }

  /** A member (5.8.1) or the owner (5.8.1 step 5) replaces its keys in this room. */
  updateKeys(roomId: string): Promise<void> {
    const room = this.room(roomId);
    if (!(room instanceof MemberRuntime) && !(room instanceof OwnerRuntime)) throw new UiError('not-owner');
    return room.updateKeys();
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

  /** Files (PROTOCOL.md 5.17, web/session/files.ts): send a picked, dropped or pasted file. */
  sendFile(roomId: string, file: File): Promise<void> {
    return this.room(roomId).files.send(file, file.name === '' ? 'file' : file.name, file.type);
  }

  async acceptFile(roomId: string, id: string): Promise<void> {
    this.room(roomId).files.accept(id);
  }

  async declineFile(roomId: string, id: string): Promise<void> {
    this.room(roomId).files.decline(id);
  }

  async cancelFile(roomId: string, id: string): Promise<void> {
    this.room(roomId).files.cancel(id);
  }

  /** A complete file as a blob: URL (application/octet-stream) and its safe name, for a download link. */
  downloadFile(roomId: string, id: string): Promise<{ url: string; name: string }> {
    return this.room(roomId).files.download(id);
  }

  async forget(roomId: string): Promise<void> {
    const room = this.room(roomId);
    // Queued steps finish (and write) first; only then are the room's records deleted.
    await room.stop();
    await this.vault.delete('rooms', roomId);
    await this.vault.delete('identities', roomId);
    await this.vault.deletePrefix('history', `${roomId}/`);
    await this.vault.deletePrefix('outbox', `${roomId}/`);
    await this.vault.deletePrefix('keys', `${roomId}/`);
    await this.vault.deleteFiles(roomId);
    room.files.dispose();
    this.rooms.delete(roomId);
    this.schedulePublish();
  }

  close(): void {
    for (const room of this.rooms.values()) void room.stop();
    this.listener = () => undefined;
  }

  private room(roomId: string): Runtime {
    const room = this.rooms.get(roomId);
    if (room === undefined) throw new UiError('no-room');
    return room;
  }

  private owned(roomId: string): OwnerRuntime {
    const room = this.room(roomId);
    if (!(room instanceof OwnerRuntime)) throw new UiError('not-owner');
    return room;
  }
}
