/**
 * ICE restart of an open link session (docs/PROTOCOL.md 4.6): the restart id that names a session,
 * the deadlines, and the restart's signaling as a pure machine. The offer, answer and candidates of
 * a restart travel through a new SaltyRTC session (ICE-restart task, peer-messages.ts) while the
 * data channel, its frame keys and sequence numbers stay those of the existing session.
 *
 * Order rules (the peer connection must never see a description or candidate out of order):
 * - owner (offerer): sends its restart offer, then its candidates (earlier ones wait); accepts one
 *   answer, then candidates;
 * - member (answerer): accepts one offer, then candidates; sends its answer, then its candidates.
 * Anything else (a second offer or answer, candidates before the description, an answer sent to
 * the answerer, 'handover') is an IceRestartError; the restart then fails and the link falls back
 * to a new peer connection.
 */
import { concatBytes, sha256, utf8Encode, type SharedKey } from '../../crypto/index.ts';
import { ZeroRoomError } from '../errors.ts';
import { RESTART_ID_LEN, type IceCandidate, type TaskMessage } from '../saltyrtc/peer-messages.ts';

/** Member: from the first sign of ICE trouble to ICE connected again; after it, a new peer connection. */
export const MEMBER_RESTART_DEADLINE_MS = 12_000;
/**
 * Owner: from ICE trouble or a restart request (re-armed) to ICE connected again; after it the
 * session ends. Longer than the member's, so the member (who drives the fallback) always decides first.
 */
export const OWNER_RESTART_DEADLINE_MS = 20_000;

export type IceRestartErrorCode = 'link.ice-restart' | 'link.ice-restart-timeout';

export class IceRestartError extends ZeroRoomError {
  constructor(code: IceRestartErrorCode, message: string) {
    super(code, message);
  }
}

const ID_CONTEXT = utf8Encode('zeroroom link ice-restart id v1');

/**
 * Names a link session in a restart request: the first 16 bytes of SHA-256(context || K), K the
 * session's frame key. Only the two ends know K; the id reveals nothing about it.
 */
export function restartIdOf(key: SharedKey): Uint8Array {
  return sha256(concatBytes(ID_CONTEXT, key)).slice(0, RESTART_ID_LEN);
}

export type RestartRole = 'offerer' | 'answerer';

export interface RestartState {
  readonly role: RestartRole;
  /** Our description has gone out. */
  readonly localSent: boolean;
  /** The peer's description has been applied (handed to the peer connection). */
  readonly remoteApplied: boolean;
  /** Local candidates gathered before our description went out, in order. */
  readonly held: readonly IceCandidate[];
}

export type RestartEvent =
  | { readonly type: 'local-description'; readonly sdpType: 'offer' | 'answer'; readonly sdp: string }
  | { readonly type: 'local-candidate'; readonly candidate: IceCandidate }
  | { readonly type: 'remote'; readonly message: TaskMessage };

export type RestartEffect =
  /** Send to the peer through the restart's SaltyRTC session. */
  | { readonly type: 'send-description'; readonly sdpType: 'offer' | 'answer'; readonly sdp: string }
  | { readonly type: 'send-candidate'; readonly candidate: IceCandidate }
  /** Hand to the peer connection. */
  | { readonly type: 'apply-description'; readonly sdpType: 'offer' | 'answer'; readonly sdp: string }
  | { readonly type: 'apply-candidate'; readonly candidate: IceCandidate };

export interface RestartStep {
  readonly state: RestartState;
  readonly effects: readonly RestartEffect[];
}

export function newRestart(role: RestartRole): RestartState {
  return { role, localSent: false, remoteApplied: false, held: [] };
}

/** Both descriptions are through: the restart is done once ICE is connected. */
export function descriptionsDone(s: RestartState): boolean {
  return s.localSent && s.remoteApplied;
}

const fail = (message: string): never => {
  throw new IceRestartError('link.ice-restart', message);
};

export function restartStep(s: RestartState, ev: RestartEvent): RestartStep {
  const own = s.role === 'offerer' ? 'offer' : 'answer';
  const theirs = s.role === 'offerer' ? 'answer' : 'offer';
  switch (ev.type) {
    case 'local-description': {
      // simple-peer may start a redundant negotiation; one description per restart goes out (4.3).
      if (s.localSent || ev.sdpType !== own) return { state: s, effects: [] };
      // The answerer answers only after applying the offer.
      if (s.role === 'answerer' && !s.remoteApplied) return fail('local answer before the restart offer');
      const effects: RestartEffect[] = [{ type: 'send-description', sdpType: own, sdp: ev.sdp }];
      for (const candidate of s.held) effects.push({ type: 'send-candidate', candidate });
      return { state: { ...s, localSent: true, held: [] }, effects };
    }
    case 'local-candidate':
      if (!s.localSent) return { state: { ...s, held: [...s.held, ev.candidate] }, effects: [] };
      return { state: s, effects: [{ type: 'send-candidate', candidate: ev.candidate }] };
    case 'remote':
      return onRemote(s, ev.message, theirs);
  }
}

function onRemote(s: RestartState, m: TaskMessage, theirs: 'offer' | 'answer'): RestartStep {
  switch (m.type) {
    case 'offer':
    case 'answer': {
      if (m.type !== theirs) return fail(`restart ${m.type} sent to the ${s.role}`);
      const desc = m.type === 'offer' ? m.offer : m.answer;
      if (desc.type !== m.type) return fail(`restart ${m.type} carries an sdp of type ${desc.type}`);
      if (s.remoteApplied) return fail(`second restart ${m.type}`);
      // The offerer's answer must answer the offer it sent.
      if (s.role === 'offerer' && !s.localSent) return fail('restart answer before our offer');
      return { state: { ...s, remoteApplied: true }, effects: [{ type: 'apply-description', sdpType: m.type, sdp: desc.sdp }] };
    }
    case 'candidates': {
      // A candidate of the new ICE generation before its description would reach the old one.
      if (!s.remoteApplied) return fail(`restart candidates before the ${theirs}`);
      const effects: RestartEffect[] = [];
      for (const c of m.candidates) if (c !== null) effects.push({ type: 'apply-candidate', candidate: c });
      return { state: s, effects };
    }
    case 'handover':
      return fail("'handover' in an ICE restart");
  }
}
