import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  concatBytes,
  EncodingError,
  equalBytes,
  fromBase64url,
  fromHex,
  InputError,
  toBase64url,
  toHex,
  utf8Decode,
  utf8Encode,
} from '../../crypto/index.ts';
import { expectThrows } from './expect-error.ts';

describe('hex', () => {
  it('encodes lowercase and decodes either case', () => {
    expect(toHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe('0001abff');
    expect(fromHex('0001ABff')).toEqual(new Uint8Array([0, 1, 0xab, 0xff]));
    expect(fromHex('')).toEqual(new Uint8Array(0));
  });
  it('returns a plain ArrayBuffer-backed copy', () => {
    const out = fromHex('00ff');
    expect(out.buffer).toBeInstanceOf(ArrayBuffer);
    expect(out.byteOffset).toBe(0);
    expect(out.buffer.byteLength).toBe(2);
  });
  it('rejects odd length', () => {
    expectThrows(() => fromHex('abc'), EncodingError, 'crypto.encoding', 'odd length');
  });
  it.each(['0g', 'zz', ' 0', '0 ', '0x00', '+1', 'é0', '\u0660\u0661'])('rejects foreign characters in %j', (s) => {
    expectThrows(() => fromHex(s.length % 2 ? s + '0' : s), EncodingError, 'crypto.encoding');
  });
  it('checks the expected length', () => {
    expect(fromHex('aabb', 2)).toEqual(new Uint8Array([0xaa, 0xbb]));
    expectThrows(() => fromHex('aabb', 3), EncodingError, 'crypto.encoding', 'expected 3 bytes, got 2');
    expectThrows(() => fromHex('aabbcc', 2), EncodingError, 'crypto.encoding', 'expected 2 bytes');
  });
  it('rejects non-strings and non-bytes', () => {
    expectThrows(() => fromHex(12 as unknown as string), EncodingError, 'crypto.encoding');
    expectThrows(() => toHex([1, 2] as unknown as Uint8Array), InputError, 'crypto.input');
  });
  it('round-trips any bytes and matches Buffer (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const s = toHex(bytes);
        expect(s).toBe(Buffer.from(bytes).toString('hex'));
        expect(fromHex(s)).toEqual(bytes);
        expect(fromHex(s.toUpperCase())).toEqual(bytes);
      }),
    );
  });
  it('rejects any single character replaced by a non-hex character (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), fc.string({ minLength: 1, maxLength: 1 }), (bytes, pos, ch) => {
        fc.pre(!/[0-9a-fA-F]/.test(ch));
        const s = toHex(bytes);
        const i = pos % s.length;
        expectThrows(() => fromHex(s.slice(0, i) + ch + s.slice(i + 1)), EncodingError, 'crypto.encoding');
      }),
    );
  });
  it('rejects any truncation by an odd number of characters (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (bytes, cut) => {
        const s = toHex(bytes);
        const len = (cut % s.length) | 1; // odd, shorter than s
        fc.pre(len < s.length);
        expectThrows(() => fromHex(s.slice(0, len)), EncodingError, 'crypto.encoding');
      }),
    );
  });
});

