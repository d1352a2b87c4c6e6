/**
 * Receiving one file (docs/PROTOCOL.md 5.17.2-5.17.4) as a pure state machine: the driver parses a
 * chunk frame, asks `chunkArrived` whether to open it, opens it (async AEAD), and reports
 * `chunkOpened` or `chunkRefused`. Effects say what to store, what to send and when to verify the
 * whole file. `next` (the first chunk not stored) is all a resume needs: it is persisted with the
 * stored chunks and `resumeReceive` asks for the rest.
 */
import type { FileControl } from './control.ts';
import { MAX_GRANT } from './control.ts';
import { FileError, type FileErrorCode } from './errors.ts';
import { chunkCount, type FileId, type FileOffer } from './offer.ts';

/** Refusals of one chunk index before the transfer is given up (`file.corrupt`). */
export const MAX_CHUNK_RETRIES = 3;

export interface ReceiveState {
  readonly file: FileId;
  readonly count: number;
  /** First chunk not yet stored. */
  readonly next: number;
  /** End (exclusive) of what we granted the sender. */
  readonly granted: number;
  /** Refusals of chunk `next` so far. */
  readonly retries: number;
  /** We asked again from `next`: chunks after it still in flight are dropped without a new request. */
  readonly rewanted: boolean;
  readonly status: 'receiving' | 'verifying' | 'done' | 'cancelled';
}

export type ReceiveEffect =
  | { readonly kind: 'send'; readonly msg: FileControl }
  | { readonly kind: 'store'; readonly index: number; readonly plaintext: Uint8Array }
  | { readonly kind: 'progress'; readonly next: number; readonly count: number }
  | { readonly kind: 'verify' }
  | { readonly kind: 'refused'; readonly error: FileError }
  | { readonly kind: 'finished'; readonly ok: boolean; readonly code?: FileErrorCode };

export interface ReceiveStep {
  readonly state: ReceiveState;
  readonly effects: readonly ReceiveEffect[];
}

const want = (s: ReceiveState, from: number, window: number): { granted: number; effect: ReceiveEffect } => {
  const to = Math.min(s.count, from + Math.min(window, MAX_GRANT));
  return { granted: to, effect: { kind: 'send', msg: { type: 'file-want', file: s.file, from, to } } };
};

/** Accept an offer (or resume one whose first `next` chunks are stored): ask for the first grant. */
export function startReceive(offer: FileOffer, next = 0, window = MAX_GRANT): ReceiveStep {
  const count = chunkCount(offer.size);
  if (!Number.isInteger(next) || next < 0 || next > count) throw new RangeError(`resume point ${next} outside [0, ${count}]`);
  const s: ReceiveState = { file: offer.file, count, next, granted: next, retries: 0, rewanted: false, status: 'receiving' };
  if (next === count) return { state: { ...s, status: 'verifying' }, effects: [{ kind: 'verify' }] };
  const w = want(s, next, window);
  return { state: { ...s, granted: w.granted }, effects: [w.effect] };
}

/** A new session (link drop, reload, restart): ask again from the last verified chunk. */
export function resumeReceive(s: ReceiveState, window = MAX_GRANT): ReceiveStep {
  if (s.status !== 'receiving') return { state: s, effects: [] };
  const w = want(s, s.next, window);
  return { state: { ...s, granted: w.granted, rewanted: true }, effects: [w.effect] };
}

/**
 * A parsed chunk frame of this file arrived. Returns whether to open it; an index other than `next`
 * is refused here (before any decryption) and, unless we already asked again, asked for again.
 */
