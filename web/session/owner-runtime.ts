/**
 * A room this device owns: the owner's room driver (protocol/room/owner-driver.ts) over the
 * browser's links (`startOwner`), and the owner's view: members with link badges, open invites.
 */
import { fromHex } from '../../crypto/index.ts';
import { startOwner } from '../../protocol/link/owner.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';
import { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import { inviteUrl } from '../../protocol/room/invite.ts';
import { roomIdOf, type HistoryRecord, type RoomIdentity, type RoomRecord } from '../../protocol/room/records.ts';
import type { InviteId, MemberId, OwnerState } from '../../protocol/room/types.ts';
import { rotationCount } from './machines.ts';
import type { RoomFiles } from '../../protocol/room/file-driver.ts';
import { linkBadge, RoomRuntime, type RuntimeDeps } from './runtime.ts';
import type { InviteView, RoomView } from './types.ts';
import { ownerRoomState } from './view-model.ts';
import { vaultStore, type Refused } from './vault-store.ts';

export class OwnerRuntime extends RoomRuntime {
  readonly driver: OwnerDriver;
  private readonly serverKey: Uint8Array | undefined;

  constructor(
    deps: RuntimeDeps,
    record: RoomRecord & { readonly state: OwnerState },
    keys: RoomIdentity,
    history: HistoryRecord[],
    refused: Refused,
    /** An owner key update's new keys, stored before its step (PROTOCOL.md 5.8.1 step 5). */
    pending: RoomIdentity | null = null,
  ) {
    const { state, ...meta } = record;
    // Invites point at this app wherever it is served now (the stored appUrl is the CLI's).
    super(deps, { ...meta, appUrl: deps.appUrl }, roomIdOf(state), keys, history);
    this.serverKey = record.serverKey !== '' ? fromHex(record.serverKey, 32) : undefined;
    this.driver = new OwnerDriver(state, vaultStore<OwnerState>(deps.vault, this.id, this.record, refused), this.env(), {
      identity: keys,
      pending,
      invites: { appUrl: deps.appUrl, server: record.server, ...(this.serverKey !== undefined ? { serverKey: this.serverKey } : {}) },
      link: (hooks, keys) => startOwner({ ...this.endpoint(), ...keys, ...hooks }),
      files: this.filesOptions(),
    });
  }

  protected filesApi(): RoomFiles | null {
    return this.driver.files;
  }

  protected selfId(): string {
    return this.driver.state.selfId;
  }

  async start(): Promise<void> {
    await this.driver.start();
    this.filesStarted((id) => this.nameOf(id) ?? '');
  }

  protected override nameOf(member: string | null): string | null {
    return this.driver.state.members.find((m) => m.info.id === member)?.info.name ?? null;
  }

  /** Diagnostics: each member's link (protocol/link/diagnostics.ts reads its path and RTT). */
  diagnosticLinks(): Array<{ name: string; link: PeerLink | undefined }> {
    const s = this.driver.state;
    return s.members.filter((m) => m.info.id !== s.selfId).map((m) => ({ name: m.info.name, link: this.driver.linkOf(m.peer) }));
  }

  stop(): Promise<void> {
    return this.driver.stop();
  }

  send(text: string): Promise<void> {
    return this.driver.send(text);
  }

  createInvite(ttlMinutes: number): Promise<void> {
    return this.driver.invite(ttlMinutes * 60_000);
  }

  revokeInvite(inviteId: string): Promise<void> {
    return this.driver.revoke(inviteId as InviteId);
  }

  kick(memberId: string): Promise<void> {
    return this.driver.kick(memberId as MemberId);
  }

  rotateNow(): Promise<void> {
    return this.driver.rotate();
  }

  /**
   * Replace the owner's keys (PROTOCOL.md 5.8.1 step 5): new keys stored first; the owner signs the
   * change with its old key, rotates, revokes its open invites and moves to its new path.
   */
  updateKeys(): Promise<void> {
    return this.driver.updateKeys();
  }

  /** Settings' rotation policy applies to rooms this device owns (RoomConfig, section 5.2). */
  setRotation(everyMessages: number, everyMinutes: number): Promise<void> {
    return this.driver.configure({ rotateEveryMessages: rotationCount(everyMessages), rotateAfterMs: everyMinutes * 60_000 });
  }

  /**
   * Invites that can still admit someone (pending, not expired), rebuilt from the machine state so
   * they survive a reload; the URL is the one the machine issued (same fields, section 5.3).
   */
  private openInvites(now: number): InviteView[] {
    const s = this.driver.state;
    return s.invites
      .filter((i) => i.status === 'pending' && i.token !== undefined && now <= i.expiresAt)
      .map((i) => ({
        id: i.id,
        expiresAt: i.expiresAt,
        url: inviteUrl(this.deps.appUrl, {
          room: s.room,
          token: i.token!,
          // The keys the room runs on now (an owner key update changes them, 5.8.1 step 5).
          opub: this.driver.identity.identity.publicKey,
          npub: this.driver.identity.peer.publicKey,
          server: this.record.server,
          exp: i.expiresAt,
          ...(this.serverKey !== undefined ? { spub: this.serverKey } : {}),
          ...(s.name !== null ? { name: s.name } : {}),
        }),
      }));
  }

  view(): RoomView {
    const s = this.driver.state;
    const self = s.members.find((m) => m.info.id === s.selfId);
    return {
      id: this.id,
      name: s.name ?? 'Room',
      role: 'owner',
      selfId: s.selfId,
      epoch: s.epoch,
      safetyCode: this.driver.safetyCode(),
      members: s.members.map((m) => {
        if (m.info.id === s.selfId) return this.memberView(m.info, s.selfId, 'self');
        const link = this.driver.linkOf(m.peer);
        return this.memberView(m.info, s.selfId, linkBadge(link?.state), link?.counts ?? null);
      }),
      messages: this.messageViews(s.selfId, self?.info.name ?? '', []),
      invites: this.openInvites(Date.now()),
      removed: false,
      status: this.driver.signalingReady ? 'open for members' : 'connecting to the signaling server',
      state: ownerRoomState(this.driver.signalingReady),
      stateCode: null,
      canSend: true,
    };
  }
}
