// signaling/relay-budget.ts: per-path token buckets for relayed bytes and frames (docs/PROTOCOL.md 3.9).
import { describe, expect, it } from 'vitest';
import { RelayBudget, throttle } from '../../signaling/relay-budget.ts';

describe('relay budget', () => {
  const limits = { bytesPerSecond: 1000 * 1024, burstBytes: 100 * 1024, framesPerSecond: 10 };

  it('lets a path use its burst, then says how long to pause the sender', () => {
    let now = 0;
    const b = new RelayBudget({ ...limits, bytesPerSecond: 10 * 1024 }, () => now);
    expect(b.charge(1, 100 * 1024)).toBe(0); // exactly the burst
    expect(b.charge(1, 10 * 1024)).toBe(1000); // 10 KiB in debt at 10 KiB/s
    expect(b.stats).toEqual({ throttled: 1, throttledMs: 1000 });
    now = 1000;
    expect(b.charge(1, 1)).toBe(1); // repaid, one byte over again
    now = 100_000;
    expect(b.charge(1, 50 * 1024)).toBe(0); // refilled, capped at the burst
    expect(b.charge(1, 60 * 1024)).toBeGreaterThan(0);
  });

  it('counts frames too (burst: two seconds worth)', () => {
    const b = new RelayBudget(limits, () => 0);
    for (let i = 0; i < 20; i++) expect(b.charge('p', 10)).toBe(0);
    expect(b.charge('p', 10)).toBe(100); // one frame over at 10 frames/s
  });

  it('keeps paths apart and forgets a path that closed', () => {
    const b = new RelayBudget(limits, () => 0);
    b.charge(1, 100 * 1024);
    expect(b.charge(2, 100 * 1024)).toBe(0);
    expect(b.charge(1, 1024)).toBeGreaterThan(0);
    b.forget(1);
    expect(b.pathCount).toBe(1);
    expect(b.charge(1, 1024)).toBe(0);
  });

  it('refuses limits out of range', () => {
    expect(() => new RelayBudget({ ...limits, bytesPerSecond: 10 })).toThrow(RangeError);
    expect(() => new RelayBudget({ ...limits, burstBytes: 1.5 })).toThrow(RangeError);
    expect(() => new RelayBudget({ ...limits, framesPerSecond: 0 })).toThrow(RangeError);
  });

  it('throttle pauses a socket once and resumes it after the wait', async () => {
    const calls: string[] = [];
    const socket = { pause: () => calls.push('pause'), resume: () => calls.push('resume') };
    throttle(socket, 20);
    throttle(socket, 20); // already paused: no second pause
    throttle(socket, 0);
    expect(calls).toEqual(['pause']);
    await new Promise<void>((resolve) => {
      const check = (): void => (calls.length === 2 ? resolve() : void setTimeout(check, 5));
      check();
    });
    expect(calls).toEqual(['pause', 'resume']);
  });
});
