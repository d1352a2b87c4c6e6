/**
 * Pure derivations for the room views (issue #13), kept apart from the runtimes so whichever driver
 * runs a room can feed them: the room's state in words people understand, the delivery state of
 * our own messages, the order of chat and system lines, the order of the member list.
 */
import type { MemberPhase } from '../../protocol/room/types.ts';
import type { RoomState } from '../strings.ts';
import type { ConnectionState, MemberView, MessageView } from './types.ts';

/** Failures that mean the signaling server (not the owner) is out of reach. */
export const SERVER_FAILURES: ReadonlySet<string> = new Set([
  'saltyrtc.server',
  'saltyrtc.timeout',
  'saltyrtc.subprotocol',
  'saltyrtc.protocol',
]);

export interface MemberStatus {
  readonly phase: MemberPhase;
  /** The link to the owner. */
  readonly link: ConnectionState;
  /** Final refusal: the room machine's join-refused code, or the link's fatal error code. */
  readonly refusal: string | null;
  /** Code of the last failed connection attempt ('' for a drop without a code), null after an open. */
  readonly lastFailure: string | null;
  /** From the last signaling handshake: is the owner on the path? null when unknown. */
  readonly ownerOnPath: boolean | null;
  /** The owner is away and this member talks directly with at least one other (docs/PROTOCOL.md 5.16). */
  readonly away?: boolean;
}

/** The member's room state (data-state of room-status). */
export function memberRoomState(s: MemberStatus): RoomState {
  if (s.phase === 'refused' || s.refusal !== null) return 'refused';
  if (s.phase === 'removed') return 'removed';
  if (s.phase === 'left') return 'left';
  if (s.phase === 'joining' || s.phase === 'accepted') return 'joining';
  if (s.link === 'direct' || s.link === 'relayed') return 'member';
  if (s.away === true) return 'owner-away';
  if (s.link === 'restarting') return 'reconnecting';
  if (s.lastFailure !== null && SERVER_FAILURES.has(s.lastFailure)) return 'reconnecting';
  if (s.ownerOnPath === false) return 'owner-offline';
  return 'reconnecting';
}

/** Sending works (now or later, from the outbox) in these states. */
export function canSend(state: RoomState): boolean {
  return state === 'member' || state === 'owner-offline' || state === 'owner-away' || state === 'reconnecting';
}

/** The owner's room state: open, or reconnecting to the signaling server. */
export function ownerRoomState(signalingReady: boolean): RoomState {
  return signalingReady ? 'member' : 'reconnecting';
}

/**
 * One list in the order people expect: delivered messages in room order (index), system lines
 * placed by the time they happened among them (so "you joined" comes after the history from before
 * the join, not above it), then our messages still on their way.
 */
export function orderMessages(
  delivered: readonly MessageView[],
  pending: readonly MessageView[],
  system: readonly MessageView[],
): MessageView[] {
  const notes = [...system].sort((a, b) => a.at - b.at);
  const out: MessageView[] = [];
  let n = 0;
  for (const m of delivered) {
    while (n < notes.length && (notes[n] as MessageView).at < m.at) out.push(notes[n++] as MessageView);
    out.push(m);
  }
  while (n < notes.length) out.push(notes[n++] as MessageView);
  return [...out, ...pending];
}

/**
 * The member list in the same order on every device: the owner, then everyone else by name (then
 * id, so equal names cannot swap places between devices).
 */
export function sortMembers(members: readonly MemberView[]): MemberView[] {
  return [...members].sort((a, b) => {
    if (a.isOwner !== b.isOwner) return a.isOwner ? -1 : 1;
    const byName = a.name.localeCompare(b.name, 'en');
    if (byName !== 0) return byName;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}
