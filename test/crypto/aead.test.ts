import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  aeadOpen,
  aeadSeal,
  asAeadKey,
  AuthError,
  fromHex,
  generateAeadKey,
  InputError,
  KeyError,
  toHex,
  webCryptoAead,
  type AeadKey,
} from '../../crypto/index.ts';
import { nodeAead } from '../../signaling/aead-node.ts';
import { expectRejects } from './expect-error.ts';

const backends = [webCryptoAead, nodeAead];

describe('AES-256-GCM (crypto/aead.ts)', () => {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14 (256-bit key of zeros, 96-bit IV of zeros).
  it.each(backends)('matches the GCM specification test cases 13 and 14 ($name)', async (b) => {
    const key = asAeadKey(new Uint8Array(32));
    const iv = new Uint8Array(12);
    expect(toHex(await aeadSeal(b, key, iv, new Uint8Array(0), new Uint8Array(0)))).toBe('530f8afbc74536b9a963b4f1c4cb738b');
    expect(toHex(await aeadSeal(b, key, iv, new Uint8Array(0), new Uint8Array(16)))).toBe(
      'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919',
    );
    expect(
      await aeadOpen(b, key, iv, new Uint8Array(0), fromHex('cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919')),
    ).toEqual(new Uint8Array(16));
  });

  it('both backends give the same bytes and open each other (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 64 }), async (m, ad) => {
        const key = generateAeadKey();
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const a = await aeadSeal(webCryptoAead, key, iv, ad, m);
        const b = await aeadSeal(nodeAead, key, iv, ad, m);
        expect(b).toEqual(a);
        expect(a.byteOffset).toBe(0);
        expect(await aeadOpen(nodeAead, key, iv, ad, a)).toEqual(m);
        expect(await aeadOpen(webCryptoAead, key, iv, ad, b)).toEqual(m);
      }),
      { numRuns: 40 },
    );
  });

  it.each(backends)('fails closed: any changed byte of ciphertext, nonce or associated data, truncation, wrong key ($name)', async (b) => {
    const key = generateAeadKey();
    const iv = new Uint8Array(12).fill(7);
    const ad = new Uint8Array([1, 2, 3]);
    const c = await aeadSeal(b, key, iv, ad, new Uint8Array(100).fill(9));
    const flip = (x: Uint8Array, i: number): Uint8Array => {
      const y = x.slice();
      y[i] = (y[i] as number) ^ 1;
      return y;
    };
    for (const i of [0, 50, 99, 100, 115]) await expectRejects(aeadOpen(b, key, iv, ad, flip(c, i)), AuthError, 'crypto.auth');
    await expectRejects(aeadOpen(b, key, flip(iv, 11), ad, c), AuthError, 'crypto.auth');
    await expectRejects(aeadOpen(b, key, iv, flip(ad, 0), c), AuthError, 'crypto.auth');
    await expectRejects(aeadOpen(b, key, iv, ad, c.subarray(0, 115)), AuthError, 'crypto.auth');
    await expectRejects(aeadOpen(b, key, iv, ad, c.subarray(0, 10)), AuthError, 'crypto.auth');
    await expectRejects(aeadOpen(b, generateAeadKey(), iv, ad, c), AuthError, 'crypto.auth');
  });

  it('checks key and nonce lengths before the backend runs', async () => {
    expect(() => asAeadKey(new Uint8Array(16))).toThrow(KeyError);
    const key = generateAeadKey();
    await expectRejects(
      aeadSeal(nodeAead, new Uint8Array(31) as AeadKey, new Uint8Array(12), new Uint8Array(0), new Uint8Array(1)),
      KeyError,
      'crypto.key',
    );
    await expectRejects(aeadSeal(nodeAead, key, new Uint8Array(24), new Uint8Array(0), new Uint8Array(1)), InputError, 'crypto.input');
    await expectRejects(aeadOpen(nodeAead, key, new Uint8Array(8), new Uint8Array(0), new Uint8Array(20)), InputError, 'crypto.input');
  });
});