export function chunkArrived(s: ReceiveState, index: number, window = MAX_GRANT): ReceiveStep & { open: boolean } {
  if (s.status !== 'receiving') return { state: s, effects: [], open: false };
  if (index === s.next && index < s.granted) return { state: s, effects: [], open: true };
  if (index < s.next) return { state: s, effects: [], open: false }; // a duplicate (re-sent after a resume)
  if (s.rewanted) return { state: s, effects: [], open: false }; // in flight before our new request
  // Not counted as a refusal of chunk `next` (MAX_CHUNK_RETRIES): that chunk has not been seen.
  const error = new FileError('file.order', `chunk ${index} while expecting ${s.next} (granted up to ${s.granted})`);
  const w = want(s, s.next, window);
  return { state: { ...s, rewanted: true, granted: w.granted }, effects: [{ kind: 'refused', error }, w.effect], open: false };
}

/** Chunk `index` (= next) authenticated: store it, grant more, verify at the end. */
export function chunkOpened(s: ReceiveState, index: number, plaintext: Uint8Array, window = MAX_GRANT): ReceiveStep {
  if (s.status !== 'receiving' || index !== s.next) throw new RangeError(`chunkOpened(${index}) while expecting ${s.next}`);
  const next = index + 1;
  const effects: ReceiveEffect[] = [
    { kind: 'store', index, plaintext },
    { kind: 'progress', next, count: s.count },
  ];
  let state: ReceiveState = { ...s, next, retries: 0, rewanted: false };
  if (next === s.count) return { state: { ...state, status: 'verifying' }, effects: [...effects, { kind: 'verify' }] };
  // Grant the next window once half of the current one is stored (one request per half window).
  if (s.granted - next <= Math.floor(Math.min(window, MAX_GRANT) / 2)) {
    const w = want(state, s.granted, window);
    if (w.granted > s.granted) {
      state = { ...state, granted: w.granted };
      effects.push(w.effect);
    }
  }
  return { state, effects };
}

/** Chunk `next` was refused (file.auth, file.chunk-size, ...): ask again, or give up after 3. */
export function chunkRefused(s: ReceiveState, error: FileError, window = MAX_GRANT): ReceiveStep {
  if (s.status !== 'receiving') return { state: s, effects: [] };
  return refuse(s, error, window);
}

function refuse(s: ReceiveState, error: FileError, window: number): ReceiveStep {
  const retries = s.retries + 1;
  if (retries >= MAX_CHUNK_RETRIES) return cancel({ ...s, retries }, 'file.corrupt', [{ kind: 'refused', error }]);
  const w = want(s, s.next, window);
  return { state: { ...s, retries, rewanted: true, granted: w.granted }, effects: [{ kind: 'refused', error }, w.effect] };
}

/** The stored file was hashed: done, or deleted and cancelled (`file.hash`). */
export function verified(s: ReceiveState, ok: boolean): ReceiveStep {
  if (s.status !== 'verifying') return { state: s, effects: [] };
  if (ok) return { state: { ...s, status: 'done' }, effects: [{ kind: 'finished', ok: true }] };
  return cancel(s, 'file.hash', [{ kind: 'refused', error: new FileError('file.hash', 'the file does not match the hash of its offer') }]);
}

/** We stop (the user cancelled, the sender was removed, the limit): tell the sender. */
export function cancelReceive(s: ReceiveState, code: FileErrorCode): ReceiveStep {
  if (s.status === 'done' || s.status === 'cancelled') return { state: s, effects: [] };
  return cancel(s, code, []);
}

/** The sender cancelled (or the owner stopped relaying). */
export function senderCancelled(s: ReceiveState, code: FileErrorCode): ReceiveStep {
  if (s.status === 'done' || s.status === 'cancelled') return { state: s, effects: [] };
  return { state: { ...s, status: 'cancelled' }, effects: [{ kind: 'finished', ok: false, code }] };
}

function cancel(s: ReceiveState, code: FileErrorCode, before: ReceiveEffect[]): ReceiveStep {
  return {
    state: { ...s, status: 'cancelled' },
    effects: [...before, { kind: 'send', msg: { type: 'file-cancel', file: s.file, code } }, { kind: 'finished', ok: false, code }],
  };
}
