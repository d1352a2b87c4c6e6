/**
 * Client-to-client SaltyRTC messages (Protocol.md "Client-to-Client Messages") and the WebRTC
 * task's messages (Task-WebRTC.md: offer, answer, candidates, handover). One encoder and one
 * strict decoder per message; decoders go through `Fields` and never cast wire data.
 */
import { DecodeError } from '../errors.ts';
import { encode, Fields, type Encodable, type MsgValue } from '../msgpack.ts';

export const WEBRTC_TASK = 'v1.webrtc.tasks.saltyrtc.org';
const KEY_LEN = 32;
const COOKIE_LEN = 16;
const MAX_SDP = 64 * 1024;
const MAX_CANDIDATE = 4096;
const MAX_CANDIDATES = 256;
const MAX_TASKS = 16;

export interface TokenMessage {
  readonly type: 'token';
  readonly key: Uint8Array;
}
export interface KeyMessage {
  readonly type: 'key';
  readonly key: Uint8Array;
}
/** 'auth' towards an initiator (responder offers `tasks`). */
export interface AuthFromResponder {
  readonly type: 'auth';
  readonly yourCookie: Uint8Array;
  readonly tasks: readonly string[];
  readonly data: ReadonlyMap<string, MsgValue>;
}
/** 'auth' towards a responder (initiator chose `task`). */
export interface AuthFromInitiator {
  readonly type: 'auth';
  readonly yourCookie: Uint8Array;
  readonly task: string;
  readonly data: ReadonlyMap<string, MsgValue>;
}
export interface CloseMessage {
  readonly type: 'close';
  readonly reason: number;
}
export interface ApplicationMessage {
  readonly type: 'application';
  readonly data: MsgValue;
}
export interface SessionDescription {
  readonly type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  readonly sdp: string;
}
export interface OfferMessage {
  readonly type: 'offer';
  readonly offer: SessionDescription;
}
export interface AnswerMessage {
  readonly type: 'answer';
  readonly answer: SessionDescription;
}
export interface IceCandidate {
  readonly candidate: string;
  readonly sdpMid: string | null;
  readonly sdpMLineIndex: number | null;
}
/** A `null` entry marks end-of-candidates (Task-WebRTC.md 'candidates'). */
export interface CandidatesMessage {
  readonly type: 'candidates';
  readonly candidates: readonly (IceCandidate | null)[];
}
export interface HandoverMessage {
  readonly type: 'handover';
}
export type TaskMessage = OfferMessage | AnswerMessage | CandidatesMessage | HandoverMessage;
/** Everything that may arrive after the client handshake. */
export type PostAuthMessage = TaskMessage | CloseMessage | ApplicationMessage;

/** The WebRTC task's data in 'auth' (Task-WebRTC.md v1 "Task Data"). */
export interface WebRtcTaskData {
  readonly exclude: readonly number[];
  readonly handover: boolean;
}

/**
 * ZeroRoom's ICE-restart task (docs/PROTOCOL.md 4.6): a responder that wants the ICE of its
 * existing, open link session restarted offers this task first and the WebRTC task second. An
 * initiator that can restart that session chooses it (echoing the data); otherwise it chooses the
 * WebRTC task and the handshake makes a new peer connection as usual. Its messages are the WebRTC
 * task's offer, answer and candidates, for the existing peer connection.
 */
export const ICE_RESTART_TASK = 'v1.ice-restart.zeroroom';
/** Length of a link session's restart id (see protocol/link/ice-restart.ts). */
export const RESTART_ID_LEN = 16;
export interface IceRestartTaskData {
  readonly session: Uint8Array;
}

// --- encoders ------------------------------------------------------------------------------

export const encodeToken = (key: Uint8Array): Uint8Array => encode({ type: 'token', key });
export const encodeKey = (key: Uint8Array): Uint8Array => encode({ type: 'key', key });
export const encodeClose = (reason: number): Uint8Array => encode({ type: 'close', reason });
export const encodeHandover = (): Uint8Array => encode({ type: 'handover' });
/** Protocol.md 'application': any msgpack value, for the application, over the signaling path. */
export const encodeApplication = (data: Encodable): Uint8Array => encode({ type: 'application', data });

