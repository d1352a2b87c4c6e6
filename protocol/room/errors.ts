/**
 * Typed errors of the room protocol (docs/PROTOCOL.md section 5, codes in section 7). A state
 * machine that refuses an input returns one of these in `error` together with its unchanged state.
 */
import { ZeroRoomError } from '../errors.ts';

export type RoomErrorCode =
  | 'room.invite-unknown'
  | 'room.invite-used'
  | 'room.invite-expired'
  | 'room.invite-revoked'
  | 'room.invite-malformed'
  | 'room.invite-limit'
  | 'room.join-proof'
  | 'room.not-admitted'
  | 'room.full'
  | 'room.already-member'
  | 'room.peer-key-taken'
  | 'room.not-member'
  | 'room.forbidden'
  | 'room.closed'
  | 'room.state'
  | 'room.bad-signature'
  | 'room.impersonation'
  | 'room.wrong-room'
  | 'room.not-owner'
  | 'room.bad-rekey'
  | 'room.fork'
  | 'room.bad-ciphertext'
  | 'room.replay'
  | 'room.duplicate'
  | 'room.epoch-expired'
  | 'room.epoch-unknown'
  | 'room.chain-gap'
  | 'room.sender-chain'
  | 'room.bad-state';

export class RoomError extends ZeroRoomError {
  declare readonly code: RoomErrorCode;
  constructor(code: RoomErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An invite that cannot be used: unknown, used, expired, revoked, or a malformed invite URL. */
export class InviteError extends RoomError {
  constructor(
    code:
      | 'room.invite-unknown'
      | 'room.invite-used'
      | 'room.invite-expired'
      | 'room.invite-revoked'
      | 'room.invite-malformed'
      | 'room.invite-limit',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** The joiner did not prove it holds the token (or opened the accept), or the owner declined it. */
export class JoinError extends RoomError {
  constructor(
    code: 'room.join-proof' | 'room.not-admitted' | 'room.already-member' | 'room.peer-key-taken' | 'room.full',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Input from someone not allowed to send it, or in a phase that does not take it. */
export class MembershipError extends RoomError {
  constructor(code: 'room.not-member' | 'room.forbidden' | 'room.closed' | 'room.state', message: string) {
    super(code, message);
  }
}

/** Signature, sender, room, rotation authority, key delivery or ciphertext do not check out. */
export class AuthenticityError extends RoomError {
  constructor(
    code:
      | 'room.bad-signature'
      | 'room.impersonation'
      | 'room.wrong-room'
      | 'room.not-owner'
      | 'room.bad-rekey'
      | 'room.fork'
      | 'room.bad-ciphertext',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * Seen before (duplicate), an old sequence number (replay), outside the epoch rule, a chain
 * position beyond the receiver's head, or a message that does not continue its sender's chain.
 */
export class FreshnessError extends RoomError {
  constructor(
    code: 'room.replay' | 'room.duplicate' | 'room.epoch-expired' | 'room.epoch-unknown' | 'room.chain-gap' | 'room.sender-chain',
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * A persisted machine state (protocol/room/state-codec.ts, section 6.3) that does not decode:
 * wrong type, size, key length or enum value, broken invariant, or an unknown format version.
 */
export class StateError extends RoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('room.bad-state', message, options);
  }
}

/** A state written by a format this code does not know (a newer app): `version` says which. */
export class StateVersionError extends StateError {
  constructor(
    what: string,
    readonly version: number,
  ) {
    super(`${what}: unknown format version ${version}`);
  }
}
