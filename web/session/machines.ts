/**
 * The one place the web app names the room protocol's machines (protocol/room), so a rename
 * there is a one-file change here.
 */
export { createRoom, memberPeerKeys, ownerStep, pendingAuthTokens } from '../../protocol/room/owner.ts';
export { memberStep, startJoin } from '../../protocol/room/member.ts';
export type { MemberCtx, OwnerCtx } from '../../protocol/room/types.ts';

/** Settings say 0 = never; the machine wants a count of at least 1 (section 5.2). */
export function rotationCount(everyMessages: number): number {
  return everyMessages <= 0 ? Number.MAX_SAFE_INTEGER : everyMessages;
}