/** `iceRestart` given: the ICE-restart task is offered first, with the WebRTC task as the fallback. */
export function encodeAuthToInitiator(
  yourCookie: Uint8Array,
  tasks: readonly string[],
  data: WebRtcTaskData,
  iceRestart?: IceRestartTaskData,
): Uint8Array {
  if (iceRestart === undefined)
    return encode({ type: 'auth', your_cookie: yourCookie, tasks, data: { [WEBRTC_TASK]: taskDataValue(data) } });
  return encode({
    type: 'auth',
    your_cookie: yourCookie,
    tasks: [ICE_RESTART_TASK, ...tasks],
    data: { [ICE_RESTART_TASK]: { session: iceRestart.session }, [WEBRTC_TASK]: taskDataValue(data) },
  });
}

/** The initiator chose the ICE-restart task: it echoes the session it will restart. */
export function encodeAuthToResponderIceRestart(yourCookie: Uint8Array, data: IceRestartTaskData): Uint8Array {
  return encode({ type: 'auth', your_cookie: yourCookie, task: ICE_RESTART_TASK, data: { [ICE_RESTART_TASK]: { session: data.session } } });
}

export function encodeAuthToResponder(yourCookie: Uint8Array, task: string, data: WebRtcTaskData): Uint8Array {
  return encode({ type: 'auth', your_cookie: yourCookie, task, data: { [task]: taskDataValue(data) } });
}

function taskDataValue(d: WebRtcTaskData): { exclude: number[]; handover: boolean } {
  return { exclude: [...d.exclude], handover: d.handover };
}

export function encodeOffer(sdp: SessionDescription): Uint8Array {
  return encode({ type: 'offer', offer: { type: sdp.type, sdp: sdp.sdp } });
}

export function encodeAnswer(sdp: SessionDescription): Uint8Array {
  return encode({ type: 'answer', answer: { type: sdp.type, sdp: sdp.sdp } });
}

export function encodeCandidates(candidates: readonly (IceCandidate | null)[]): Uint8Array {
  return encode({
    type: 'candidates',
    candidates: candidates.map((c) => (c === null ? null : { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex })),
  });
}

// --- decoders ------------------------------------------------------------------------------

export function decodeToken(bytes: Uint8Array): TokenMessage {
  const f = Fields.fromBytes(bytes, 'token');
  f.type('token');
  return { type: 'token', key: f.bin('key', KEY_LEN) };
}

export function decodeKey(bytes: Uint8Array): KeyMessage {
  const f = Fields.fromBytes(bytes, 'key');
  f.type('key');
  return { type: 'key', key: f.bin('key', KEY_LEN) };
}

function authCommon(bytes: Uint8Array): { f: Fields; yourCookie: Uint8Array; data: ReadonlyMap<string, MsgValue> } {
  const f = Fields.fromBytes(bytes, 'auth');
  f.type('auth');
  const yourCookie = f.bin('your_cookie', COOKIE_LEN);
  const raw = f.raw('data');
  if (raw.t !== 'map') throw new DecodeError('auth: field "data" must be map');
  return { f, yourCookie, data: raw.v };
}

export function decodeAuthFromResponder(bytes: Uint8Array): AuthFromResponder {
  const { f, yourCookie, data } = authCommon(bytes);
  if (f.has('task')) throw new DecodeError('auth: responder must not send "task"');
  const tasks = f.arr('tasks', MAX_TASKS).map((v) => {
    if (v.t !== 'str' || v.v.length > 128) throw new DecodeError('auth: "tasks" must hold strings');
    return v.v;
  });
  if (tasks.length < 1) throw new DecodeError('auth: "tasks" must not be empty');
  for (const t of tasks) if (!data.has(t)) throw new DecodeError(`auth: "data" lacks task ${t}`);
  return { type: 'auth', yourCookie, tasks, data };
}

export function decodeAuthFromInitiator(bytes: Uint8Array): AuthFromInitiator {
  const { f, yourCookie, data } = authCommon(bytes);
  if (f.has('tasks')) throw new DecodeError('auth: initiator must not send "tasks"');
  const task = f.str('task', 128);
  if (!data.has(task)) throw new DecodeError(`auth: "data" lacks the chosen task ${task}`);
  return { type: 'auth', yourCookie, task, data };
}

