/**
 * Per-client-address admission: open connections per address and a token bucket of new
 * connections per second. IPv6 clients are grouped by their /64 (one subscriber usually holds a
 * whole /64, so per-address limits would be trivial to dodge). Holds no timers; the clock is passed in.
 */

export type AdmitResult = 'ok' | 'too-many-per-ip' | 'rate-limited';

interface Bucket {
  tokens: number;
  atMs: number;
}

export class IpLimits {
  private readonly open = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly maxOpenPerIp: number,
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {}

  /** Check and, when admitted, count one new connection for `ip`. */
  admit(ip: string): AdmitResult {
    const key = ipKey(ip);
    if ((this.open.get(key) ?? 0) >= this.maxOpenPerIp) return 'too-many-per-ip';
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.perSecond, atMs: t };
    b.tokens = Math.min(this.perSecond, b.tokens + ((t - b.atMs) / 1000) * this.perSecond);
    b.atMs = t;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      return 'rate-limited';
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    this.open.set(key, (this.open.get(key) ?? 0) + 1);
    return 'ok';
  }

  release(ip: string): void {
    const key = ipKey(ip);
    const n = (this.open.get(key) ?? 0) - 1;
    if (n > 0) this.open.set(key, n);
    else this.open.delete(key);
    this.prune();
  }

  /** Forget buckets that have refilled and belong to addresses with nothing open. */
  private prune(): void {
    if (this.buckets.size < 1024) return;
    const t = this.now();
    for (const [key, b] of this.buckets) {
      if (!this.open.has(key) && b.tokens + ((t - b.atMs) / 1000) * this.perSecond >= this.perSecond) this.buckets.delete(key);
    }
  }

  get trackedAddresses(): number {
    return this.buckets.size;
  }
}

/** IPv4 (also v4-mapped IPv6) as is; IPv6 by its first 64 bits. */
export function ipKey(ip: string): string {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4mapped !== null) return v4mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.split('::', 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => (g.replace(/^0+(?=.)/, '') || '0').toLowerCase())
    .join(':')}::/64`;
}
