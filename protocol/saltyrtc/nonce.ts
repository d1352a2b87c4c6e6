/**
 * The 24-byte SaltyRTC nonce (Protocol.md "Message Structure"): cookie (16), source (1),
 * destination (1), overflow number (2, big-endian), sequence number (4, big-endian). We treat
 * overflow and sequence as one 48-bit *combined sequence number* (csn), as the spec allows.
 */
import { DecodeError } from '../errors.ts';

export const NONCE_LENGTH = 24;
export const COOKIE_LENGTH = 16;
/** Combined sequence numbers are 48-bit: 0 <= csn < 2^48. */
export const CSN_LIMIT = 2 ** 48;
const SEQUENCE_LIMIT = 2 ** 32;

export interface Nonce {
  readonly cookie: Uint8Array;
  readonly source: number;
  readonly destination: number;
  /** overflow * 2^32 + sequence. */
  readonly csn: number;
}

/** Parse exactly 24 bytes. Every byte pattern is a syntactically valid nonce. */
export function decodeNonce(bytes: Uint8Array): Nonce {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('nonce: not bytes');
  if (bytes.length !== NONCE_LENGTH) throw new DecodeError(`nonce: expected ${NONCE_LENGTH} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, NONCE_LENGTH);
  const overflow = view.getUint16(18);
  const sequence = view.getUint32(20);
  return {
    cookie: bytes.slice(0, COOKIE_LENGTH),
    source: bytes[16]!,
    destination: bytes[17]!,
    csn: overflow * SEQUENCE_LIMIT + sequence,
  };
}

/** Build a nonce; throws RangeError on out-of-range fields (a bug in the caller, not wire input). */
export function encodeNonce(n: Nonce): Uint8Array {
  if (!(n.cookie instanceof Uint8Array) || n.cookie.length !== COOKIE_LENGTH) {
    throw new RangeError(`nonce: cookie must be ${COOKIE_LENGTH} bytes`);
  }
  checkAddress(n.source, 'source');
  checkAddress(n.destination, 'destination');
  if (!Number.isSafeInteger(n.csn) || n.csn < 0 || n.csn >= CSN_LIMIT) throw new RangeError(`nonce: csn ${n.csn} outside [0, 2^48)`);
  const out = new Uint8Array(NONCE_LENGTH);
  out.set(n.cookie, 0);
  out[16] = n.source;
  out[17] = n.destination;
  const view = new DataView(out.buffer);
  view.setUint16(18, Math.floor(n.csn / SEQUENCE_LIMIT));
  view.setUint32(20, n.csn % SEQUENCE_LIMIT);
  return out;
}

function checkAddress(a: number, name: string): void {
  if (!Number.isInteger(a) || a < 0 || a > 0xff) throw new RangeError(`nonce: ${name} address ${a} outside 0x00..0xff`);
}

/** Overflow number part of a csn (the spec requires 0 on the first message from a peer). */
export function csnOverflow(csn: number): number {
  return Math.floor(csn / SEQUENCE_LIMIT);
}

/** First outgoing csn: overflow 0, sequence cryptographically random (Protocol.md "Sending"). */
export function initialCsn(random: (n: number) => Uint8Array): number {
  const b = random(4);
  if (b.length !== 4) throw new RangeError('initialCsn: random source returned the wrong length');
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
}

/** The send-error message id: source, destination, overflow, sequence (nonce bytes 16..24). */
export function messageIdOf(nonce: Uint8Array): Uint8Array {
  if (nonce.length < NONCE_LENGTH) throw new RangeError('messageIdOf: need the 24-byte nonce');
  return nonce.slice(COOKIE_LENGTH, NONCE_LENGTH);
}

export const SERVER_ADDRESS = 0x00;
export const INITIATOR_ADDRESS = 0x01;
export const FIRST_RESPONDER = 0x02;
export const LAST_RESPONDER = 0xff;

export function isResponderAddress(a: number): boolean {
  return Number.isInteger(a) && a >= FIRST_RESPONDER && a <= LAST_RESPONDER;
}
