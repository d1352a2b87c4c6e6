/**
 * The only ambient input of crypto/: a source of random bytes. Wrappers that need randomness take
 * one as a parameter (default `systemRandom`) so tests and state machines can pass their own.
 */
export type RandomBytes = (n: number) => Uint8Array;

// WebCrypto caps one getRandomValues call at 65536 bytes.
const MAX_CHUNK = 65536;

/** CSPRNG of the platform: `globalThis.crypto.getRandomValues` (browser and Node >= 19). */
export const systemRandom: RandomBytes = (n: number): Uint8Array<ArrayBuffer> => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`random: bad length ${n}`);
  const out = new Uint8Array(new ArrayBuffer(n));
  for (let at = 0; at < n; at += MAX_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(at, Math.min(n, at + MAX_CHUNK)));
  }
  return out;
};
