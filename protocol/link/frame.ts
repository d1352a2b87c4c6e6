/**
 * Encrypted data-channel frames (docs/PROTOCOL.md section 4, "Frames").
 *
 *   frame  = nonce(24) || box.after(inner, nonce, sessionSharedKey)
 *   nonce  = cookie(16) || channelId u16 (always 0) || overflow u16 || sequence u32   (big-endian)
 *
 * The nonce layout is Task-WebRTC.md's wrapped-data-channel nonce. Unlike Task-WebRTC (which allows
 * unordered channels and skips the check) our channel is ordered and reliable, so the receiver
 * REQUIRES the combined sequence number (CSN) to grow by exactly 1: a lower CSN is a replay, a higher
 * one a reorder/gap; both are refused before decryption, a bad MAC after. Pure functions over plain
 * state: nothing here keeps a socket or reads a clock.
 */
import { boxAfter, boxOpenAfter, equalBytes, type RandomBytes, type SharedKey } from '../../crypto/index.ts';
import { ZeroRoomError } from '../errors.ts';

export const NONCE_LEN = 24;
export const COOKIE_LEN = 16;
export const MAC_LEN = 16;
/** Portable data-channel message size (Task-WebRTC.md "Detecting the Maximum Message Size"). */
export const PORTABLE_FRAME = 16384;
/**
 * Largest frame we send or accept. A sender uses min(MAX_FRAME, the SCTP transport's
 * maxMessageSize) and never less than PORTABLE_FRAME: current engines announce 256 KiB or more, and
 * 64 KiB frames carry a 16 KiB message in one frame instead of two.
 */
export const MAX_FRAME = 65536;
const CSN_LIMIT = 2 ** 48;

export type FrameErrorCode = 'link.replay' | 'link.reorder' | 'link.auth' | 'link.cookie' | 'link.frame' | 'link.csn';

/** A data-channel frame that must not be processed; the link is torn down when one arrives. */
export class FrameError extends ZeroRoomError {
  constructor(code: FrameErrorCode, message: string) {
    super(code, message);
  }
}

export interface SendState {
  readonly cookie: Uint8Array;
  readonly csn: number;
}

export interface ReceiveState {
  readonly ownCookie: Uint8Array;
  /** Peer's cookie and next expected CSN, learnt from its first authentic frame. */
  readonly peerCookie: Uint8Array | null;
  readonly expectedCsn: number | null;
}

/** Fresh per-session sender state: random cookie, overflow 0, random 32-bit sequence number. */
export function newSendState(random: RandomBytes): SendState {
  const cookie = random(COOKIE_LEN);
  const s = random(4);
  const csn = (((s[0] ?? 0) << 24) >>> 0) + ((s[1] ?? 0) << 16) + ((s[2] ?? 0) << 8) + (s[3] ?? 0);
  return { cookie, csn };
}

export function newReceiveState(ownCookie: Uint8Array): ReceiveState {
  return { ownCookie, peerCookie: null, expectedCsn: null };
}

export function writeNonce(cookie: Uint8Array, csn: number): Uint8Array {
  const nonce = new Uint8Array(NONCE_LEN);
  nonce.set(cookie, 0);
  const v = new DataView(nonce.buffer);
  v.setUint16(16, 0);
  v.setUint16(18, Math.floor(csn / 2 ** 32));
  v.setUint32(20, csn >>> 0);
  return nonce;
}

export function sealFrame(state: SendState, key: SharedKey, inner: Uint8Array): { state: SendState; frame: Uint8Array } {
  if (state.csn + 1 >= CSN_LIMIT) throw new FrameError('link.csn', 'sequence number exhausted');
  const nonce = writeNonce(state.cookie, state.csn);
  const box = boxAfter(inner, nonce, key);
  const frame = new Uint8Array(NONCE_LEN + box.length);
  frame.set(nonce, 0);
  frame.set(box, NONCE_LEN);
  return { state: { cookie: state.cookie, csn: state.csn + 1 }, frame };
}

export function openFrame(state: ReceiveState, key: SharedKey, frame: Uint8Array): { state: ReceiveState; inner: Uint8Array } {
  if (frame.length < NONCE_LEN + MAC_LEN + 1) throw new FrameError('link.frame', `frame too short (${frame.length} bytes)`);
  if (frame.length > MAX_FRAME) throw new FrameError('link.frame', `frame too long (${frame.length} bytes)`);
  const nonce = frame.subarray(0, NONCE_LEN);
  const cookie = nonce.subarray(0, COOKIE_LEN);
  const v = new DataView(frame.buffer, frame.byteOffset, NONCE_LEN);
  if (v.getUint16(16) !== 0) throw new FrameError('link.frame', 'channel id must be 0');
  const csn = v.getUint16(18) * 2 ** 32 + v.getUint32(20);
  if (state.peerCookie === null) {
    if (equalBytes(cookie, state.ownCookie)) throw new FrameError('link.cookie', 'peer reuses our cookie');
    if (csn >= 2 ** 32) throw new FrameError('link.csn', 'first frame must have overflow 0');
  } else {
    if (!equalBytes(cookie, state.peerCookie)) throw new FrameError('link.cookie', 'peer cookie changed');
    const expected = state.expectedCsn ?? 0;
    if (csn < expected) throw new FrameError('link.replay', `replayed frame (csn ${csn} < ${expected})`);
    if (csn > expected) throw new FrameError('link.reorder', `frame out of order (csn ${csn} > ${expected})`);
  }
  let inner: Uint8Array;
  try {
    inner = boxOpenAfter(frame.subarray(NONCE_LEN), nonce, key);
  } catch (e) {
    throw new FrameError('link.auth', `frame failed authentication: ${(e as Error).message}`);
  }
  return { state: { ownCookie: state.ownCookie, peerCookie: cookie.slice(), expectedCsn: csn + 1 }, inner };
}
