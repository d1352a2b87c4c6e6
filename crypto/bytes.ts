import { EncodingError, InputError } from './errors.ts';

/** Bytes we hand out: always a fresh, plain ArrayBuffer-backed copy (RTCDataChannel.send wants that). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** Throws InputError unless `value` is a Uint8Array; `name` names the parameter in the message. */
export function requireBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InputError(`${name} must be a Uint8Array`);
}

/** A copy of `bytes` in its own ArrayBuffer (never a view into Themis' wasm heap or a Buffer pool). */
export function copyBytes(bytes: Uint8Array): Bytes {
  const out = new Uint8Array(new ArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}

/**
 * Constant-time equality: the time depends only on the lengths, never on where the first
 * difference is. Lengths are not secret here (keys and MACs have fixed public lengths).
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  requireBytes(a, 'a');
  requireBytes(b, 'b');
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Bytes {
  let total = 0;
  parts.forEach((p, i) => {
    requireBytes(p, `part ${i}`);
    total += p.length;
  });
  const out = new Uint8Array(new ArrayBuffer(total));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Wipes a temporary secret in place (best effort: JS may have copied it elsewhere). */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}

function checkLength(decoded: Bytes, expectedLen: number | undefined, what: string): Bytes {
  if (expectedLen !== undefined && decoded.length !== expectedLen) {
    throw new EncodingError(`${what}: expected ${expectedLen} bytes, got ${decoded.length}`);
  }
  return decoded;
}

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  requireBytes(bytes, 'bytes');
  let s = '';
  for (const b of bytes) s += (HEX[b >> 4] as string) + (HEX[b & 15] as string);
  return s;
}

function hexNibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}

/** Strict hex: even length, only [0-9a-fA-F], no prefix or whitespace; optional exact byte length. */
export function fromHex(s: string, expectedLen?: number): Bytes {
  if (typeof s !== 'string') throw new EncodingError('hex: input must be a string');
  if (s.length % 2 !== 0) throw new EncodingError('hex: odd length');
  const out = new Uint8Array(new ArrayBuffer(s.length / 2));
  for (let i = 0; i < out.length; i++) {
    const hi = hexNibble(s.charCodeAt(2 * i));
    const lo = hexNibble(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new EncodingError(`hex: invalid character at offset ${hi < 0 ? 2 * i : 2 * i + 1}`);
    out[i] = (hi << 4) | lo;
  }
  return checkLength(out, expectedLen, 'hex');
}

// RFC 4648 section 5 alphabet, no padding (section 3.2: we never emit or accept '=').
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

export function toBase64url(bytes: Uint8Array): string {
  requireBytes(bytes, 'bytes');
  let s = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    s += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    s += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    s += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]!;
  }
  return s;
}

/**
 * Strict unpadded base64url: rejects '=', '+', '/', whitespace, a length of 1 mod 4, and
 * non-canonical encodings (unused trailing bits not zero, RFC 4648 section 3.5), so every byte
 * string has exactly one accepted text form.
 */
export function fromBase64url(s: string, expectedLen?: number): Bytes {
  if (typeof s !== 'string') throw new EncodingError('base64url: input must be a string');
  if (s.length % 4 === 1) throw new EncodingError('base64url: impossible length');
  const values = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? (B64URL_INDEX[c] as number) : -1;
    if (v < 0) throw new EncodingError(`base64url: invalid character at offset ${i}`);
    values[i] = v;
  }
  const outLen = Math.floor((s.length * 3) / 4);
  const out = new Uint8Array(new ArrayBuffer(outLen));
  let o = 0;
  let i = 0;
  for (; i + 4 <= s.length; i += 4) {
    const n = (values[i]! << 18) | (values[i + 1]! << 12) | (values[i + 2]! << 6) | values[i + 3]!;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  const rest = s.length - i;
  if (rest === 2) {
    if ((values[i + 1]! & 15) !== 0) throw new EncodingError('base64url: non-canonical trailing bits');
    out[o++] = (values[i]! << 2) | (values[i + 1]! >> 4);
  } else if (rest === 3) {
    if ((values[i + 2]! & 3) !== 0) throw new EncodingError('base64url: non-canonical trailing bits');
    const n = (values[i]! << 10) | (values[i + 1]! << 4) | (values[i + 2]! >> 2);
    out[o++] = n >> 8;
    out[o++] = n & 255;
  }
  return checkLength(out, expectedLen, 'base64url');
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// In /u mode a surrogate pair is one code point, so this matches only unpaired surrogates.
const LONE_SURROGATE = /\p{Cs}/u;

export function utf8Encode(s: string): Bytes {
  if (typeof s !== 'string') throw new EncodingError('utf8: input must be a string');
  // TextEncoder replaces lone surrogates with U+FFFD; refuse them instead so encode/decode round-trips.
  if (LONE_SURROGATE.test(s)) throw new EncodingError('utf8: string contains a lone surrogate');
  return copyBytes(utf8Encoder.encode(s));
}

/** Strict UTF-8: invalid sequences, overlongs and surrogates throw; a leading BOM is kept as U+FEFF. */
export function utf8Decode(bytes: Uint8Array): string {
  requireBytes(bytes, 'bytes');
  try {
    return utf8Decoder.decode(bytes);
  } catch (e) {
    throw new EncodingError('utf8: invalid UTF-8', { cause: e });
  }
}
