/** Shared plumbing of the two machines: refusals keep the input state (section 5: "no state change"). */
import { ZeroRoomError } from '../errors.ts';
import type { Effect, PeerKeyHex, RoomEvent, Step } from './types.ts';

export interface Out<S> {
  readonly state: S;
  readonly effects: readonly Effect[];
}

/**
 * Runs `f`; a ZeroRoomError (typed refusal: decode, crypto or room error) becomes `error` with the
 * untouched input state and the refusal effects; anything else is a bug and propagates.
 */
export function guarded<S>(state: S, f: () => Out<S>, onError: (e: ZeroRoomError) => readonly Effect[] = () => []): Step<S> {
  try {
    return f();
  } catch (e) {
    if (e instanceof ZeroRoomError) return { state, effects: onError(e), error: e };
    throw e;
  }
}

export const sendTo = (to: PeerKeyHex, bytes: Uint8Array): Effect => ({ kind: 'send', to, bytes });
export const closeLink = (to: PeerKeyHex, reason: string): Effect => ({ kind: 'close', to, reason });
export const emit = (event: RoomEvent): Effect => ({ kind: 'event', event });
