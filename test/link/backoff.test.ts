// Reconnect backoff (protocol/link/backoff.ts): exponential with equal jitter, capped.
import { describe, expect, it } from 'vitest';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffDelay } from '../../protocol/link/backoff.ts';

const fixed = (b: number) => (n: number) => new Uint8Array(n).fill(b);

describe('backoffDelay', () => {
  it('is half fixed, half random, doubling per attempt', () => {
    expect(backoffDelay(0, fixed(0))).toBe(BACKOFF_BASE_MS / 2);
    expect(backoffDelay(0, fixed(0xff))).toBe(Math.round(BACKOFF_BASE_MS / 2 + (0xffff / 65536) * (BACKOFF_BASE_MS / 2)));
    expect(backoffDelay(3, fixed(0))).toBe((BACKOFF_BASE_MS * 8) / 2);
  });

  it('is capped at 30 s and never below half the exponential delay', () => {
    for (let n = 0; n < 40; n++) {
      const e = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** n);
      for (const b of [0, 0x80, 0xff]) {
        const d = backoffDelay(n, fixed(b));
        expect(d).toBeGreaterThanOrEqual(e / 2);
        expect(d).toBeLessThanOrEqual(e);
      }
    }
    expect(backoffDelay(1000, fixed(0xff))).toBeLessThanOrEqual(BACKOFF_CAP_MS);
  });
});
