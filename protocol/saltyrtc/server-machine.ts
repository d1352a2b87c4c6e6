/**
 * The SaltyRTC 1.0 server side of one signalling path as a pure state machine:
 * `step(ctx, state, event) -> {state, effects}`. No sockets, timers or clock: the driver
 * (signaling/server.ts) feeds WebSocket events in and carries the effects out.
 *
 * Spec sections (Protocol.md): "Receiving a Signalling Message" (address, cookie and combined
 * sequence number checks on messages to the server), "'server-hello'" to "'disconnected'" (the
 * handshake and notices), "Client-to-Client Messages" (verbatim relay, send-error).
 *
 * Relayed frames do not change the state: `step` then returns the same state object, so the hot
 * path allocates only the effect list.
 *
 * Several nodes (docs/PROTOCOL.md 3.8): with `ctx.clustered` the path-wide decisions (addresses,
 * the initiator, relay destinations, drop-responder, departures) are not taken here but handed to
 * the cluster as effects ('claim', 'cluster-relay', 'cluster-drop', 'leave'); the cluster answers
 * with events ('granted-*', 'path-full', notices, 'dropped'). Each node's state then holds only
 * its own clients, and everything per client (handshake, cookies, sequence numbers, encryption of
 * notices) stays the same code as on one node.
 */
import {
  boxAfter,
  boxOpenAfter,
  concatBytes,
  equalBytes,
  type BoxKeyPair,
  type BoxPublicKey,
  type BoxSecretKey,
  type RandomBytes,
  type SharedKey,
} from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../errors.ts';
import { CloseCode } from './close-codes.ts';
import {
  COOKIE_LENGTH,
  CSN_LIMIT,
  FIRST_RESPONDER,
  INITIATOR_ADDRESS,
  LAST_RESPONDER,
  NONCE_LENGTH,
  SERVER_ADDRESS,
  csnOverflow,
  decodeNonce,
  encodeNonce,
  initialCsn,
  isResponderAddress,
  messageIdOf,
  type Nonce,
} from './nonce.ts';
import * as sm from './server-messages.ts';

export const SUBPROTOCOL = 'v1.saltyrtc.org';
/** The subprotocols this server speaks, in preference order (only one). */
export const SERVER_SUBPROTOCOLS: readonly string[] = [SUBPROTOCOL];

/** A connection, numbered by the driver. */
export type ConnId = number;
export type Role = sm.Role;

/** Why the machine refused a client (a subset of the observer's RejectReason). */
export type MachineRejectReason = 'bad-message' | 'bad-auth' | 'path-full' | 'handshake-timeout';

export interface ServerContext {
  /** The path: the initiator's permanent public key. */
  readonly initiatorKey: BoxPublicKey;
  /** Server permanent keys; the first is used unless the client pins another with `your_key`. */
  readonly permanentKeys: readonly BoxKeyPair[];
  readonly random: RandomBytes;
  /** A fresh session key pair for one client (Protocol.md "Server's Session Key"). */
  readonly generateSessionKey: () => BoxKeyPair;
  /** NaCl box.before(theirPublic, mySecret); the driver may memoise it. */
  readonly sharedKey: (theirPublic: BoxPublicKey, mySecret: BoxSecretKey) => SharedKey;
  /** Path-wide decisions are the cluster's (several nodes behind a load balancer); absent = one node. */
  readonly clustered?: boolean;
}

/** 'claiming' only with ctx.clustered: client-auth accepted, the cluster has not granted the slot yet. */
export type Phase = 'await-hello-or-auth' | 'await-auth' | 'claiming' | 'authenticated';

/** What a claiming client keeps until the cluster grants its slot. */
export interface Claim {
  readonly signer: BoxKeyPair | undefined;
  readonly pingIntervalSeconds: number;
  /** Frames the client sent before server-auth, processed in order once the slot is granted. */
  readonly held: readonly Uint8Array[];
}

/** A claiming client may send at most this many frames before its server-auth (a compliant one sends none). */
export const MAX_HELD_FRAMES = 16;

