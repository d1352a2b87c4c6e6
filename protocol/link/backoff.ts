/**
 * Reconnect delays (docs/PROTOCOL.md section 4, "Reconnect"): exponential backoff with "equal
 * jitter" — half the exponential delay is fixed, the other half random — so members that lost
 * the owner at the same moment do not reconnect in lockstep. Pure: randomness is a parameter.
 */
import type { RandomBytes } from '../../crypto/index.ts';

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 30_000;

/** Delay before reconnect attempt `attempt` (0-based). */
export function backoffDelay(attempt: number, random: RandomBytes): number {
  const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  const r = random(2);
  const fraction = (((r[0] ?? 0) << 8) | (r[1] ?? 0)) / 65536;
  return Math.round(exp / 2 + fraction * (exp / 2));
}