/** The initiator's authenticated refusal: `close` 3004 in place of its `auth` (docs/PROTOCOL.md 4.1). */
export interface RefusalFromInitiator {
  readonly type: 'refusal';
  readonly reason: 3004;
}

/** Reason of the authenticated refusal's `close`. */
export const REFUSAL_REASON = 3004;

/**
 * What a responder accepts from the initiator at stage await-auth: its `auth`, or exactly
 * `{type: "close", reason: 3004}`, the owner's refusal (both sealed with this handshake's session keys).
 */
export function decodeInitiatorAnswer(bytes: Uint8Array): AuthFromInitiator | RefusalFromInitiator {
  const f = Fields.fromBytes(bytes, 'auth');
  if (f.str('type', 16) !== 'close') return decodeAuthFromInitiator(bytes);
  f.only(['type', 'reason']);
  f.int('reason', { min: REFUSAL_REASON, max: REFUSAL_REASON });
  return { type: 'refusal', reason: REFUSAL_REASON };
}

/** The WebRTC task's entry in an auth's data map. */
export function decodeWebRtcTaskData(value: MsgValue | undefined): WebRtcTaskData {
  if (value === undefined) throw new DecodeError('auth: no WebRTC task data');
  const f = Fields.of(value, 'webrtc task data');
  const exclude = f.arr('exclude', 65535).map((v) => {
    if (v.t !== 'int' || v.v < 0 || v.v > 65534) throw new DecodeError('webrtc task data: bad "exclude" id');
    return v.v;
  });
  return { exclude, handover: f.bool('handover') };
}

/** The ICE-restart task's entry in an auth's data map: exactly `{session: bin 16}`. */
export function decodeIceRestartTaskData(value: MsgValue | undefined): IceRestartTaskData {
  if (value === undefined) throw new DecodeError('auth: no ICE-restart task data');
  const f = Fields.of(value, 'ice-restart task data').only(['session']);
  return { session: f.bin('session', RESTART_ID_LEN) };
}

function decodeSdp(f: Fields, key: 'offer' | 'answer'): SessionDescription {
  const m = f.map_(key);
  const type = m.str('type', 16);
  if (type !== 'offer' && type !== 'answer' && type !== 'pranswer' && type !== 'rollback') {
    throw new DecodeError(`${key}: bad sdp type`);
  }
  const sdp = type === 'rollback' ? (m.optional('sdp', (k) => m.str(k, MAX_SDP)) ?? '') : m.str('sdp', MAX_SDP);
  return { type, sdp };
}

function decodeCandidate(v: MsgValue): IceCandidate | null {
  if (v.t === 'nil') return null;
  const c = Fields.of(v, 'candidate');
  return {
    candidate: c.str('candidate', MAX_CANDIDATE),
    sdpMid: c.optional('sdpMid', (k) => c.str(k, 256)) ?? null,
    sdpMLineIndex: c.optional('sdpMLineIndex', (k) => c.int(k, { min: 0, max: 65535 })) ?? null,
  };
}

/** Any message allowed after the handshake (task messages, 'close', 'application'). */
export function decodePostAuth(bytes: Uint8Array): PostAuthMessage {
  const f = Fields.fromBytes(bytes, 'peer message');
  const type = f.str('type', 64);
  switch (type) {
    case 'offer':
      return { type, offer: decodeSdp(f, 'offer') };
    case 'answer':
      return { type, answer: decodeSdp(f, 'answer') };
    case 'candidates': {
      const list = f.arr('candidates', MAX_CANDIDATES).map(decodeCandidate);
      if (list.length < 1) throw new DecodeError('candidates: empty');
      return { type, candidates: list };
    }
    case 'handover':
      return { type };
    case 'close':
      return { type, reason: f.int('reason', { min: 1000, max: 4999 }) };
    case 'application':
      return { type, data: f.raw('data') };
    default:
      throw new DecodeError(`peer message: unknown type "${type}"`);
  }
}