export interface ClientRecord {
  readonly conn: ConnId;
  readonly phase: Phase;
  readonly role: Role | null;
  /** 0x00 until authenticated, then 0x01 or 0x02..0xff. */
  readonly address: number;
  /** Our session public key for this client (sent in server-hello, signed in server-auth); null after. */
  readonly sessionPublic: BoxPublicKey | null;
  /** Our session secret key: dropped (null) as soon as `shared` exists, so no secret outlives its use. */
  readonly sessionSecret: BoxSecretKey | null;
  /** The client's permanent key: the path key (initiator) or the client-hello key (responder);
   * null again after server-auth (nothing needs it later; idle connections stay small). */
  readonly clientKey: BoxPublicKey | null;
  /** box.before(clientKey, our session secret key). */
  readonly shared: SharedKey | null;
  readonly ourCookie: Uint8Array;
  /** Next combined sequence number we send. */
  readonly ourCsn: number;
  readonly theirCookie: Uint8Array | null;
  /** Next combined sequence number we expect; CSN_LIMIT once exhausted. */
  readonly theirCsn: number | null;
  /** Only while phase = 'claiming' (never present on one node). */
  readonly claim?: Claim;
}

export interface PathState {
  readonly clients: ReadonlyMap<ConnId, ClientRecord>;
  readonly initiator: ConnId | null;
  /** Authenticated responders by address. */
  readonly responders: ReadonlyMap<number, ConnId>;
}

export type ServerEvent =
  | { readonly type: 'connected'; readonly conn: ConnId }
  | { readonly type: 'frame'; readonly conn: ConnId; readonly bytes: Uint8Array }
  /** The socket is gone (closed by the client or the network). */
  | { readonly type: 'closed'; readonly conn: ConnId }
  | { readonly type: 'timeout'; readonly conn: ConnId; readonly kind: 'handshake' | 'ping' }
  /** The driver saw a frame it cannot hand in (a text frame). */
  | { readonly type: 'invalid-frame'; readonly conn: ConnId; readonly why: string }
  /** The driver could not write a relayed frame to its destination socket. */
  | { readonly type: 'relay-failed'; readonly conn: ConnId; readonly nonce: Uint8Array }
  | ClusterEvent;

/** What the cluster tells a node about one of its clients (only with ctx.clustered). */
export type ClusterEvent =
  /** The initiator slot is ours; `responders` = the addresses of the authenticated responders. */
  | { readonly type: 'granted-initiator'; readonly conn: ConnId; readonly responders: readonly number[] }
  | { readonly type: 'granted-responder'; readonly conn: ConnId; readonly address: number; readonly initiatorConnected: boolean }
  /** No responder address left: close 3000. */
  | { readonly type: 'path-full'; readonly conn: ConnId }
  | { readonly type: 'new-responder'; readonly conn: ConnId; readonly id: number }
  | { readonly type: 'new-initiator'; readonly conn: ConnId }
  | { readonly type: 'disconnected'; readonly conn: ConnId; readonly id: number }
  /** A frame this client sent could not be relayed; `id` = bytes 16..23 of its nonce. */
  | { readonly type: 'send-error'; readonly conn: ConnId; readonly id: Uint8Array }
  /** The slot was taken away (drop-responder, or a new initiator): close with `code`, no notices. */
  | { readonly type: 'dropped'; readonly conn: ConnId; readonly code: number };

export type LogFields = Record<string, string | number | boolean>;

export type ServerEffect =
  | { readonly type: 'send'; readonly conn: ConnId; readonly bytes: Uint8Array }
  /** Verbatim relay of a client-to-client frame; on failure feed back 'relay-failed' for `from`. */
  | { readonly type: 'relay'; readonly from: ConnId; readonly to: ConnId; readonly bytes: Uint8Array }
  /** Close the socket. The client is already off the path; ignore its further frames. */
  | { readonly type: 'close'; readonly conn: ConnId; readonly code: number; readonly reject?: MachineRejectReason }
  | {
      readonly type: 'authenticated';
      readonly conn: ConnId;
      readonly role: Role;
      readonly address: number;
      readonly pingIntervalSeconds: number;
    }
  | { readonly type: 'log'; readonly event: string; readonly fields: LogFields }
  | ClusterEffect;

/** Path-wide work for the cluster (only with ctx.clustered), in the order it must happen. */
export type ClusterEffect =
  | { readonly type: 'claim'; readonly conn: ConnId; readonly role: Role }
  | {
      readonly type: 'cluster-relay';
      readonly conn: ConnId;
      readonly source: number;
      readonly destination: number;
      readonly bytes: Uint8Array;
    }
  | { readonly type: 'cluster-drop'; readonly conn: ConnId; readonly id: number; readonly code: number }
  /** The client left the path (any reason); the cluster frees its slot and sends 'disconnected' if it held one. */
  | { readonly type: 'leave'; readonly conn: ConnId };

