/**
 * A room this device joined: the member's room driver (protocol/room/member-driver.ts: connector,
 * outbox, re-seal) over the browser's link to the owner (`joinRoom`), and the member's view.
 */
import { joinRoom } from '../../protocol/link/member.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';
import { MemberDriver } from '../../protocol/room/member-driver.ts';
import { meshLinkPort } from '../../protocol/room/mesh-port.ts';
import type { AwayPeer } from '../../protocol/room/away.ts';
import { roomIdOf, type HistoryRecord, type RoomIdentity, type RoomRecord } from '../../protocol/room/records.ts';
import type { MemberState, RoomEvent } from '../../protocol/room/types.ts';
import type { RoomFiles } from '../../protocol/room/file-driver.ts';
import { RoomRuntime, type RuntimeDeps } from './runtime.ts';
import type { ConnectionState, MessageView, RoomView } from './types.ts';
import { canSend, memberRoomState } from './view-model.ts';
import { vaultStore, type Refused } from './vault-store.ts';

export class MemberRuntime extends RoomRuntime {
  readonly driver: MemberDriver;
  /** Whether the owner was on the signaling path at the last server handshake (null: unknown). */
  private ownerOnPath: boolean | null = null;
  /** The room machine's join-refused code (the owner refused us at the room level). */
  private joinRefusal: string | null = null;

  constructor(
    deps: RuntimeDeps,
    record: RoomRecord & { readonly state: MemberState },
    keys: RoomIdentity,
    history: HistoryRecord[],
    refused: Refused,
    /** A link already being made for this join (web/session/prewarm.ts), used by the first connect. */
    private firstLink?: Promise<PeerLink>,
    /** A key update's new keys not yet switched to (PROTOCOL.md 5.8.1). */
    pending: RoomIdentity | null = null,
  ) {
    const { state, ...meta } = record;
    super(deps, meta, roomIdOf(state), keys, history);
    this.driver = new MemberDriver(state, vaultStore<MemberState>(deps.vault, this.id, meta, refused), this.env(), {
      identity: keys,
      pending,
      files: this.filesOptions(),
      link: (opts) => {
        const prepared = this.firstLink;
        this.firstLink = undefined;
        return (
          prepared ??
          joinRoom({
            ...this.endpoint(),
            ...opts,
            // Tells "the owner is offline" from "the signaling server is unreachable" while the link waits.
            onServerReady: (present) => {
              this.ownerOnPath = present;
              this.deps.changed();
            },
          })
        );
      },
      // Owner away (5.16): members talk directly through the same signaling server.
      mesh: {
        host: (hooks, keys) => meshLinkPort(this.endpoint()).host(hooks, keys),
        dial: (peer, keys) => meshLinkPort(this.endpoint()).dial(peer, keys),
      },
    });
  }

  /** Our connection to another member while the owner is away (5.16); through the owner otherwise. */
  private peerConnection(id: string): ConnectionState | 'via-owner' {
    const away = this.driver.away;
    if (away === null || !away.active) return 'via-owner';
    const p: AwayPeer | undefined = away.peers.find((x) => x.member === id);
    if (p === undefined) return 'offline';
    return p.status === 'ready' ? 'direct' : p.status === 'hello' ? 'connecting' : 'out-of-step';
  }

  /** Others' messages said while the owner is away, until their ordered copy arrives. */
  private provisionalViews(selfId: string): MessageView[] {
    return (this.driver.away?.held ?? [])
      .filter((e) => e.from !== selfId)
      .map((e) => ({
        key: `${e.from}/${e.seq}`,
        senderId: e.from,
        senderName: e.name,
        text: e.text,
        at: e.ts,
        pending: true,
        system: false,
        own: false,
        delivery: null,
        idx: null,
      }));
  }

  protected override onRoomEvent(ev: RoomEvent): void {
    if (ev.type === 'join-refused') this.joinRefusal = ev.code;
    super.onRoomEvent(ev);
  }

  /**
   * Replace this member's keys (PROTOCOL.md 5.8.1): new keys stored first, switched to when the
   * owner commits the update; the link then reconnects with the new peer key.
   */
  updateKeys(): Promise<void> {
    return this.driver.updateKeys();
  }

  /** Leave the room (5.8): tell the owner (when the link is up); the driver stops reconnecting. */
  leave(): Promise<void> {
    return this.driver.leave();
  }

  /** Diagnostics: the link to the owner. */
  diagnosticLinks(): Array<{ name: string; link: PeerLink | undefined }> {
    const s = this.driver.state;
    const owner = s.members.find((m) => m.info.owner);
    return [{ name: owner?.info.name ?? 'owner', link: this.driver.currentLink ?? undefined }];
  }

  protected filesApi(): RoomFiles | null {
    return this.driver.files;
  }

  protected selfId(): string {
    return this.driver.state.selfId;
  }

  async start(): Promise<void> {
    await this.driver.start();
    this.filesStarted((id) => this.driver.state.members.find((m) => m.info.id === id)?.info.name ?? '');
  }

  stop(): Promise<void> {
    return this.driver.stop();
  }

  send(text: string): Promise<void> {
    return this.driver.send(text);
  }

  view(): RoomView {
    const d = this.driver;
    const s = d.state;
    const self = s.members.find((m) => m.info.id === s.selfId);
    const members = s.members.map((m) =>
      m.info.id === s.selfId
        ? this.memberView(m.info, s.selfId, 'self')
        : m.info.owner
          ? this.memberView(m.info, s.selfId, d.linkState, d.linkCounts)
          : this.memberView(m.info, s.selfId, this.peerConnection(m.info.id)),
    );
    const refusal = this.joinRefusal ?? d.refusal;
    const state = memberRoomState({
      phase: s.phase,
      link: d.linkState,
      refusal,
      lastFailure: d.lastFailure,
      ownerOnPath: this.ownerOnPath,
      // "Talking directly" only with someone to talk to; alone it is the owner-offline state.
      away: d.away?.active === true && d.away.peers.some((p) => p.status === 'ready'),
    });
    return {
      id: this.id,
      name: s.roomName ?? 'Room',
      role: 'member',
      selfId: s.selfId,
      epoch: Math.max(0, s.epoch),
      safetyCode: d.safetyCode() ?? '',
      members,
      messages: this.messageViews(
        s.selfId,
        self?.info.name ?? s.name,
        d.outbox,
        (seq) => d.deliveryOf(seq),
        this.provisionalViews(s.selfId),
      ),
      invites: [],
      removed: s.phase === 'removed',
      status: s.phase === 'member' ? `owner ${d.linkState}` : s.phase,
      state,
      stateCode: state === 'refused' ? refusal : null,
      canSend: canSend(state),
    };
  }
}
