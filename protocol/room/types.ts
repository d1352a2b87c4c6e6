/**
 * Plain-data types of the room protocol (docs/PROTOCOL.md section 5). States hold only numbers,
 * strings, booleans, arrays, plain objects and Uint8Array, so the storage layer can persist them
 * (structured clone, or msgpack) and tests can deep-freeze them.
 */
import type { BoxPublicKey, EcPublicKey, IdentityKeyPair, RandomBytes } from '../../crypto/index.ts';
import type { Brand } from '../../crypto/brand.ts';
import type { FileOffer } from '../files/offer.ts';
import type { RoomError } from './errors.ts';
import type { ZeroRoomError } from '../errors.ts';

/** Lowercase hex of the first 16 bytes of H("zeroroom/v1/member-id" || ipub) (section 5.1). */
export type MemberId = Brand<string, 'MemberId'>;
/** Lowercase hex of a member's SaltyRTC permanent key: names its peer link. */
export type PeerKeyHex = Brand<string, 'PeerKeyHex'>;
/** Lowercase hex of H("zeroroom/v1/invite-id" || token). */
export type InviteId = Brand<string, 'InviteId'>;

export type RotationReason = 'create' | 'count' | 'timer' | 'manual' | 'kick' | 'leave' | 'join';
export type RemovalReason = 'kicked' | 'left' | 'not-member';

/**
 * Previous-epoch messages are ordered only while fewer than this many room indices have passed
 * since the rotation (section 5.6). A protocol constant, not a setting: every member applies the
 * same rule to the same indices, so all reach the same verdict.
 */
export const GRACE_MESSAGES = 20;

/**
 * Retention (section 5.15): what the machines keep, so a persisted state never outgrows the
 * state codec's limits (a state that no longer decodes would lose the room). The owner keeps the
 * keys its log still needs (plus the current and previous epoch's) and its announcement chain back
 * to the entry that opened its oldest kept epoch, at most OWNER_KEPT_CHAIN entries. Members keep
 * the epochs whose messages can still reach them, at most MEMBER_KEPT_EPOCHS.
 */
export const OWNER_KEPT_CHAIN = 10_000;
/** ... and at least this many (a quiet room's members may be away across many empty rotations). */
export const OWNER_MIN_CHAIN = 1000;
export const MEMBER_KEPT_EPOCHS = 10_000;
/** Sent envelopes a member remembers until they come back delivered (section 5.6). */
export const MAX_PENDING_SENDS = 1000;
/** Open sender-chain gaps a member asks the owner about (section 5.6). */
export const MAX_SENDER_GAPS = 64;
export const MAX_PENDING_INVITES = 1000;
/** Invite records (pending and retired); the oldest retired ones go first. */
export const MAX_INVITE_RECORDS = 2000;
export const MAX_FORMER_MEMBERS = 10_000;
/** Removed members' peer keys the owner keeps, to refuse them with an authenticated refusal (5.8). */
export const MAX_REMOVED_PEERS = 1000;

/**
 * Catch-up limit (section 5.10): within this many milliseconds after a catch-up started, the owner
 * sends a member no history entry twice; a request that goes back to entries already sent then
 * gets `resync` without history. Paging forward is never limited.
 */
export const CATCH_UP_INTERVAL_MS = 30_000;

export interface RoomConfig {
  readonly rotateEveryMessages: number;
  readonly rotateAfterMs: number;
  readonly graceMs: number;
  readonly history: 'since-rotation' | 'none';
  readonly rotateOnJoin: boolean;
  readonly inviteTtlMs: number;
  readonly maxLogEntries: number;
}

export const DEFAULT_CONFIG: RoomConfig = Object.freeze({
  rotateEveryMessages: 100,
  rotateAfterMs: 60 * 60 * 1000,
  graceMs: 30_000,
  history: 'since-rotation',
  rotateOnJoin: false,
  inviteTtlMs: 24 * 60 * 60 * 1000,
  maxLogEntries: 10_000,
});