export interface StepResult {
  readonly state: PathState;
  readonly effects: readonly ServerEffect[];
}

export const emptyPath: PathState = Object.freeze({ clients: new Map(), initiator: null, responders: new Map() });

/** A refusal with the close code the spec assigns; `why` is fixed text (never peer data). */
export class ServerRefusal extends ZeroRoomError {
  constructor(
    readonly closeCode: number,
    readonly reject: MachineRejectReason,
    readonly why: string,
  ) {
    super('saltyrtc.server-refusal', why);
  }
}

const protocolError = (why: string): ServerRefusal => new ServerRefusal(CloseCode.ProtocolError, 'bad-message', why);
const authError = (why: string): ServerRefusal => new ServerRefusal(CloseCode.ProtocolError, 'bad-auth', why);

/** Lowest responder address not held by an authenticated responder, or null when the path is full. */
export function lowestFreeResponder(responders: ReadonlyMap<number, ConnId>): number | null {
  for (let a = FIRST_RESPONDER; a <= LAST_RESPONDER; a++) if (!responders.has(a)) return a;
  return null;
}

// --- transaction: copy-on-write view of the state for one step ----------------------------------

class Tx {
  readonly effects: ServerEffect[] = [];
  private clients: Map<ConnId, ClientRecord> | null = null;
  private responders: Map<number, ConnId> | null = null;
  initiator: ConnId | null;

  constructor(
    readonly ctx: ServerContext,
    private readonly s: PathState,
  ) {
    this.initiator = s.initiator;
  }

  client(conn: ConnId): ClientRecord | undefined {
    return (this.clients ?? this.s.clients).get(conn);
  }
  put(rec: ClientRecord): void {
    this.clients ??= new Map(this.s.clients);
    this.clients.set(rec.conn, rec);
  }
  responderAt(address: number): ConnId | undefined {
    return (this.responders ?? this.s.responders).get(address);
  }
  responderMap(): ReadonlyMap<number, ConnId> {
    return this.responders ?? this.s.responders;
  }
  setResponder(address: number, conn: ConnId | null): void {
    this.responders ??= new Map(this.s.responders);
    if (conn === null) this.responders.delete(address);
    else this.responders.set(address, conn);
  }
  /** Take a client off the path (no notices). */
  remove(conn: ConnId): ClientRecord | undefined {
    const rec = this.client(conn);
    if (rec === undefined) return undefined;
    this.clients ??= new Map(this.s.clients);
    this.clients.delete(conn);
    if (rec.phase === 'authenticated') {
      if (rec.role === 'initiator' && this.initiator === conn) this.initiator = null;
      if (rec.role === 'responder' && this.responderAt(rec.address) === conn) this.setResponder(rec.address, null);
    }
    return rec;
  }
  emit(e: ServerEffect): void {
    this.effects.push(e);
  }
  log(event: string, fields: LogFields): void {
    this.effects.push({ type: 'log', event, fields });
  }
  result(): StepResult {
    const changed = this.clients !== null || this.responders !== null || this.initiator !== this.s.initiator;
    const state: PathState = changed
      ? { clients: this.clients ?? this.s.clients, initiator: this.initiator, responders: this.responders ?? this.s.responders }
      : this.s;
    return { state, effects: this.effects };
  }
}

// --- step -----------------------------------------------------------------------------------------

export function step(ctx: ServerContext, state: PathState, event: ServerEvent): StepResult {
  if (event.type === 'frame') {
    const relayed = relayFastPath(state, event.conn, event.bytes);
    if (relayed !== null) return relayed;
  }
  const tx = new Tx(ctx, state);
  switch (event.type) {
    case 'connected':
      onConnected(tx, event.conn);
      break;
    case 'frame':
      onFrame(tx, event.conn, event.bytes);
      break;
    case 'closed':
      departed(tx, event.conn);
      break;
    case 'timeout':
      onTimeout(tx, event.conn, event.kind);
      break;
    case 'invalid-frame':
      if (tx.client(event.conn) !== undefined) refuse(tx, event.conn, protocolError(event.why));
      break;
    case 'relay-failed':
      sendError(tx, event.conn, event.nonce);
      break;
    default:
      onClusterEvent(tx, event);
  }
  return tx.result();
}

/**
 * The common case without allocations beyond the effect: an authenticated client relaying to a
 * present peer of the other role. Anything else (server messages, errors, send-error) takes the
 * full path in onFrame, which applies the same rules.
 */
