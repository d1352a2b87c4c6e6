/**
 * What a room driver (driver.ts, owner-driver.ts, member-driver.ts) is given: everything it touches
 * comes in through these interfaces, so the browser, the headless client and the tests run the same
 * driver over IndexedDB, a state directory or memory, real peer links or a fake, real or manual time.
 */
import type { BoxKeyPair, BoxPublicKey, RandomBytes } from '../../crypto/index.ts';
import { ZeroRoomError } from '../errors.ts';
import type { FileErrorCode } from '../files/errors.ts';
import type { FileId, FileOffer } from '../files/offer.ts';
import type { JoinOptions } from '../link/member.ts';
import type { OwnerHandle, OwnerOptions } from '../link/owner.ts';
import type { LinkState, PeerLink } from '../link/peer-link.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import type { AwayEvent } from './away.ts';
import type { HistoryRecord, OutboxRecord, RoomIdentity } from './records.ts';
import type { MemberId, MemberState, OwnerState, PeerKeyHex, RoomEvent } from './types.ts';

/**
 * Where a room's records live. Each call resolves once its write is durable (or throws: the driver
 * then sends nothing of that step). The driver writes in one order per step (docs/PROTOCOL.md 6.4):
 * the outbox record of a send, the history records of delivered messages, then the state — the
 * commit point — and only then do effects leave. On restore, records beyond the saved state are left
 * out (records.ts: committedHistory, committedOutbox).
 */
export interface RoomStore<S extends OwnerState | MemberState> {
  /** The machine state after a step (the commit point). */
  save(state: S): Promise<void>;
  /** A delivered message (same `idx` again: replace). A store without history may ignore it. */
  appendHistory(record: HistoryRecord): Promise<void>;
  /** A member's own message before it leaves (same `seq` again: replace). */
  putOutbox(record: OutboxRecord): Promise<void>;
  /** The owner delivered it back, or refused it for good. Absent: nothing to do. */
  removeOutbox(seq: number): Promise<void>;
  /** Every stored outbox record (read once, when a member driver starts). */
  listOutbox(): Promise<OutboxRecord[]>;
  /**
   * Member key updates (docs/PROTOCOL.md 5.8.1): the room's keys and the pending new ones, durable
   * before the request leaves and again when the member switches. A store without it cannot update keys.
   */
  saveKeys?(keys: { readonly identity: RoomIdentity; readonly pending: RoomIdentity | null }): Promise<void>;
}