/** One member as certified by the owner (section 5.5). */
export interface MemberInfo {
  readonly id: MemberId;
  readonly ipub: EcPublicKey;
  readonly npub: BoxPublicKey;
  readonly name: string;
  readonly owner: boolean;
  /** First epoch of this membership. */
  readonly epoch: number;
}

/** What every member (and the owner) knows about one epoch. */
export interface EpochRecord {
  readonly epoch: number;
  /** The room key; absent when only the chain entry is known (never on the owner). */
  readonly key: Uint8Array | null;
  readonly firstIdx: number;
  /**
   * For the current epoch: the chain head (section 5.7), the owner-signed entry bytes, and its hash
   * (the safety code commits to it, 5.11). Null for older epochs (dropped when they stop being current).
   */
  readonly ann: Uint8Array | null;
  readonly annHash: Uint8Array | null;
}

/** A member as a receiver tracks it: its certificate data, the last sequence number and hash seen. */
export interface KnownMember {
  readonly info: MemberInfo;
  readonly lastSeq: number;
  /**
   * H(env) of the last message of this membership seen (32 zero bytes before the first, when the
   * membership's start was seen); null when unknown (section 5.6: the next message starts the check).
   */
  readonly lastHash: Uint8Array | null;
  /** For former members: the first epoch they were no longer part of. */
  readonly untilEpoch?: number;
}

/** The chain operations of section 5.7; 'legacy' is a format-1 epoch announcement (a migrated head). */
export type ChainOp = 'create' | 'add' | 'rotate' | 'update' | 'legacy';

/** One retained entry of the owner's announcement chain (section 5.7). */
export interface ChainLink {
  readonly n: number;
  readonly epoch: number;
  readonly op: ChainOp;
  readonly hash: Uint8Array;
  readonly ann: Uint8Array;
}

export interface LogEntry {
  readonly idx: number;
  readonly from: MemberId;
  readonly epoch: number;
  readonly env: Uint8Array;
}

// ---- Owner ----

/** The current catch-up window of one member (section 5.10). */
export interface CatchUp {
  /** When the window started (the `now` of the event that sent its first page). */
  readonly at: number;
  /** The room index after the last history entry sent in this window. */
  readonly next: number;
}

export interface OwnerMember extends KnownMember {
  readonly cert: Uint8Array;
  readonly peer: PeerKeyHex;
  /** First room index of this member's view (welcome.from_idx). */
  readonly viewFrom: number;
  /** null until the first history page is sent to this member. */
  readonly catchUp: CatchUp | null;
}

export interface JoinClaim {
  readonly peer: PeerKeyHex;
  readonly info: MemberInfo;
  readonly jkey: Uint8Array;
  readonly acceptHash: Uint8Array;
}

export type InviteStatus = 'pending' | 'claimed' | 'used' | 'revoked';

export interface InviteRecord {
  readonly id: InviteId;
  /** Deleted (absent) once the invite is used, revoked or expired. */
  readonly token?: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly status: InviteStatus;
  readonly claim?: JoinClaim;
  /** The peer that used it (to answer a repeated confirm idempotently). */
  readonly usedBy?: PeerKeyHex;
  /**
   * A retired invite's SaltyRTC auth token (5.3, derived from the deleted token), kept until the
   * record is pruned so that the link layer can answer a joiner who presents it with an
   * authenticated refusal (4.1) instead of a 3005 it would retry.
   */
  readonly authToken?: Uint8Array;
}

export interface OwnerState {
  readonly role: 'owner';
  readonly config: RoomConfig;
  readonly room: Uint8Array;
  readonly name: string | null;
  readonly selfId: MemberId;
  /** The owner's own sender sequence number (last used). */
  readonly seq: number;
  readonly epoch: number;
  readonly epochStartedAt: number;
  readonly epochMessages: number;
  readonly epochs: readonly EpochRecord[];
  readonly members: readonly OwnerMember[];
  readonly invites: readonly InviteRecord[];
  readonly nextIdx: number;
  readonly log: readonly LogEntry[];
  /** The retained announcement chain, contiguous, ending at the head (section 5.7, 5.15). */
  readonly chain: readonly ChainLink[];
  /** Peer keys of removed members, newest last, at most MAX_REMOVED_PEERS (refused, 4.1, 5.8). */
  readonly removedPeers: readonly PeerKeyHex[];
}