function relayFastPath(state: PathState, conn: ConnId, bytes: Uint8Array): StepResult | null {
  if (bytes.length <= NONCE_LENGTH) return null;
  const destination = bytes[17]!;
  if (destination === SERVER_ADDRESS) return null;
  const rec = state.clients.get(conn);
  if (rec === undefined || rec.phase !== 'authenticated' || bytes[16] !== rec.address) return null;
  let to: ConnId | undefined;
  if (rec.role === 'initiator') to = isResponderAddress(destination) ? state.responders.get(destination) : undefined;
  else to = destination === INITIATOR_ADDRESS ? (state.initiator ?? undefined) : undefined;
  if (to === undefined) return null;
  return { state, effects: [{ type: 'relay', from: conn, to, bytes }] };
}

function onConnected(tx: Tx, conn: ConnId): void {
  if (tx.client(conn) !== undefined) throw new RangeError(`connection ${conn} already on the path`);
  const session = tx.ctx.generateSessionKey();
  const hello = sm.encodeServerHello({ key: session.publicKey });
  const rec: ClientRecord = {
    conn,
    phase: 'await-hello-or-auth',
    role: null,
    address: SERVER_ADDRESS,
    sessionPublic: session.publicKey,
    sessionSecret: session.secretKey,
    clientKey: null,
    shared: null,
    ourCookie: tx.ctx.random(COOKIE_LENGTH).slice(),
    ourCsn: initialCsn(tx.ctx.random),
    theirCookie: null,
    theirCsn: null,
  };
  if (rec.ourCookie.length !== COOKIE_LENGTH) throw new RangeError('random source returned the wrong length');
  sendToClient(tx, rec, hello, false);
}

function onTimeout(tx: Tx, conn: ConnId, kind: 'handshake' | 'ping'): void {
  const rec = tx.client(conn);
  if (rec === undefined) return;
  if (kind === 'handshake') {
    if (rec.phase !== 'authenticated')
      refuse(tx, conn, new ServerRefusal(CloseCode.Timeout, 'handshake-timeout', 'handshake not finished in time'));
    return;
  }
  tx.log('ping-timeout', { conn });
  closeClient(tx, conn, CloseCode.Timeout, true);
}

/** Close `conn` with the refusal's code and tell the other side if it was authenticated. */
function refuse(tx: Tx, conn: ConnId, r: ServerRefusal): void {
  tx.log('refused', { conn, code: r.closeCode, reason: r.reject, why: r.why });
  closeClient(tx, conn, r.closeCode, true, r.reject);
}

function closeClient(tx: Tx, conn: ConnId, code: number, notify: boolean, reject?: MachineRejectReason): void {
  const rec = notify ? departed(tx, conn) : tx.remove(conn);
  if (rec === undefined) return;
  tx.emit(reject === undefined ? { type: 'close', conn, code } : { type: 'close', conn, code, reject });
}

/**
 * Remove a client that left or was closed for its own fault, and send 'disconnected' to the other
 * side if it was authenticated (clients dropped by someone else get no notice: Protocol.md
 * 'drop-responder', 'server-auth').
 */
function departed(tx: Tx, conn: ConnId): ClientRecord | undefined {
  const rec = tx.remove(conn);
  if (tx.ctx.clustered === true) {
    if (rec !== undefined && (rec.phase === 'authenticated' || rec.phase === 'claiming')) tx.emit({ type: 'leave', conn });
    return rec;
  }
  if (rec === undefined || rec.phase !== 'authenticated') return rec;
  const notice = sm.encodeDisconnected({ id: rec.address });
  if (rec.role === 'initiator') {
    for (const rconn of tx.responderMap().values()) notify(tx, rconn, notice);
  } else if (tx.initiator !== null) {
    notify(tx, tx.initiator, notice);
  }
  return rec;
}

function notify(tx: Tx, conn: ConnId, plaintext: Uint8Array): void {
  const rec = tx.client(conn);
  if (rec !== undefined) sendToClient(tx, rec, plaintext, true);
}

