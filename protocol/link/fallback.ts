/**
 * Fallback through the signaling server (docs/PROTOCOL.md 4.8): when no ICE pair works, a session's
 * frames (4.4) travel as SaltyRTC `application` messages on the session's own SaltyRTC channel.
 * This module holds the constants and the one strict decoder of those messages; the transport
 * switch lives in session.ts, the signaling side in member.ts / owner.ts.
 */
import { ZeroRoomError } from '../errors.ts';
import { Fields, type MsgValue } from '../msgpack.ts';
import { encodeApplication } from '../saltyrtc/peer-messages.ts';
import { MAC_LEN, MAX_FRAME, NONCE_LEN } from './frame.ts';

/** The member falls back when its data channel is not open this long after the client handshake. */
export const FALLBACK_AFTER_MS = 10_000;
/** A member in fallback tries a direct path again this long after the fallback began, doubling... */
export const PROBE_AFTER_MS = 30_000;
/** ... up to this interval. */
export const PROBE_MAX_MS = 15 * 60_000;
/** While the WebSocket buffers more than the high watermark, look again this often (no low-water event). */
export const FALLBACK_POLL_MS = 50;

const MIN_FRAME = NONCE_LEN + MAC_LEN + 1;

export class FallbackError extends ZeroRoomError {
  constructor(message: string) {
    super('link.fallback', message);
  }
}

export type FallbackMessage = { readonly kind: 'start' } | { readonly kind: 'frame'; readonly frame: Uint8Array };

/** `application` data `{link: "fallback"}`: the member moves the session onto the server. */
export const encodeFallbackStart = (): Uint8Array => encodeApplication({ link: 'fallback' });

/** `application` data = one frame of 4.4 as msgpack bin. */
export const encodeFallbackFrame = (frame: Uint8Array): Uint8Array => encodeApplication(frame);

/** The data of an `application` message on a link session; anything else is FallbackError. */
export function decodeFallbackData(data: MsgValue): FallbackMessage {
  if (data.t === 'bin') {
    if (data.v.length < MIN_FRAME || data.v.length > MAX_FRAME)
      throw new FallbackError(`fallback frame of ${data.v.length} bytes (must be ${MIN_FRAME}..${MAX_FRAME})`);
    return { kind: 'frame', frame: data.v };
  }
  if (data.t !== 'map') throw new FallbackError(`application data must be a frame or {link: "fallback"}, got ${data.t}`);
  let link: string;
  try {
    const f = Fields.of(data, 'fallback').only(['link']);
    link = f.str('link', 16);
  } catch (e) {
    throw new FallbackError(`malformed fallback message: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (link !== 'fallback') throw new FallbackError(`unknown link message "${link}"`);
  return { kind: 'start' };
}

/** Next probe delay after `n` failed probes (PROBE_AFTER_MS doubling, capped at PROBE_MAX_MS). */
export function probeDelay(n: number, first = PROBE_AFTER_MS): number {
  return Math.min(PROBE_MAX_MS, first * 2 ** Math.min(n, 20));
}