export interface InviteSettings {
  /** Origin (and path) of the web app; the invite is its fragment. */
  readonly appUrl: string;
  /** Signaling server URL (ws: or wss:). */
  readonly server: string;
  /** The signaling server's permanent key, when pinned. */
  readonly serverKey?: Uint8Array;
}

/** Everything the owner machine needs that is not plain data. */
export interface OwnerCtx {
  readonly random: RandomBytes;
  readonly identity: IdentityKeyPair;
  /** The owner's SaltyRTC permanent public key. */
  readonly peerKey: BoxPublicKey;
  readonly invites: InviteSettings;
  /** Decision: admit this joiner? (called after the token proof checked out; default yes). */
  readonly admit?: (candidate: MemberInfo) => boolean;
}

// ---- Member ----

export type MemberPhase = 'joining' | 'accepted' | 'member' | 'refused' | 'removed' | 'left';

export interface PendingJoin {
  readonly inviteId: Uint8Array;
  readonly token: Uint8Array;
  readonly jkey: Uint8Array;
  readonly acceptHash: Uint8Array | null;
  /** The invite's 16-byte commitment to the owner's identity key (section 5.3). */
  readonly ownerCommit: Uint8Array;
  /** The invite's expiry (ms): past it, retrying a first contact is pointless (4.1). Null in states written before it was kept. */
  readonly exp: number | null;
}

/** A message this member sent that has not come back delivered (section 5.6). */
export interface SentRecord {
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly prev: Uint8Array;
}

/** A hole in a sender's chain, asked about with `want` (section 5.6). */
export interface SenderGap {
  readonly from: MemberId;
  readonly after: Uint8Array;
  readonly before: Uint8Array;
}

export interface MemberState {
  readonly role: 'member';
  readonly phase: MemberPhase;
  readonly room: Uint8Array;
  readonly roomName: string | null;
  /** Null only while joining with a v2 invite, until `owner-key` (section 5.3). */
  readonly ownerIpub: EcPublicKey | null;
  readonly ownerPeer: PeerKeyHex;
  readonly selfId: MemberId;
  readonly name: string;
  /** Present only while joining; the token and joining key are deleted after the welcome. */
  readonly join: PendingJoin | null;
  readonly seq: number;
  /** Current epoch, -1 before the accept. */
  readonly epoch: number;
  readonly epochs: readonly EpochRecord[];
  readonly members: readonly KnownMember[];
  readonly former: readonly KnownMember[];
  /** Last room index processed; the room view starts at viewFrom. */
  readonly lastIdx: number;
  readonly viewFrom: number;
  /** lastIdx at which a sync was sent and not yet answered (no repeated requests for one gap). */
  readonly syncAt: number | null;
  /** Position n of the chain head (section 5.7); -1 before the accept. */
  readonly chain: number;
  /** The highest chain position a message named beyond our head, until a resync answers (5.6). */
  readonly chainSeen: number | null;
  /** H(env) our next message chains onto (32 zero bytes before the first). */
  readonly tail: Uint8Array;
  readonly sent: readonly SentRecord[];
  readonly gaps: readonly SenderGap[];
}

export interface MemberCtx {
  readonly random: RandomBytes;
  readonly identity: IdentityKeyPair;
  readonly peerKey: BoxPublicKey;
  /**
   * New keys made for a key update (section 5.8.1), stored by the driver before the request
   * leaves; the machine switches to them when it sees the owner's `update` entry for them.
   */
  readonly pending?: { readonly identity: IdentityKeyPair; readonly peerKey: BoxPublicKey };
}

// ---- Events in, effects out ----