/** Encode the nonce, encrypt if asked, emit the frame and advance our csn. */
function sendToClient(tx: Tx, rec: ClientRecord, plaintext: Uint8Array, encrypt: boolean): ClientRecord {
  if (rec.ourCsn >= CSN_LIMIT - 1) {
    // Unreachable in practice (2^48 messages); the spec makes it a hard stop.
    closeClient(tx, rec.conn, CloseCode.InternalError, true);
    return rec;
  }
  const nonce = encodeNonce({ cookie: rec.ourCookie, source: SERVER_ADDRESS, destination: rec.address, csn: rec.ourCsn });
  const data = encrypt ? boxAfter(plaintext, nonce, requireShared(rec)) : plaintext;
  const next = { ...rec, ourCsn: rec.ourCsn + 1 };
  tx.put(next);
  tx.emit({ type: 'send', conn: rec.conn, bytes: concatBytes(nonce, data) });
  return next;
}

function requireShared(rec: ClientRecord): SharedKey {
  if (rec.shared === null) throw new ServerRefusal(CloseCode.InternalError, 'bad-message', 'no session key yet');
  return rec.shared;
}

function sendError(tx: Tx, conn: ConnId, nonce: Uint8Array): void {
  const rec = tx.client(conn);
  if (rec === undefined || rec.phase !== 'authenticated') return;
  sendToClient(tx, rec, sm.encodeSendError({ id: messageIdOf(nonce) }), true);
}

// --- frames ---------------------------------------------------------------------------------------

function onFrame(tx: Tx, conn: ConnId, bytes: Uint8Array): void {
  const rec = tx.client(conn);
  if (rec === undefined) return; // closed by us already: late frames are dropped
  if (rec.phase === 'claiming') return hold(tx, rec, bytes);
  try {
    // "it first checks that the message contains more than 24 byte"
    if (bytes.length <= NONCE_LENGTH) throw protocolError('frame without data');
    const nonceBytes = bytes.subarray(0, NONCE_LENGTH);
    const nonce = decodeNonce(nonceBytes);
    if (nonce.source !== rec.address) throw protocolError('source address does not match');
    if (nonce.destination === SERVER_ADDRESS) {
      const checked = checkIncoming(rec, nonce);
      tx.put(checked);
      onServerMessage(tx, checked, nonceBytes, bytes.subarray(NONCE_LENGTH));
    } else {
      relay(tx, rec, nonce, bytes);
    }
  } catch (e) {
    if (e instanceof ServerRefusal) return refuse(tx, conn, e);
    if (e instanceof ZeroRoomError) return refuse(tx, conn, protocolError(`bad message (${e.code})`));
    throw e;
  }
}

/** Cookie and combined-sequence-number checks (Protocol.md "Receiving a Signalling Message"). */
function checkIncoming(rec: ClientRecord, nonce: Nonce): ClientRecord {
  if (rec.theirCookie === null) {
    if (equalBytes(nonce.cookie, rec.ourCookie)) throw protocolError('client uses the server cookie');
    if (csnOverflow(nonce.csn) !== 0) throw protocolError('first message with a non-zero overflow number');
  } else {
    if (!equalBytes(nonce.cookie, rec.theirCookie)) throw protocolError('cookie changed');
    if (rec.theirCsn === null || rec.theirCsn >= CSN_LIMIT) throw protocolError('sequence number exhausted');
    if (nonce.csn !== rec.theirCsn) throw protocolError('unexpected sequence number (repeated or skipped)');
  }
  // Copy the cookie: decodeNonce may return a view of the received frame, and keeping the view
  // would keep the socket's whole read chunk alive for the life of the connection.
  return { ...rec, theirCookie: rec.theirCookie ?? Uint8Array.from(nonce.cookie), theirCsn: nonce.csn + 1 };
}

function relay(tx: Tx, rec: ClientRecord, nonce: Nonce, bytes: Uint8Array): void {
  // "relaying is ONLY allowed between an initiator (0x01) and a responder (0x02..0xff)"
  if (rec.phase !== 'authenticated') throw protocolError('relay before authentication');
  const ok = rec.role === 'initiator' ? isResponderAddress(nonce.destination) : nonce.destination === INITIATOR_ADDRESS;
  if (!ok) throw protocolError('relay to an address of the same role');
  if (tx.ctx.clustered === true) {
    tx.emit({ type: 'cluster-relay', conn: rec.conn, source: rec.address, destination: nonce.destination, bytes });
    return;
  }
  const to = rec.role === 'initiator' ? tx.responderAt(nonce.destination) : (tx.initiator ?? undefined);
  if (to === undefined) return sendError(tx, rec.conn, bytes.subarray(0, NONCE_LENGTH));
  tx.emit({ type: 'relay', from: rec.conn, to, bytes });
}

