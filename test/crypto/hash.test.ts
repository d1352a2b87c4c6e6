import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError, sha256, sha512, toHex, utf8Encode } from '../../crypto/index.ts';
import vectors from '../vectors/sha2.json' with { type: 'json' };
import { expectThrows } from './expect-error.ts';

describe('sha256 / sha512 known answers (NIST FIPS 180-2)', () => {
  for (const v of vectors.vectors) {
    const label = `${JSON.stringify(v.input.slice(0, 12))}${v.repeat > 1 ? ` x${v.repeat}` : ''}`;
    it(label, () => {
      const input = utf8Encode(v.input.repeat(v.repeat));
      expect(toHex(sha256(input))).toBe(v.sha256);
      expect(toHex(sha512(input))).toBe(v.sha512);
    });
  }
});

describe('sha256 against node:crypto', () => {
  it('agrees for every length 0..300 (all padding branches)', () => {
    const data = new Uint8Array(300).map((_, i) => (i * 31 + 7) & 255);
    for (let n = 0; n <= 300; n++) {
      const input = data.subarray(0, n);
      expect(toHex(sha256(input))).toBe(createHash('sha256').update(input).digest('hex'));
    }
  });
  it('agrees on random inputs, including views with an offset (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat({ max: 16 }), (bytes, offset) => {
        const buf = new Uint8Array(bytes.length + offset);
        buf.set(bytes, offset);
        const view = buf.subarray(offset);
        expect(toHex(sha256(view))).toBe(createHash('sha256').update(bytes).digest('hex'));
        expect(toHex(sha512(view))).toBe(createHash('sha512').update(bytes).digest('hex'));
      }),
    );
  });
  it('does not modify its input and returns fresh buffers', () => {
    const input = utf8Encode('abc');
    const a = sha256(input);
    const b = sha256(input);
    expect(input).toEqual(utf8Encode('abc'));
    a[0] = 0;
    expect(b[0]).toBe(0xba);
    expect(sha512(input).length).toBe(64);
  });
  it('rejects non-bytes', () => {
    expectThrows(() => sha256('abc' as unknown as Uint8Array), InputError, 'crypto.input');
    expectThrows(() => sha512(undefined as unknown as Uint8Array), InputError, 'crypto.input');
  });
});
