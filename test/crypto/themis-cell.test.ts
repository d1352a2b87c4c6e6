import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  asSymmetricKey,
  AuthError,
  cellOpen,
  cellSeal,
  concatBytes,
  generateSymmetricKey,
  initCrypto,
  InputError,
  KeyError,
  MAX_CONTEXT_BYTES,
  SYMMETRIC_KEY_LENGTH,
  utf8Decode,
  utf8Encode,
  type SymmetricKey,
} from '../../crypto/index.ts';
import vectors from '../vectors/themis.json' with { type: 'json' };
import { expectThrows, flipByte } from './expect-error.ts';

const ctx = utf8Encode('room:abc|epoch:1');

beforeAll(async () => {
  await initCrypto();
});

describe('symmetric keys', () => {
  it('generateSymmetricKey uses the given random source and returns 32 bytes', () => {
    const fixed = (n: number) => new Uint8Array(n).fill(5);
    expect(generateSymmetricKey(fixed)).toEqual(new Uint8Array(32).fill(5));
    const a = generateSymmetricKey();
    expect(a.length).toBe(SYMMETRIC_KEY_LENGTH);
    expect(a).not.toEqual(generateSymmetricKey());
  });
  it('rejects a random source that returns the wrong length', () => {
    expectThrows(() => generateSymmetricKey((n) => new Uint8Array(n - 1)), KeyError, 'crypto.key');
  });
  it('asSymmetricKey accepts exactly 32 bytes and copies', () => {
    const raw = new Uint8Array(32).fill(1);
    const key = asSymmetricKey(raw);
    raw[0] = 9;
    expect(key[0]).toBe(1);
    for (const n of [0, 1, 16, 31, 33, 64]) {
      expectThrows(() => asSymmetricKey(new Uint8Array(n)), KeyError, 'crypto.key', `got ${n}`);
    }
  });
});

describe('cellSeal / cellOpen', () => {
  it('round-trips and the output does not contain the plaintext', () => {
    const key = generateSymmetricKey();
    const m = utf8Encode('hello room, this is a message');
    const sealed = cellSeal(key, m, ctx);
    expect(Buffer.from(sealed).includes(Buffer.from(m))).toBe(false);
    expect(cellOpen(key, sealed, ctx)).toEqual(m);
    expect(sealed.buffer).toBeInstanceOf(ArrayBuffer);
    expect(cellSeal(key, m, ctx)).not.toEqual(sealed);
  });
  it('rejects the wrong key and the wrong context', () => {
    const key = generateSymmetricKey();
    const sealed = cellSeal(key, utf8Encode('x'), ctx);
    expectThrows(() => cellOpen(generateSymmetricKey(), sealed, ctx), AuthError, 'crypto.auth');
    expectThrows(() => cellOpen(key, sealed, utf8Encode('room:abc|epoch:2')), AuthError, 'crypto.auth');
  });
  it('refuses short keys that Themis itself would accept', () => {
    const short = new Uint8Array(1) as SymmetricKey;
    expectThrows(() => cellSeal(short, utf8Encode('x'), ctx), KeyError, 'crypto.key', 'expected 32 bytes');
    expectThrows(() => cellOpen(short, new Uint8Array(60), ctx), KeyError, 'crypto.key');
  });
  it('rejects bad input: empty plaintext, empty/oversized context, non-bytes, trailing bytes', () => {
    const key = generateSymmetricKey();
    expectThrows(() => cellSeal(key, new Uint8Array(0), ctx), InputError, 'crypto.input', 'plaintext');
    expectThrows(() => cellSeal(key, utf8Encode('x'), new Uint8Array(0)), InputError, 'crypto.input', 'context');
    expectThrows(() => cellSeal(key, utf8Encode('x'), new Uint8Array(MAX_CONTEXT_BYTES + 1)), InputError, 'crypto.input', 'context');
    expectThrows(() => cellSeal(key, 'x' as unknown as Uint8Array, ctx), InputError, 'crypto.input');
    expectThrows(() => cellOpen(key, new Uint8Array(0), ctx), AuthError, 'crypto.auth');
    const sealed = cellSeal(key, utf8Encode('x'), ctx);
    expectThrows(() => cellOpen(key, sealed, new Uint8Array(0)), InputError, 'crypto.input');
    expectThrows(() => cellOpen(key, concatBytes(sealed, new Uint8Array([0])), ctx), AuthError, 'crypto.auth');
  });
  it('round-trip, any single-byte change and any truncation (property)', () => {
    const key = generateSymmetricKey();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (m, context, pos, mask) => {
          const sealed = cellSeal(key, m, context);
          expect(cellOpen(key, sealed, context)).toEqual(m);
          expectThrows(() => cellOpen(key, flipByte(sealed, pos % sealed.length, mask), context), AuthError, 'crypto.auth');
          expectThrows(() => cellOpen(key, sealed.subarray(0, pos % sealed.length), context), AuthError, 'crypto.auth');
          expectThrows(() => cellOpen(key, sealed, flipByte(context, pos % context.length, mask)), AuthError, 'crypto.auth');
        },
      ),
      { numRuns: 200 },
    );
  });
  // Themis alone accepts an appended byte about once in 200 seals; the wrapper checks the header length.
  it('rejects any trailing bytes, for any key and message (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 8 }), (m, extra) => {
        const key = generateSymmetricKey();
        const sealed = cellSeal(key, m, ctx);
        expectThrows(() => cellOpen(key, concatBytes(sealed, extra), ctx), AuthError, 'crypto.auth');
      }),
      { numRuns: 3000 },
    );
  });
  it('does not mutate its inputs (property)', () => {
    const key = generateSymmetricKey();
    const keyCopy = key.slice();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), (m) => {
        const mCopy = m.slice();
        const sealed = cellSeal(key, m, ctx);
        const sealedCopy = sealed.slice();
        cellOpen(key, sealed, ctx);
        expect(m).toEqual(mCopy);
        expect(sealed).toEqual(sealedCopy);
        expect(key).toEqual(keyCopy);
      }),
      { numRuns: 30 },
    );
  });
  it('opens a cell produced by Themis core (documentation example, scell_seal_string_echo)', () => {
    const v = vectors.secureCellSeal;
    const key = asSymmetricKey(utf8Encode(v.keyUtf8));
    const sealed = new Uint8Array(Buffer.from(v.sealedBase64, 'base64'));
    expect(utf8Decode(cellOpen(key, sealed, utf8Encode(v.contextUtf8)))).toBe(v.plaintextUtf8);
    expectThrows(() => cellOpen(key, sealed, utf8Encode('other context')), AuthError, 'crypto.auth');
  });
});