describe('base64url', () => {
  it('encodes RFC 4648 section 10 vectors without padding, in the URL alphabet', () => {
    const cases: Array<[string, string]> = [
      ['', ''],
      ['f', 'Zg'],
      ['fo', 'Zm8'],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg'],
      ['fooba', 'Zm9vYmE'],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, enc] of cases) {
      expect(toBase64url(utf8Encode(plain))).toBe(enc);
      expect(utf8Decode(fromBase64url(enc))).toBe(plain);
    }
    expect(toBase64url(new Uint8Array([0xfb, 0xff, 0xbf]))).toBe('-_-_');
    expect(fromBase64url('-_-_')).toEqual(new Uint8Array([0xfb, 0xff, 0xbf]));
  });
  it('rejects padding, the standard alphabet, whitespace and other foreign characters', () => {
    for (const s of ['Zg==', 'Zm8=', '+/+/', 'Zm9v\n', ' Zm9v', 'Zm 9v', 'Zm9vä', 'Zm9v.']) {
      expectThrows(() => fromBase64url(s), EncodingError, 'crypto.encoding');
    }
  });
  it('rejects impossible lengths (1 mod 4)', () => {
    for (const s of ['A', 'AAAAA', 'AAAAAAAAA']) {
      expectThrows(() => fromBase64url(s), EncodingError, 'crypto.encoding', 'impossible length');
    }
  });
  it('rejects non-canonical trailing bits', () => {
    // 'Zh' and 'Zm9' + non-zero low bits decode to the same bytes as 'Zg' / 'Zm8' in lenient decoders.
    expectThrows(() => fromBase64url('Zh'), EncodingError, 'crypto.encoding', 'non-canonical');
    expectThrows(() => fromBase64url('Zm9'), EncodingError, 'crypto.encoding', 'non-canonical');
    expect(fromBase64url('Zg')).toEqual(utf8Encode('f'));
  });
  it('checks the expected length (wrong length for a key)', () => {
    const key = toBase64url(new Uint8Array(32).fill(7));
    expect(fromBase64url(key, 32)).toEqual(new Uint8Array(32).fill(7));
    expectThrows(() => fromBase64url(key, 31), EncodingError, 'crypto.encoding', 'expected 31 bytes, got 32');
    expectThrows(() => fromBase64url(key.slice(0, -2), 32), EncodingError, 'crypto.encoding');
  });
  it('round-trips any bytes and matches Buffer base64url (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const s = toBase64url(bytes);
        expect(s).toBe(Buffer.from(bytes).toString('base64url'));
        expect(fromBase64url(s)).toEqual(bytes);
      }),
    );
  });
  it('has exactly one accepted text per byte string (property: canonical)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 40 }),
        (s) => {
          let decoded: Uint8Array | undefined;
          try {
            decoded = fromBase64url(s);
          } catch (e) {
            expect(e).toBeInstanceOf(EncodingError);
            return;
          }
          expect(toBase64url(decoded)).toBe(s);
        },
      ),
    );
  });
  it('rejects any single character replaced by a foreign character (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.constantFrom('=', '+', '/', ' ', '\n', '.', '~', 'é', '\0'),
        (bytes, pos, ch) => {
          const s = toBase64url(bytes);
          const i = pos % s.length;
          expectThrows(() => fromBase64url(s.slice(0, i) + ch + s.slice(i + 1)), EncodingError, 'crypto.encoding');
        },
      ),
    );
  });
  it('rejects any truncation when the length is fixed (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (bytes, cut) => {
        const s = toBase64url(bytes);
        const len = cut % s.length;
        expectThrows(() => fromBase64url(s.slice(0, len), bytes.length), EncodingError, 'crypto.encoding');
      }),
    );
  });
});

describe('equalBytes', () => {
  it('compares content and length', () => {
    expect(equalBytes(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(equalBytes(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(equalBytes(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2]))).toBe(false);
    expect(equalBytes(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });
  it('detects any single-bit difference (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (a, pos, bit) => {
        const b = a.slice();
        const i = pos % b.length;
        b[i] = (b[i] as number) ^ (1 << bit);
        expect(equalBytes(a, b)).toBe(false);
        expect(equalBytes(a, a.slice())).toBe(true);
      }),
    );
  });
  it('rejects non-bytes', () => {
    expectThrows(() => equalBytes('ab' as unknown as Uint8Array, new Uint8Array(2)), InputError, 'crypto.input', 'a must be');
  });
});

describe('concatBytes', () => {
  it('joins parts into a new buffer', () => {
    const a = new Uint8Array([1, 2]);
    const out = concatBytes(a, new Uint8Array(0), new Uint8Array([3]));
    expect(out).toEqual(new Uint8Array([1, 2, 3]));
    out[0] = 9;
    expect(a[0]).toBe(1);
    expect(concatBytes()).toEqual(new Uint8Array(0));
  });
  it('names the bad part', () => {
    expectThrows(() => concatBytes(new Uint8Array(1), null as unknown as Uint8Array), InputError, 'crypto.input', 'part 1');
  });
});

describe('utf8', () => {
  it('round-trips text including astral characters', () => {
    for (const s of ['', 'hello', 'Grüße', '日本語', '😀 ok', '\u0000']) expect(utf8Decode(utf8Encode(s))).toBe(s);
    expect(utf8Encode('é')).toEqual(new Uint8Array([0xc3, 0xa9]));
  });
  it('rejects invalid UTF-8: stray continuation, overlong, surrogate, truncated sequence, > U+10FFFF', () => {
    const bad = [[0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff]];
    for (const b of bad) expectThrows(() => utf8Decode(new Uint8Array(b)), EncodingError, 'crypto.encoding');
  });
  it('keeps a leading BOM instead of silently dropping it', () => {
    expect(utf8Decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]))).toBe('\ufeffA');
  });
  it('refuses to encode lone surrogates', () => {
    expectThrows(() => utf8Encode('a\ud800b'), EncodingError, 'crypto.encoding', 'surrogate');
    expectThrows(() => utf8Encode('\udc00'), EncodingError, 'crypto.encoding');
  });
  it('round-trips any well-formed string (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
        expect(utf8Decode(utf8Encode(s))).toBe(s);
      }),
    );
  });
});
