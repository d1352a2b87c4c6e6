/**
 * The one place the web app names the room machines it calls directly (protocol/room): creating a
 * room and starting a join. Everything after that runs in the room driver.
 */
export { createRoom } from '../../protocol/room/owner.ts';
export { startJoin } from '../../protocol/room/member.ts';

/** Settings say 0 = never; the machine wants a count of at least 1 (section 5.2). */
export function rotationCount(everyMessages: number): number {
  return everyMessages <= 0 ? Number.MAX_SAFE_INTEGER : everyMessages;
}
