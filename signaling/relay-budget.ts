/**
 * Per-path budget for relayed client-to-client data (docs/PROTOCOL.md 3.9): peer links may carry
 * their frames through the server when no ICE pair works (4.8), and this keeps a path (one room)
 * from turning the server into a free bulk relay. Two token buckets per path, bytes and frames. A
 * frame that overdraws one is still relayed, in order; `charge` then says how long to stop reading
 * the sender's socket (TCP backpressure), so nothing is dropped and no session breaks. Pure: the
 * clock is a parameter; the driver (server.ts) pauses and resumes sockets.
 */

export interface RelayBudgetLimits {
  /** Sustained relayed bytes per second per path. */
  readonly bytesPerSecond: number;
  /** Bucket size in bytes (what a path may send in a burst). */
  readonly burstBytes: number;
  /** Sustained relayed frames per second per path (burst: two seconds' worth). */
  readonly framesPerSecond: number;
}

export const defaultRelayBudget: Readonly<RelayBudgetLimits> = Object.freeze({
  bytesPerSecond: 64 * 1024,
  burstBytes: 1024 * 1024,
  framesPerSecond: 200,
});

export const RELAY_BUDGET_RANGES: Record<keyof RelayBudgetLimits, readonly [number, number]> = {
  bytesPerSecond: [1024, 1_000_000_000],
  burstBytes: [65_536, 1_000_000_000],
  framesPerSecond: [10, 1_000_000],
};

interface Bucket {
  bytes: number;
  frames: number;
  at: number;
}

/** Counters for /metrics: how often senders were paused and for how long in total. */
export interface RelayBudgetStats {
  throttled: number;
  throttledMs: number;
}

export class RelayBudget {
  private readonly buckets = new Map<string | number, Bucket>();
  readonly stats: RelayBudgetStats = { throttled: 0, throttledMs: 0 };

  constructor(
    readonly limits: RelayBudgetLimits = defaultRelayBudget,
    private readonly now: () => number = Date.now,
  ) {
    for (const key of Object.keys(RELAY_BUDGET_RANGES) as (keyof RelayBudgetLimits)[]) {
      const [min, max] = RELAY_BUDGET_RANGES[key];
      const v = limits[key];
      if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`relay budget ${key}=${v} outside [${min}, ${max}]`);
    }
  }

  private refill(path: string | number): Bucket {
    const t = this.now();
    const l = this.limits;
    let b = this.buckets.get(path);
    if (b === undefined) {
      b = { bytes: l.burstBytes, frames: 2 * l.framesPerSecond, at: t };
      this.buckets.set(path, b);
      return b;
    }
    const dt = Math.max(0, t - b.at) / 1000;
    b.bytes = Math.min(l.burstBytes, b.bytes + dt * l.bytesPerSecond);
    b.frames = Math.min(2 * l.framesPerSecond, b.frames + dt * l.framesPerSecond);
    b.at = t;
    return b;
  }

  /**
   * Charge one relayed frame of `bytes` to `path`. Returns 0 while the path is within its budget,
   * else the milliseconds until both buckets are positive again: stop reading the sender that long.
   */
  charge(path: string | number, bytes: number): number {
    const b = this.refill(path);
    b.bytes -= bytes;
    b.frames -= 1;
    const l = this.limits;
    const waitMs = Math.max(
      b.bytes < 0 ? (-b.bytes / l.bytesPerSecond) * 1000 : 0,
      b.frames < 0 ? (-b.frames / l.framesPerSecond) * 1000 : 0,
    );
    if (waitMs <= 0) return 0;
    const ms = Math.ceil(waitMs);
    this.stats.throttled++;
    this.stats.throttledMs += ms;
    return ms;
  }

  /** The path is gone: forget its buckets. */
  forget(path: string | number): void {
    this.buckets.delete(path);
  }

  get pathCount(): number {
    return this.buckets.size;
  }
}

/** What `throttle` needs of a socket (`ws`'s WebSocket has both). */
export interface Pausable {
  pause(): void;
  resume(): void;
}

const resumeTimers = new WeakMap<Pausable, ReturnType<typeof setTimeout>>();

/** Stop reading `socket` for `ms` (a socket already paused stays paused until its own timer). */
export function throttle(socket: Pausable, ms: number): void {
  if (ms <= 0 || resumeTimers.has(socket)) return;
  socket.pause();
  const t = setTimeout(() => {
    resumeTimers.delete(socket);
    socket.resume();
  }, ms);
  t.unref?.();
  resumeTimers.set(socket, t);
}