/** Diagnostics for people (browser console, the CLI's stderr, a test's list). Never peer plaintext. */
export interface Logger {
  /** Every link state change, as `link <peer key hex, 8 digits> <state>` (owner) or `link to the owner <state>` (member). */
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** What the driver reports besides its return values; adapters turn these into views or JSON lines. */
export type DriverEvent =
  /** Every event the room machine emitted, in order, after its step was saved (types unknown to an adapter included). */
  | { readonly kind: 'room'; readonly event: RoomEvent }
  /** A step changed the state and it was saved. */
  | { readonly kind: 'saved' }
  /** A peer link changed state (owner: one per member; member: the link to the owner). */
  | { readonly kind: 'link'; readonly peer: PeerKeyHex; readonly member: MemberId | null; readonly state: LinkState }
  /** Member: the owner's link layer acknowledged own messages (deliveryOf changed). */
  | { readonly kind: 'delivery' }
  /**
   * Owner: a second session presented the peer key of a member whose link was open (section 5.14,
   * "Two sessions on one member key"): another device may hold that member's keys.
   */
  | { readonly kind: 'second-session'; readonly peer: PeerKeyHex; readonly member: MemberId | null }
  /** Owner: its signaling connection became ready or dropped. */
  | { readonly kind: 'signaling'; readonly ready: boolean }
  /** Member: the owner refused our link (used, revoked or wrong invite; no longer trusted). No more attempts. */
  | { readonly kind: 'refused'; readonly code: string; readonly message: string }
  /** Member: the owner is away and members talk directly (5.16), or it is back (`active` false). */
  | { readonly kind: 'away'; readonly active: boolean }
  /** Member: mesh activity while the owner is away (5.16): a provisional message, a peer's state, a settled message. */
  | { readonly kind: 'mesh'; readonly event: AwayEvent }
  /** Files (5.17, file-driver.ts): an offer from another member is in the room; accept, decline or leave it. */
  | { readonly kind: 'file-offered'; readonly offer: FileOffer; readonly from: MemberId; readonly name: string; readonly index: number }
  /** Chunks of a file moved (`in`: stored and verified; `out`: our own file sent). */
  | {
      readonly kind: 'file-progress';
      readonly file: FileId;
      readonly direction: 'in' | 'out';
      readonly done: number;
      readonly count: number;
    }
  /** A file we accepted is stored and hash-verified. */
  | { readonly kind: 'file-received'; readonly offer: FileOffer }
  /** A transfer ended without the file (`file.cancelled`, `file.removed`, `file.gone`, `file.hash`, ...). */
  | { readonly kind: 'file-ended'; readonly file: FileId; readonly code: FileErrorCode }
  /** A step that no caller awaits (peer input, tick, reconnect) failed: a store error, or a bug. */
  | { readonly kind: 'error'; readonly error: unknown };

export type DriverEvents = (event: DriverEvent) => void;

/** The ambient inputs of a driver. */
export interface DriverEnv {
  /** Clock and timers (the clock is `timers.now()`). */
  readonly timers: Timers;
  readonly random: RandomBytes;
  readonly log: Logger;
  readonly events: DriverEvents;
}

/** The owner's link layer hooks the driver fills in (protocol/link/owner.ts OwnerOptions). */
export type OwnerLinkHooks = Pick<
  OwnerOptions,
  | 'pendingTokens'
  | 'acceptToken'
  | 'trustedKeys'
  | 'refusedTokens'
  | 'refusedKeys'
  | 'onLink'
  | 'onSignalingState'
  | 'onWarning'
  | 'onSecondSession'
>;

/** Starts the owner's side of the peer links: `(hooks) => startOwner({...endpoint, ...hooks})`. */
export type OwnerLinkPort = (hooks: OwnerLinkHooks) => OwnerHandle;

/**
 * Opens a link to the owner: `(opts) => joinRoom({...endpoint, ...opts})`. `permanentKeys`: our
 * peer key pair when it is not the endpoint's (after a key update, 5.8.1).
 */
export type MemberLinkPort = (
  opts: Pick<JoinOptions, 'ownerKey' | 'token' | 'inviteExpiresAt'> & Partial<Pick<JoinOptions, 'permanentKeys'>>,
) => Promise<PeerLink>;

/** What a member's mesh host (5.16) is given: the link layer's owner side on the member's own path, without tokens. */
export interface MeshHostHooks {
  /** The roster keys this member admits on its own path (the greater ones, 5.16); re-read on each contact. */
  readonly trustedKeys: () => Iterable<BoxPublicKey>;
  readonly onLink: (link: PeerLink) => void;
  readonly onWarning?: (message: string) => void;
}

/**
 * Mesh links while the owner is away (5.16): `host` is `startOwner({...endpoint, pendingTokens: () => [],
 * acceptToken: () => false, ...hooks})` on the member's own path; `dial` is `joinRoom({...endpoint,
 * ownerKey: peer})` (a responder with its trusted key, never a token).
 */
/** `keys`: the peer key pair the member presents now (a key update changes it, 5.8.1). */
export interface MeshLinkPort {
  host(hooks: MeshHostHooks, keys: { permanentKeys: BoxKeyPair }): { close(): void };
  dial(peer: BoxPublicKey, keys: { permanentKeys: BoxKeyPair }): Promise<PeerLink>;
}

/**
 * A refusal of the driver itself (not of the machine): `room.outbox-full` (MAX_OUTBOX own messages
 * wait for the owner already), `room.stopped` (a command after stop()), `room.no-key-store` (a key
 * update on a store without saveKeys).
 */
export class DriverError extends ZeroRoomError {
  declare readonly code: 'room.outbox-full' | 'room.stopped' | 'room.no-key-store';
  constructor(code: 'room.outbox-full' | 'room.stopped' | 'room.no-key-store', message: string) {
    super(code, message);
  }
}