function onServerMessage(tx: Tx, rec: ClientRecord, nonce: Uint8Array, data: Uint8Array): void {
  switch (rec.phase) {
    case 'await-hello-or-auth':
      return onFirstMessage(tx, rec, nonce, data);
    case 'await-auth': {
      const auth = decodeClientAuthBox(rec, nonce, data);
      return authenticate(tx, rec, 'responder', auth);
    }
    case 'authenticated':
      return onAuthenticatedMessage(tx, rec, nonce, data);
    case 'claiming':
      throw new ServerRefusal(CloseCode.InternalError, 'bad-message', 'frame of a claiming client reached the handshake');
  }
}

/**
 * The server cannot know the role yet: a responder sends an unencrypted client-hello, an initiator
 * a client-auth encrypted to the path key (Protocol.md "'client-hello' Message"). We try the
 * plaintext client-hello first (no Diffie-Hellman needed for responders).
 */
function onFirstMessage(tx: Tx, rec: ClientRecord, nonce: Uint8Array, data: Uint8Array): void {
  let hello: sm.ClientHello | null = null;
  try {
    hello = sm.decodeClientHello(data);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
  const secret = rec.sessionSecret;
  if (secret === null) throw new ServerRefusal(CloseCode.InternalError, 'bad-message', 'session secret already used');
  if (hello !== null) {
    const packed = packKeys(rec, tx.ctx.sharedKey(hello.key, secret));
    tx.put({ ...rec, ...packed, phase: 'await-auth', role: 'responder', clientKey: hello.key, sessionSecret: null });
    return;
  }
  // The initiator's client-auth is the only use of the secret left: drop it whether or not it opens.
  const asInitiator: ClientRecord = {
    ...rec,
    ...packKeys(rec, tx.ctx.sharedKey(tx.ctx.initiatorKey, secret)),
    clientKey: tx.ctx.initiatorKey,
    sessionSecret: null,
  };
  tx.put(asInitiator);
  const auth = decodeClientAuthBox(asInitiator, nonce, data);
  authenticate(tx, asInitiator, 'initiator', auth);
}

/**
 * The shared key and both cookies, all a connection keeps for its life, as views of one 64-byte
 * block: three separate buffers cost two more ArrayBuffers per idle connection (bench:signaling).
 */
function packKeys(rec: ClientRecord, shared: SharedKey): Pick<ClientRecord, 'shared' | 'ourCookie' | 'theirCookie'> {
  if (rec.theirCookie === null) throw new ServerRefusal(CloseCode.InternalError, 'bad-message', 'no client cookie yet');
  const block = new Uint8Array(32 + 2 * COOKIE_LENGTH);
  block.set(shared, 0);
  block.set(rec.ourCookie, 32);
  block.set(rec.theirCookie, 32 + COOKIE_LENGTH);
  // A view, not asSharedKey (which copies): the bytes are a SharedKey already.
  return {
    shared: block.subarray(0, 32) as SharedKey,
    ourCookie: block.subarray(32, 32 + COOKIE_LENGTH),
    theirCookie: block.subarray(32 + COOKIE_LENGTH),
  };
}

function decodeClientAuthBox(rec: ClientRecord, nonce: Uint8Array, data: Uint8Array): sm.ClientAuth {
  let plain: Uint8Array;
  try {
    plain = boxOpenAfter(data, nonce, requireShared(rec));
  } catch (e) {
    if (e instanceof ZeroRoomError) throw authError('client-auth does not decrypt (unencrypted, wrong key or tampered)');
    throw e;
  }
  try {
    return sm.decodeClientAuth(plain);
  } catch (e) {
    if (e instanceof DecodeError) throw protocolError('malformed client-auth');
    throw e;
  }
}

function authenticate(tx: Tx, rec: ClientRecord, role: Role, auth: sm.ClientAuth): void {
  if (!equalBytes(auth.yourCookie, rec.ourCookie)) throw authError('client-auth your_cookie is not our cookie');
  // "The first common subprotocol found ... MUST be equal to the initially negotiated subprotocol"
  const common = auth.subprotocols.find((p) => SERVER_SUBPROTOCOLS.includes(p));
  if (common !== SUBPROTOCOL) throw authError('subprotocol downgrade');
  let signer: BoxKeyPair | undefined = tx.ctx.permanentKeys[0];
  if (auth.yourKey !== undefined) {
    const pinned = auth.yourKey;
    signer = tx.ctx.permanentKeys.find((k) => equalBytes(k.publicKey, pinned));
    if (signer === undefined) throw new ServerRefusal(CloseCode.InvalidKey, 'bad-auth', 'pinned server key unknown');
  }
  const pingIntervalSeconds = auth.pingInterval ?? 0;
  if (tx.ctx.clustered === true) {
    tx.put({ ...rec, phase: 'claiming', role, claim: { signer, pingIntervalSeconds, held: [] } });
    tx.emit({ type: 'claim', conn: rec.conn, role });
    return;
  }
  if (role === 'initiator') authenticateInitiator(tx, rec, signer, pingIntervalSeconds);
  else authenticateResponder(tx, rec, signer, pingIntervalSeconds);
}

function authenticateInitiator(tx: Tx, rec: ClientRecord, signer: BoxKeyPair | undefined, ping: number): void {
  // "a previous initiator on the same path SHALL be dropped ... 3004"
  if (tx.initiator !== null) {
    const previous = tx.initiator;
    tx.log('initiator-replaced', { conn: previous, by: rec.conn });
    closeClient(tx, previous, CloseCode.DroppedByInitiator, false);
  }
  const authed: ClientRecord = { ...rec, phase: 'authenticated', role: 'initiator', address: INITIATOR_ADDRESS };
  tx.put(authed);
  tx.initiator = rec.conn;
  const responders = [...tx.responderMap().keys()].sort((a, b) => a - b);
  for (const rconn of tx.responderMap().values()) notify(tx, rconn, sm.encodeNewInitiator());
  sendServerAuth(tx, authed, signer, { responders });
  tx.emit({ type: 'authenticated', conn: rec.conn, role: 'initiator', address: INITIATOR_ADDRESS, pingIntervalSeconds: ping });
}

function authenticateResponder(tx: Tx, rec: ClientRecord, signer: BoxKeyPair | undefined, ping: number): void {
  const address = lowestFreeResponder(tx.responderMap());
  if (address === null) throw new ServerRefusal(CloseCode.PathFull, 'path-full', 'path full (254 responders)');
  const authed: ClientRecord = { ...rec, phase: 'authenticated', role: 'responder', address };
  tx.put(authed);
  tx.setResponder(address, rec.conn);
  if (tx.initiator !== null) notify(tx, tx.initiator, sm.encodeNewResponder({ id: address }));
  sendServerAuth(tx, authed, signer, { initiatorConnected: tx.initiator !== null });
  tx.emit({ type: 'authenticated', conn: rec.conn, role: 'responder', address, pingIntervalSeconds: ping });
}

function sendServerAuth(
  tx: Tx,
  rec: ClientRecord,
  signer: BoxKeyPair | undefined,
  roleFields: { responders: number[] } | { initiatorConnected: boolean },
): void {
  if (rec.theirCookie === null || rec.clientKey === null || rec.sessionPublic === null) {
    throw new ServerRefusal(CloseCode.InternalError, 'bad-message', 'server-auth before client-auth');
  }
  const nonce = encodeNonce({ cookie: rec.ourCookie, source: SERVER_ADDRESS, destination: rec.address, csn: rec.ourCsn });
  // signed_keys: box(session public || client permanent public) from our permanent key, same nonce.
  const signedKeys =
    signer === undefined
      ? undefined
      : boxAfter(concatBytes(rec.sessionPublic, rec.clientKey), nonce, tx.ctx.sharedKey(rec.clientKey, signer.secretKey));
  const plain = sm.encodeServerAuth({ yourCookie: rec.theirCookie, signedKeys, ...roleFields });
  const sent = sendToClient(tx, rec, plain, true);
  if (tx.client(rec.conn) === sent) tx.put({ ...sent, sessionPublic: null, clientKey: null });
}

function onAuthenticatedMessage(tx: Tx, rec: ClientRecord, nonce: Uint8Array, data: Uint8Array): void {
  // After authentication only an initiator talks to the server, and only with 'drop-responder'.
  if (rec.role !== 'initiator') throw protocolError('responder sent a message to the server after authentication');
  let plain: Uint8Array;
  try {
    plain = boxOpenAfter(data, nonce, requireShared(rec));
  } catch (e) {
    if (e instanceof ZeroRoomError) throw protocolError('server message does not decrypt');
    throw e;
  }
  const drop = sm.decodeDropResponder(plain);
  if (tx.ctx.clustered === true) {
    const code = sm.dropReasonOf(drop);
    tx.log('drop-responder', { conn: rec.conn, id: drop.id, code });
    tx.emit({ type: 'cluster-drop', conn: rec.conn, id: drop.id, code });
    return;
  }
  const target = tx.responderAt(drop.id);
  if (target === undefined) {
    tx.log('drop-responder-unknown', { conn: rec.conn, id: drop.id });
    return;
  }
  const code = sm.dropReasonOf(drop);
  tx.log('drop-responder', { conn: rec.conn, id: drop.id, code });
  closeClient(tx, target, code, false);
}

// --- several nodes (ctx.clustered) ----------------------------------------------------------------

/** Keep a frame of a claiming client for after its server-auth (bounded). */
function hold(tx: Tx, rec: ClientRecord, bytes: Uint8Array): void {
  const claim = rec.claim;
  if (claim === undefined) throw new ServerRefusal(CloseCode.InternalError, 'bad-message', 'claiming without a claim');
  if (claim.held.length >= MAX_HELD_FRAMES) return refuse(tx, rec.conn, protocolError('too many frames before server-auth'));
  tx.put({ ...rec, claim: { ...claim, held: [...claim.held, bytes] } });
}

function onClusterEvent(tx: Tx, event: ClusterEvent): void {
  const rec = tx.client(event.conn);
  // A client we closed already (its 'leave' frees the slot): nothing to tell it.
  if (rec === undefined) return;
  switch (event.type) {
    case 'granted-initiator':
    case 'granted-responder':
      return granted(tx, rec, event);
    case 'path-full':
      if (rec.phase !== 'claiming' || rec.role !== 'responder') return unexpected(tx, rec, event.type);
      tx.log('refused', { conn: rec.conn, code: CloseCode.PathFull, reason: 'path-full', why: 'path full (254 responders)' });
      // The cluster gave it no slot: nothing to leave.
      return closeClient(tx, rec.conn, CloseCode.PathFull, false, 'path-full');
    case 'dropped':
      if (rec.phase !== 'authenticated') return unexpected(tx, rec, event.type);
      if (rec.role === 'initiator') tx.log('initiator-replaced', { conn: rec.conn });
      return closeClient(tx, rec.conn, event.code, false);
    case 'new-responder':
      if (rec.phase !== 'authenticated' || rec.role !== 'initiator') return unexpected(tx, rec, event.type);
      sendToClient(tx, rec, sm.encodeNewResponder({ id: event.id }), true);
      return;
    case 'new-initiator':
      if (rec.phase !== 'authenticated' || rec.role !== 'responder') return unexpected(tx, rec, event.type);
      sendToClient(tx, rec, sm.encodeNewInitiator(), true);
      return;
    case 'disconnected':
      if (rec.phase !== 'authenticated') return unexpected(tx, rec, event.type);
      sendToClient(tx, rec, sm.encodeDisconnected({ id: event.id }), true);
      return;
    case 'send-error':
      if (rec.phase !== 'authenticated') return unexpected(tx, rec, event.type);
      sendToClient(tx, rec, sm.encodeSendError({ id: event.id }), true);
      return;
  }
}

/** The cluster sent something that does not fit the client's phase or role: log it, change nothing. */
function unexpected(tx: Tx, rec: ClientRecord, what: string): void {
  tx.log('cluster-unexpected', { conn: rec.conn, what, phase: rec.phase });
}

function granted(tx: Tx, rec: ClientRecord, event: Extract<ClusterEvent, { type: 'granted-initiator' | 'granted-responder' }>): void {
  const role: Role = event.type === 'granted-initiator' ? 'initiator' : 'responder';
  const claim = rec.claim;
  if (rec.phase !== 'claiming' || rec.role !== role || claim === undefined) return unexpected(tx, rec, event.type);
  const { claim: _done, ...unclaimed } = rec;
  const address = event.type === 'granted-initiator' ? INITIATOR_ADDRESS : event.address;
  const authed: ClientRecord = { ...unclaimed, phase: 'authenticated', role, address };
  tx.put(authed);
  if (event.type === 'granted-initiator') sendServerAuth(tx, authed, claim.signer, { responders: [...event.responders] });
  else sendServerAuth(tx, authed, claim.signer, { initiatorConnected: event.initiatorConnected });
  tx.emit({ type: 'authenticated', conn: rec.conn, role, address, pingIntervalSeconds: claim.pingIntervalSeconds });
  for (const frame of claim.held) onFrame(tx, rec.conn, frame);
}