export type OwnerEvent =
  | { readonly kind: 'received'; readonly from: PeerKeyHex | BoxPublicKey; readonly bytes: Uint8Array; readonly now: number }
  | { readonly kind: 'invite'; readonly now: number; readonly ttlMs?: number }
  | { readonly kind: 'revoke'; readonly invite: InviteId; readonly now: number }
  /** `file`: a file offer instead of a text (section 5.17.1; `text` is then ''). */
  | { readonly kind: 'send'; readonly text: string; readonly file?: FileOffer; readonly now: number }
  | { readonly kind: 'kick'; readonly member: MemberId; readonly now: number }
  | { readonly kind: 'rotate'; readonly now: number }
  | { readonly kind: 'tick'; readonly now: number };

export type MemberEvent =
  | { readonly kind: 'received'; readonly bytes: Uint8Array; readonly now: number }
  /** The link to the owner opened (again). */
  | { readonly kind: 'connected'; readonly now: number }
  /** `file`: a file offer instead of a text (section 5.17.1; `text` is then ''). */
  | { readonly kind: 'send'; readonly text: string; readonly file?: FileOffer; readonly now: number }
  | { readonly kind: 'leave'; readonly now: number }
  /** Ask the owner to replace our keys with `ctx.pending` (section 5.8.1). */
  | { readonly kind: 'update-keys'; readonly now: number };

export interface MemberSummary {
  readonly id: MemberId;
  readonly name: string;
  readonly owner: boolean;
}

/** What a member detected about the owner's conduct (section 5.13); drivers show it. */
export type RoomWarning = 'membership-withheld' | 'membership-unverified' | 'message-withheld';

export type RoomEvent =
  | {
      readonly type: 'message';
      readonly idx: number;
      readonly from: MemberId;
      readonly name: string;
      readonly text: string;
      readonly ts: number;
      readonly epoch: number;
      readonly seq: number;
      readonly history: boolean;
      /**
       * Set on a message the owner supplied for a gap in its sender's chain (section 5.6): it
       * belongs before messages already shown, at `idx` of the owner's log.
       */
      readonly late?: true;
      /** A file offer (section 5.17.1): `text` is '' and the bytes travel outside the log. */
      readonly file?: FileOffer;
    }
  | { readonly type: 'member-joined'; readonly member: MemberSummary }
  | { readonly type: 'member-left'; readonly member: MemberSummary; readonly reason: RemovalReason | 'removed' }
  | { readonly type: 'rotated'; readonly epoch: number; readonly reason: RotationReason }
  | { readonly type: 'joined'; readonly room: string; readonly epoch: number }
  | { readonly type: 'join-refused'; readonly code: string }
  | { readonly type: 'removed'; readonly reason: RemovalReason }
  | { readonly type: 'left' }
  | { readonly type: 'invite'; readonly id: InviteId; readonly url: string; readonly expiresAt: number }
  | { readonly type: 'send-refused'; readonly code: string; readonly seq: number | null }
  | { readonly type: 'history-skipped'; readonly count: number; readonly reason: 'no-key' | 'unknown-sender' | 'trimmed' }
  | { readonly type: 'warning'; readonly code: RoomWarning; readonly count: number; readonly member: MemberSummary | null }
  /** A member's keys were replaced (section 5.8.1): `old` is its former id; `self` when it is us. */
  | { readonly type: 'keys-updated'; readonly old: MemberId; readonly member: MemberSummary; readonly self: boolean };

export type Effect =
  | { readonly kind: 'send'; readonly to: PeerKeyHex; readonly bytes: Uint8Array }
  | { readonly kind: 'close'; readonly to: PeerKeyHex; readonly reason: string }
  | { readonly kind: 'event'; readonly event: RoomEvent };

/** Result of one step. With `error` set the input was refused and `state` is the input state. */
export interface Step<S> {
  readonly state: S;
  readonly effects: readonly Effect[];
  readonly error?: RoomError | ZeroRoomError;
}
