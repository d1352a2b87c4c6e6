/**
 * Client-to-server messages of SaltyRTC 1.0 (Protocol.md "Client-to-Server Messages"): one strict
 * decoder and one encoder per message. Decoders check msgpack types (bin, not str, for keys and
 * cookies; int, not float; bool), lengths, ranges and the exact field set; they throw DecodeError.
 * Fields the spec marks optional may be absent but never nil ("field values SHALL NOT be null").
 */
import type { BoxPublicKey } from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import { encode, Fields, type MsgValue } from '../msgpack.ts';
import { isDropResponderReason, CloseCode } from './close-codes.ts';
import { COOKIE_LENGTH, FIRST_RESPONDER, INITIATOR_ADDRESS, LAST_RESPONDER } from './nonce.ts';

export const KEY_LENGTH = 32;
/** box(session public key || client permanent key) = 64 bytes + 16 bytes tag. */
export const SIGNED_KEYS_LENGTH = 80;
/** send-error id: source, destination, overflow (2), sequence (4). */
export const MESSAGE_ID_LENGTH = 8;
export const MAX_SUBPROTOCOLS = 32;
export const MAX_SUBPROTOCOL_LENGTH = 256;
/** ping_interval is in seconds; 2^31-1 keeps any value representable as a 32-bit timer. */
export const MAX_PING_INTERVAL = 2 ** 31 - 1;
const RESPONDER_RANGE = { min: FIRST_RESPONDER, max: LAST_RESPONDER };
const ANY_CLIENT_RANGE = { min: INITIATOR_ADDRESS, max: LAST_RESPONDER };

export type Role = 'initiator' | 'responder';

export interface ServerHello {
  readonly type: 'server-hello';
  readonly key: BoxPublicKey;
}
export interface ClientHello {
  readonly type: 'client-hello';
  readonly key: BoxPublicKey;
}
export interface ClientAuth {
  readonly type: 'client-auth';
  readonly yourCookie: Uint8Array;
  readonly subprotocols: readonly string[];
  /** Seconds between WebSocket pings the client asks for; absent or 0: no pings. */
  readonly pingInterval?: number;
  /** The server permanent key the client pinned. */
  readonly yourKey?: BoxPublicKey;
}
export interface ServerAuth {
  readonly type: 'server-auth';
  readonly yourCookie: Uint8Array;
  readonly signedKeys?: Uint8Array;
  /** Only towards an initiator (required there). */
  readonly responders?: readonly number[];
  /** Only towards a responder (required there). */
  readonly initiatorConnected?: boolean;
}
export interface NewInitiator {
  readonly type: 'new-initiator';
}
export interface NewResponder {
  readonly type: 'new-responder';
  readonly id: number;
}
export interface DropResponder {
  readonly type: 'drop-responder';
  readonly id: number;
  readonly reason?: number;
}
export interface SendError {
  readonly type: 'send-error';
  readonly id: Uint8Array;
}
export interface Disconnected {
  readonly type: 'disconnected';
  readonly id: number;
}

/** Messages the server sends after authentication. */
export type ServerToClient = NewInitiator | NewResponder | SendError | Disconnected;

// --- helpers ---------------------------------------------------------------------------------

function fieldsOf(bytes: Uint8Array, type: string, allowed: readonly string[]): Fields {
  const f = Fields.fromBytes(bytes, type);
  f.type(type);
  f.only(['type', ...allowed]);
  return f;
}

/** Present-but-nil is an error; absent is undefined. */
function optionalField<T>(f: Fields, key: string, get: (k: string) => T): T | undefined {
  return f.has(key) ? get(key) : undefined;
}

function key32(f: Fields, name: string): BoxPublicKey {
  return f.bin(name, KEY_LENGTH) as BoxPublicKey;
}

function intItem(v: MsgValue, what: string, range: { min: number; max: number }): number {
  if (v.t !== 'int') throw new DecodeError(`${what}: item must be int, got ${v.t}`);
  if (v.v < range.min || v.v > range.max) throw new DecodeError(`${what}: item ${v.v} out of range [${range.min}, ${range.max}]`);
  return v.v;
}

function checkKeyArg(key: Uint8Array, name: string): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) throw new RangeError(`${name} must be ${KEY_LENGTH} bytes`);
}

function checkCookieArg(cookie: Uint8Array): void {
  if (!(cookie instanceof Uint8Array) || cookie.length !== COOKIE_LENGTH) throw new RangeError(`cookie must be ${COOKIE_LENGTH} bytes`);
}

