import { describe, expect, it } from 'vitest';
import { systemRandom } from '../../crypto/index.ts';

describe('systemRandom', () => {
  it('returns the requested number of bytes in a plain ArrayBuffer', () => {
    for (const n of [0, 1, 32, 65536, 65537, 200_000]) {
      const out = systemRandom(n);
      expect(out.length).toBe(n);
      expect(out.buffer).toBeInstanceOf(ArrayBuffer);
    }
  });
  it('fills beyond the 64 KiB getRandomValues limit (no zero tail)', () => {
    const out = systemRandom(200_000);
    // 4 KiB of zeros from a CSPRNG has probability 2^-32768.
    expect(out.subarray(196_000).some((b) => b !== 0)).toBe(true);
  });
  it('does not repeat itself', () => {
    expect(Buffer.from(systemRandom(32)).equals(Buffer.from(systemRandom(32)))).toBe(false);
  });
  it('rejects bad lengths', () => {
    for (const n of [-1, 1.5, Number.NaN, Infinity]) expect(() => systemRandom(n)).toThrow(RangeError);
  });
});
