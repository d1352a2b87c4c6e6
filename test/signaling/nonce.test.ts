import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../protocol/errors.ts';
import { CSN_LIMIT, csnOverflow, decodeNonce, encodeNonce, initialCsn, messageIdOf } from '../../protocol/saltyrtc/nonce.ts';

const cookie = Uint8Array.from({ length: 16 }, (_, i) => i + 1);

describe('nonce codec', () => {
  it('lays out cookie, source, destination, overflow (BE16) and sequence (BE32)', () => {
    const n = encodeNonce({ cookie, source: 0x01, destination: 0x02, csn: 0x0003_0000_0004 });
    expect(Buffer.from(n).toString('hex')).toBe(`${Buffer.from(cookie).toString('hex')}0102000300000004`);
  });
  it('round-trips every field', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: CSN_LIMIT - 1 }),
        (c, s, d, csn) => {
          const decoded = decodeNonce(encodeNonce({ cookie: c, source: s, destination: d, csn }));
          expect(decoded).toEqual({ cookie: c, source: s, destination: d, csn });
        },
      ),
    );
  });
  it('decodes a subarray view at an offset', () => {
    const frame = new Uint8Array(40);
    frame.set(encodeNonce({ cookie, source: 3, destination: 1, csn: 99 }), 8);
    expect(decodeNonce(frame.subarray(8, 32)).csn).toBe(99);
  });
  it.each([0, 23, 25])('refuses %i bytes', (n) => expect(() => decodeNonce(new Uint8Array(n))).toThrow(DecodeError));
  it('does not alias the input cookie', () => {
    const bytes = encodeNonce({ cookie, source: 0, destination: 0, csn: 0 });
    const n = decodeNonce(bytes);
    bytes[0] = 0xff;
    expect(n.cookie[0]).toBe(1);
  });
  it('encoder refuses bad fields', () => {
    expect(() => encodeNonce({ cookie: cookie.subarray(1), source: 0, destination: 0, csn: 0 })).toThrow(RangeError);
    expect(() => encodeNonce({ cookie, source: 256, destination: 0, csn: 0 })).toThrow(RangeError);
    expect(() => encodeNonce({ cookie, source: 0, destination: -1, csn: 0 })).toThrow(RangeError);
    expect(() => encodeNonce({ cookie, source: 0, destination: 0, csn: CSN_LIMIT })).toThrow(RangeError);
    expect(() => encodeNonce({ cookie, source: 0, destination: 0, csn: 1.5 })).toThrow(RangeError);
  });
  it('initial csn has overflow 0', () => {
    expect(initialCsn(() => new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toBe(2 ** 32 - 1);
    expect(csnOverflow(initialCsn(() => new Uint8Array([0xff, 0xff, 0xff, 0xff])))).toBe(0);
    expect(csnOverflow(2 ** 32)).toBe(1);
  });
  it('message id is source, destination, overflow, sequence', () => {
    const n = encodeNonce({ cookie, source: 1, destination: 2, csn: 15 });
    expect(Buffer.from(messageIdOf(n)).toString('hex')).toBe('010200000000000f');
  });
});