function checkIntArg(v: number, min: number, max: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${name} ${v} outside [${min}, ${max}]`);
}

// --- server-hello / client-hello --------------------------------------------------------------

export function decodeServerHello(bytes: Uint8Array): ServerHello {
  const f = fieldsOf(bytes, 'server-hello', ['key']);
  return { type: 'server-hello', key: key32(f, 'key') };
}
export function encodeServerHello(m: { key: Uint8Array }): Uint8Array {
  checkKeyArg(m.key, 'key');
  return encode({ type: 'server-hello', key: m.key });
}

export function decodeClientHello(bytes: Uint8Array): ClientHello {
  const f = fieldsOf(bytes, 'client-hello', ['key']);
  return { type: 'client-hello', key: key32(f, 'key') };
}
export function encodeClientHello(m: { key: Uint8Array }): Uint8Array {
  checkKeyArg(m.key, 'key');
  return encode({ type: 'client-hello', key: m.key });
}

// --- client-auth --------------------------------------------------------------------------------

export function decodeClientAuth(bytes: Uint8Array): ClientAuth {
  const f = fieldsOf(bytes, 'client-auth', ['your_cookie', 'subprotocols', 'ping_interval', 'your_key']);
  const yourCookie = f.bin('your_cookie', COOKIE_LENGTH);
  const subprotocols = f.arr('subprotocols', MAX_SUBPROTOCOLS).map((v) => {
    if (v.t !== 'str') throw new DecodeError(`client-auth: subprotocols item must be str, got ${v.t}`);
    if (v.v.length > MAX_SUBPROTOCOL_LENGTH) throw new DecodeError('client-auth: subprotocol name too long');
    return v.v;
  });
  const pingInterval = optionalField(f, 'ping_interval', (k) => f.int(k, { min: 0, max: MAX_PING_INTERVAL }));
  const yourKey = optionalField(f, 'your_key', (k) => key32(f, k));
  return {
    type: 'client-auth',
    yourCookie,
    subprotocols,
    ...(pingInterval !== undefined ? { pingInterval } : {}),
    ...(yourKey !== undefined ? { yourKey } : {}),
  };
}
export function encodeClientAuth(m: {
  yourCookie: Uint8Array;
  subprotocols: readonly string[];
  pingInterval?: number | undefined;
  yourKey?: Uint8Array | undefined;
}): Uint8Array {
  checkCookieArg(m.yourCookie);
  if (m.pingInterval !== undefined) checkIntArg(m.pingInterval, 0, MAX_PING_INTERVAL, 'ping_interval');
  if (m.yourKey !== undefined) checkKeyArg(m.yourKey, 'your_key');
  return encode({
    type: 'client-auth',
    your_cookie: m.yourCookie,
    subprotocols: [...m.subprotocols],
    ping_interval: m.pingInterval,
    your_key: m.yourKey,
  });
}

// --- server-auth --------------------------------------------------------------------------------

/** `role` is the receiver's role: it decides which of responders / initiator_connected is required. */
export function decodeServerAuth(bytes: Uint8Array, role: Role): ServerAuth {
  const roleField = role === 'initiator' ? 'responders' : 'initiator_connected';
  const f = fieldsOf(bytes, 'server-auth', ['your_cookie', 'signed_keys', roleField]);
  const yourCookie = f.bin('your_cookie', COOKIE_LENGTH);
  const signedKeys = optionalField(f, 'signed_keys', (k) => f.bin(k, SIGNED_KEYS_LENGTH));
  const base = { type: 'server-auth' as const, yourCookie, ...(signedKeys !== undefined ? { signedKeys } : {}) };
  if (role === 'responder') return { ...base, initiatorConnected: f.bool('initiator_connected') };
  const seen = new Set<number>();
  const responders = f.arr('responders', LAST_RESPONDER - FIRST_RESPONDER + 1).map((v) => {
    const id = intItem(v, 'server-auth.responders', RESPONDER_RANGE);
    if (seen.has(id)) throw new DecodeError(`server-auth: responder ${id} listed twice`);
    seen.add(id);
    return id;
  });
  return { ...base, responders };
}
export function encodeServerAuth(m: {
  yourCookie: Uint8Array;
  signedKeys?: Uint8Array | undefined;
  responders?: readonly number[] | undefined;
  initiatorConnected?: boolean | undefined;
}): Uint8Array {
  checkCookieArg(m.yourCookie);
  if ((m.responders === undefined) === (m.initiatorConnected === undefined)) {
    throw new RangeError('server-auth: exactly one of responders (initiator) or initiatorConnected (responder)');
  }
  if (m.signedKeys !== undefined && m.signedKeys.length !== SIGNED_KEYS_LENGTH) throw new RangeError('signed_keys must be 80 bytes');
  for (const id of m.responders ?? []) checkIntArg(id, FIRST_RESPONDER, LAST_RESPONDER, 'responder');
  return encode({
    type: 'server-auth',
    your_cookie: m.yourCookie,
    signed_keys: m.signedKeys,
    responders: m.responders === undefined ? undefined : [...m.responders],
    initiator_connected: m.initiatorConnected,
  });
}

// --- after authentication -------------------------------------------------------------------------

export function decodeNewInitiator(bytes: Uint8Array): NewInitiator {
  fieldsOf(bytes, 'new-initiator', []);
  return { type: 'new-initiator' };
}
export function encodeNewInitiator(): Uint8Array {
  return encode({ type: 'new-initiator' });
}

export function decodeNewResponder(bytes: Uint8Array): NewResponder {
  const f = fieldsOf(bytes, 'new-responder', ['id']);
  return { type: 'new-responder', id: f.int('id', RESPONDER_RANGE) };
}
export function encodeNewResponder(m: { id: number }): Uint8Array {
  checkIntArg(m.id, FIRST_RESPONDER, LAST_RESPONDER, 'id');
  return encode({ type: 'new-responder', id: m.id });
}

export function decodeDropResponder(bytes: Uint8Array): DropResponder {
  const f = fieldsOf(bytes, 'drop-responder', ['id', 'reason']);
  const id = f.int('id', RESPONDER_RANGE);
  const reason = optionalField(f, 'reason', (k) => f.int(k, { min: 0, max: 0xffff }));
  if (reason !== undefined && !isDropResponderReason(reason)) {
    throw new DecodeError(`drop-responder: reason ${reason} is not one of 3001, 3002, 3004, 3005`);
  }
  return { type: 'drop-responder', id, ...(reason !== undefined ? { reason } : {}) };
}
export function encodeDropResponder(m: { id: number; reason?: number | undefined }): Uint8Array {
  checkIntArg(m.id, FIRST_RESPONDER, LAST_RESPONDER, 'id');
  if (m.reason !== undefined && !isDropResponderReason(m.reason)) throw new RangeError(`drop-responder: invalid reason ${m.reason}`);
  return encode({ type: 'drop-responder', id: m.id, reason: m.reason });
}
/** The close code the server uses for a drop-responder (Protocol.md: default 3004). */
export function dropReasonOf(m: DropResponder): number {
  return m.reason ?? CloseCode.DroppedByInitiator;
}

export function decodeSendError(bytes: Uint8Array): SendError {
  const f = fieldsOf(bytes, 'send-error', ['id']);
  return { type: 'send-error', id: f.bin('id', MESSAGE_ID_LENGTH) };
}
export function encodeSendError(m: { id: Uint8Array }): Uint8Array {
  if (!(m.id instanceof Uint8Array) || m.id.length !== MESSAGE_ID_LENGTH) throw new RangeError('send-error id must be 8 bytes');
  return encode({ type: 'send-error', id: m.id });
}

/** `role` is the receiver's: an initiator hears about responders, a responder about the initiator. */
export function decodeDisconnected(bytes: Uint8Array, role?: Role): Disconnected {
  const f = fieldsOf(bytes, 'disconnected', ['id']);
  const range =
    role === undefined ? ANY_CLIENT_RANGE : role === 'initiator' ? RESPONDER_RANGE : { min: INITIATOR_ADDRESS, max: INITIATOR_ADDRESS };
  return { type: 'disconnected', id: f.int('id', range) };
}
export function encodeDisconnected(m: { id: number }): Uint8Array {
  checkIntArg(m.id, INITIATOR_ADDRESS, LAST_RESPONDER, 'id');
  return encode({ type: 'disconnected', id: m.id });
}

/** Any message the server may send to an authenticated client of `role`. */
export function decodeServerToClient(bytes: Uint8Array, role: Role): ServerToClient {
  const type = Fields.fromBytes(bytes, 'server message').str('type', 64);
  switch (type) {
    case 'new-initiator':
      if (role !== 'responder') break;
      return decodeNewInitiator(bytes);
    case 'new-responder':
      if (role !== 'initiator') break;
      return decodeNewResponder(bytes);
    case 'send-error':
      return decodeSendError(bytes);
    case 'disconnected':
      return decodeDisconnected(bytes, role);
  }
  throw new DecodeError(`server message: unexpected type "${type.slice(0, 64)}" for ${role}`);
}
