/**
 * What the views see of a room: plain, already-decrypted view models produced by the session
 * (web/session/session.ts), which wires the room machine, peer links and storage together.
 * Every string here may come from a peer; views put them in the DOM only via textContent.
 */
import type { Delivery, RoomState } from '../strings.ts';

/** 'restarting': ICE went down and an ICE restart is under way (protocol/link/peer-link.ts); not offline. */
/** 'fallback': no ICE pair works; messages go end-to-end encrypted through the signaling server (PROTOCOL.md 4.8). */
export type ConnectionState = 'connecting' | 'direct' | 'relayed' | 'fallback' | 'restarting' | 'offline' | 'closed' | 'out-of-step';

/** Peer connections made and ICE restarts completed on the current link (protocol/link LinkCounts). */
export interface LinkCountsView {
  readonly peerConnections: number;
  readonly iceRestarts: number;
}

export interface MemberView {
  readonly id: string;
  readonly name: string;
  /** Hex fingerprint of the member's identity key, grouped for reading aloud. */
  readonly fingerprint: string;
  readonly isOwner: boolean;
  readonly isSelf: boolean;
  /** Link to this member from our side; 'self' for our own entry; 'via-owner' for other members (star). */
  readonly connection: ConnectionState | 'self' | 'via-owner';
  /** For a direct link: how the current link object was kept up (null without one). */
  readonly linkCounts: LinkCountsView | null;
}

export interface MessageView {
  /** Stable across reloads: sender id + sender sequence number. */
  readonly key: string;
  readonly senderId: string;
  readonly senderName: string;
  readonly text: string;
  readonly at: number;
  /** Ours and not yet acknowledged by the owner (still in the outbox). */
  readonly pending: boolean;
  /** Not a chat line: joins, leaves, rotations. */
  readonly system: boolean;
  /** Sent by us. */
  readonly own: boolean;
  /** For our own messages: queued (not yet at the owner), at the owner, delivered to the room; else null. */
  readonly delivery: Delivery | null;
  /** Room index of a delivered message (unread counts); null for pending and system lines. */
  readonly idx: number | null;
  /** A file offer (PROTOCOL.md 5.17): shown as a file card instead of a text. */
  readonly file?: FileView;
}

/** Where a file is for this device (web/session/files.ts). */
export type FileState =
  'preparing' | 'offered' | 'waiting' | 'sending' | 'receiving' | 'done' | 'sent' | 'declined' | 'cancelled' | 'failed' | 'too-large';

export interface FileView {
  /** File id, lowercase hex. */
  readonly id: string;
  /** The sender's label reduced by safeFileName: the only name ever shown or used for a download. */
  readonly name: string;
  readonly size: number;
  readonly own: boolean;
  readonly state: FileState;
  /** Bytes moved so far (stored, or granted and sent). */
  readonly done: number;
  /** Bytes per second over the last seconds; null before two samples. */
  readonly rate: number | null;
  /** Seconds left at that rate; null when unknown. */
  readonly secondsLeft: number | null;
  /** Why it ended (a file error code) for failed/cancelled. */
  readonly code: string | null;
  /** A thumbnail made on this device (blob: URL of a PNG we drew), only for a sniffed PNG/JPEG/GIF/WebP. */
  readonly thumb: string | null;
  /** Complete here, sniffed, and not a picture we show: offered as a download. */
  readonly download: boolean;
}

export interface InviteView {
  readonly id: string;
  readonly url: string;
  readonly expiresAt: number;
}

export interface RoomView {
  readonly id: string;
  readonly name: string;
  readonly role: 'owner' | 'member';
  readonly selfId: string;
  readonly epoch: number;
  readonly safetyCode: string;
  readonly members: readonly MemberView[];
  readonly messages: readonly MessageView[];
  readonly invites: readonly InviteView[];
  /** We were removed from the room (kicked); nothing new arrives. */
  readonly removed: boolean;
  /** Human-readable state of our side (members: link to the owner; owner: signaling). */
  readonly status: string;
  /** What a person is told about the room (web/session/view-model.ts). */
  readonly state: RoomState;
  /** The code behind a 'refused' state (worded by web/strings.ts); null otherwise. */
  readonly stateCode: string | null;
  /** Sending works now or later (from the outbox): false when refused, removed, left or joining. */
  readonly canSend: boolean;
}

export interface RotationPolicy {
  /** Rotate after this many messages in one epoch (0 = never by count). */
  readonly everyMessages: number;
  /** Rotate after this many minutes (0 = never by time). */
  readonly everyMinutes: number;
}

export interface IceServerSetting {
  readonly urls: readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

export interface Settings {
  readonly displayName: string;
  readonly signalingUrl: string;
  /** Hex of the signaling server's permanent public key (pinned); empty = not pinned. */
  readonly serverKey: string;
  readonly iceServers: readonly IceServerSetting[];
  /** false: use the server's /config.json ICE servers (fresh TURN credentials on every start). */
  readonly customIce: boolean;
  /** Relay-only ICE (iceTransportPolicy 'relay'). */
  readonly relayOnly: boolean;
  readonly rotation: RotationPolicy;
  /** Largest file sent or received, in MiB (PROTOCOL.md 5.17.6 `file.too-large`; default 100). */
  readonly fileLimitMiB: number;
}

/** The server's /config.json (defaults for Settings). */
export interface ServerConfig {
  readonly iceServers: readonly IceServerSetting[];
  readonly appUrl: string;
  readonly signalingUrl: string;
  readonly serverKey: string;
}
