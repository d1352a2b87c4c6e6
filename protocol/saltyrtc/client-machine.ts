/**
 * SaltyRTC 1.0 client as a pure state machine: `step(ctx, state, event) -> {state, effects}`.
 * Covers the server handshake (initiator and responder, optional server-key pinning via
 * signed_keys), the client-to-client handshake (token path and trusted-key path), WebRTC task
 * negotiation, post-handshake messages and close codes (Protocol.md). The driver
 * (client-driver.ts) owns the WebSocket and timers and feeds frames in.
 *
 * Group use (docs/PROTOCOL.md section 4): an initiator runs one handshake per responder address,
 * concurrently. SaltyRTC 1.0 has one token per initiator session; we accept several pending
 * invites by trying each pending token (a secretbox open, ~10 us) on a responder's first message,
 * then each trusted permanent key (precomputed box keys) for the trusted-key path.
 */
import {
  AuthError,
  boxBefore,
  boxAfter,
  boxOpenAfter,
  equalBytes,
  generateBoxKeyPair,
  secretbox,
  secretboxOpen,
  asBoxPublicKey,
  asSecretboxKey,
  type BoxKeyPair,
  type BoxPublicKey,
  type RandomBytes,
  type SharedKey,
} from '../../crypto/index.ts';
import { ZeroRoomError } from '../errors.ts';
import { decodeNonce, encodeNonce, initialCsn } from './nonce.ts';
import * as sm from './server-messages.ts';
import { CloseCode } from './close-codes.ts';
import * as pm from './peer-messages.ts';
import { SaltyClientError } from './client-errors.ts';

export const SUBPROTOCOL = 'v1.saltyrtc.org';
const COOKIE_LEN = 16;
const INITIATOR = 0x01;

/** Everything the machine needs that is not wire input. Callbacks are the application's decisions. */
export interface ClientContext {
  readonly role: 'initiator' | 'responder';
  readonly permanent: BoxKeyPair;
  /** Pinned server permanent key: server-auth MUST carry valid signed_keys. */
  readonly serverKey?: BoxPublicKey;
  readonly random: RandomBytes;
  /** Memoised boxBefore(theirPub, permanent.secretKey) (X25519 is the expensive half). */
  readonly sharedWith: (theirPublic: BoxPublicKey) => SharedKey;
  readonly taskData: pm.WebRtcTaskData;
  // initiator
  /** Tokens of the invites currently pending (tried in order on a responder's first message). */
  readonly pendingTokens?: () => Iterable<Uint8Array>;
  /** Called once a token opened a 'token' message; return false to refuse (reused/expired). */
  readonly acceptToken?: (token: Uint8Array, responderKey: BoxPublicKey) => boolean;
  /** Permanent keys the initiator trusts (responders that may skip the token). */
  readonly trustedKeys?: () => Iterable<BoxPublicKey>;
  /**
   * Auth tokens the initiator issued and now refuses (used, revoked, expired invites): a responder
   * whose token opens with one of them gets the authenticated refusal (docs/PROTOCOL.md 4.1), unless
   * its permanent key is trusted.
   */
  readonly refusedTokens?: () => Iterable<Uint8Array>;
  /** Permanent keys the initiator knows and refuses (e.g. removed members): authenticated refusal. */
  readonly refusedKeys?: () => Iterable<BoxPublicKey>;
  /**
   * A responder asks for an ICE restart of one of its link sessions (docs/PROTOCOL.md 4.6): true
   * chooses the ICE-restart task, false the WebRTC task (a new peer connection). Absent: never.
   */
  readonly acceptIceRestart?: (responderKey: BoxPublicKey, request: pm.IceRestartTaskData) => boolean;
  // responder
  readonly initiatorKey?: BoxPublicKey;
  /** Invite token; absent means the trusted-key path (the initiator knows our key). */
  readonly token?: Uint8Array;
  /** Ask for an ICE restart of this link session: the ICE-restart task is offered before the WebRTC task. */
  readonly iceRestart?: pm.IceRestartTaskData;
}

/** Nonce bookkeeping for one other party (Protocol.md "Sending/Receiving a Signalling Message"). */
interface Channel {
  readonly ourCookie: Uint8Array;
  readonly ourCsn: number;
  readonly theirCookie: Uint8Array | null;
  readonly theirCsn: number | null; // next expected
}

export type PeerStage = 'await-token-or-key' | 'await-key' | 'await-auth' | 'authenticated' | 'handed-over';

export interface PeerState {
  readonly address: number;
  readonly stage: PeerStage;
  readonly channel: Channel;
  readonly permanentKey: BoxPublicKey | null;
  readonly session: BoxKeyPair | null;
  readonly sessionShared: SharedKey | null;
  /** Initiator: this responder gets the authenticated refusal instead of our `auth` (4.1). */
  readonly refused: boolean;
}

export interface ClientState {
  readonly phase: 'await-server-hello' | 'await-server-auth' | 'ready' | 'closed';
  readonly address: number;
  readonly server: Channel;
  readonly serverSessionKey: BoxPublicKey | null;
  readonly serverShared: SharedKey | null;
  readonly peers: ReadonlyMap<number, PeerState>;
}

export type ClientEvent =
  | { readonly type: 'frame'; readonly bytes: Uint8Array }
  /** Send a post-handshake message (task/application/close payload, already msgpack) to a peer. */
  | { readonly type: 'send'; readonly peer: number; readonly payload: Uint8Array }
  /** Both handovers are done: the responder leaves the server (3003), the initiator forgets the peer. */
  | { readonly type: 'handover-done'; readonly peer: number }
  /** Application ends a peer: 'close' if authenticated, then drop (initiator) or leave (responder). */
  | { readonly type: 'close-peer'; readonly peer: number; readonly reason: number }
  | { readonly type: 'responder-timeout'; readonly peer: number }
  | { readonly type: 'ws-closed'; readonly code: number };

export type ClientEffect =
  | { readonly type: 'send'; readonly bytes: Uint8Array }
  | { readonly type: 'close-ws'; readonly code: number }
  | { readonly type: 'server-ready'; readonly address: number; readonly initiatorConnected: boolean }
  | { readonly type: 'responder-added'; readonly peer: number }
  | {
      readonly type: 'peer-authenticated';
      readonly peer: number;
      readonly peerKey: BoxPublicKey;
      readonly sessionShared: SharedKey;
      readonly taskData: pm.WebRtcTaskData;
      /** The ICE-restart task was chosen (for this session); null: the WebRTC task (a new peer connection). */
      readonly iceRestart: pm.IceRestartTaskData | null;
    }
  | { readonly type: 'peer-message'; readonly peer: number; readonly message: pm.PostAuthMessage }
  | { readonly type: 'peer-lost'; readonly peer: number; readonly error: SaltyClientError }
  | { readonly type: 'warning'; readonly message: string }
  /** Terminal: the signaling connection is over (the driver also gets 'close-ws' or a socket close). */
  | { readonly type: 'failed'; readonly error: SaltyClientError };

export interface Step {
  readonly state: ClientState;
  readonly effects: readonly ClientEffect[];
}

function newChannel(random: RandomBytes): Channel {
  return { ourCookie: random(COOKIE_LEN), ourCsn: initialCsn(random), theirCookie: null, theirCsn: null };
}

export function initialState(ctx: ClientContext): ClientState {
  return {
    phase: 'await-server-hello',
    address: 0,
    server: newChannel(ctx.random),
    serverSessionKey: null,
    serverShared: null,
    peers: new Map(),
  };
}

class ProtocolError extends ZeroRoomError {
  constructor(message: string) {
    super('saltyrtc.protocol', message);
  }
}

// --- nonce checks --------------------------------------------------------------------------

function checkIncoming(ch: Channel, cookie: Uint8Array, csn: number): Channel {
  if (ch.theirCookie === null) {
    if (csn >= 2 ** 32) throw new ProtocolError('first message must have overflow number 0');
    if (equalBytes(cookie, ch.ourCookie)) throw new ProtocolError('peer uses our cookie');
  } else {
    if (!equalBytes(cookie, ch.theirCookie)) throw new ProtocolError('peer cookie changed');
    if (csn !== ch.theirCsn) throw new ProtocolError(`bad sequence number ${csn}, expected ${String(ch.theirCsn)}`);
  }
  return { ...ch, theirCookie: cookie.slice(), theirCsn: csn + 1 };
}

function outgoing(ch: Channel, source: number, destination: number): { ch: Channel; nonce: Uint8Array } {
  if (ch.ourCsn + 1 >= 2 ** 48) throw new ProtocolError('sequence number exhausted');
  const nonce = encodeNonce({ cookie: ch.ourCookie, source, destination, csn: ch.ourCsn });
  return { ch: { ...ch, ourCsn: ch.ourCsn + 1 }, nonce };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// --- step -----------------------------------------------------------------------------------

/** Mutable builder used inside one step; the returned state is a fresh object. */
class Tx {
  effects: ClientEffect[] = [];
  peers: Map<number, PeerState>;
  constructor(
    readonly ctx: ClientContext,
    public s: ClientState,
  ) {
    this.peers = new Map(s.peers);
  }
  emit(e: ClientEffect): void {
    this.effects.push(e);
  }
  done(): Step {
    return { state: { ...this.s, peers: this.peers }, effects: this.effects };
  }
  fail(error: SaltyClientError, closeCode: number): void {
    this.s = { ...this.s, phase: 'closed' };
    this.peers.clear();
    this.emit({ type: 'close-ws', code: closeCode });
    this.emit({ type: 'failed', error });
  }
  sendToServer(payload: Uint8Array, encrypt: boolean): void {
    const { ch, nonce } = outgoing(this.s.server, this.s.address, 0);
    this.s = { ...this.s, server: ch };
    const data = encrypt ? boxAfter(payload, nonce, this.serverShared()) : payload;
    this.emit({ type: 'send', bytes: concat(nonce, data) });
  }
  serverShared(): SharedKey {
    if (this.s.serverShared === null) throw new ProtocolError('no server session key yet');
    return this.s.serverShared;
  }
  /** Seal `payload` to `peer` with `seal(payload, nonce)`. */
  sendToPeer(p: PeerState, payload: Uint8Array, seal: (m: Uint8Array, nonce: Uint8Array) => Uint8Array): PeerState {
    const { ch, nonce } = outgoing(p.channel, this.s.address, p.address);
    const next = { ...p, channel: ch };
    this.peers.set(p.address, next);
    this.emit({ type: 'send', bytes: concat(nonce, seal(payload, nonce)) });
    return next;
  }
}

export function step(ctx: ClientContext, state: ClientState, event: ClientEvent): Step {
  const tx = new Tx(ctx, state);
  if (state.phase === 'closed') {
    // A close we asked for (handover 3003, leaving 1001) ends here; other events are stale.
    if (event.type === 'ws-closed') tx.emit({ type: 'failed', error: errorForCloseCode(event.code) });
    else tx.emit({ type: 'warning', message: `event ${event.type} after close ignored` });
    return tx.done();
  }
  switch (event.type) {
    case 'frame':
      onFrame(tx, event.bytes);
      break;
    case 'send':
      onSend(tx, event.peer, event.payload);
      break;
    case 'handover-done':
      onHandoverDone(tx, event.peer);
      break;
    case 'close-peer':
      onClosePeer(tx, event.peer, event.reason);
      break;
    case 'responder-timeout': {
      const p = tx.peers.get(event.peer);
      if (p !== undefined && p.stage === 'await-token-or-key')
        dropResponder(tx, p.address, CloseCode.DroppedByInitiator, 'responder sent nothing for 60 s');
      break;
    }
    case 'ws-closed':
      onWsClosed(tx, event.code);
      break;
  }
  return tx.done();
}

function onWsClosed(tx: Tx, code: number): void {
  tx.s = { ...tx.s, phase: 'closed' };
  tx.peers.clear();
  tx.emit({ type: 'failed', error: errorForCloseCode(code) });
}

/** What a WebSocket close code means for this client (Protocol.md "Close Code Enumeration"). */
export function errorForCloseCode(code: number): SaltyClientError {
  switch (code) {
    case CloseCode.GoingAway:
      return new SaltyClientError('saltyrtc.peer-closed', 'signaling closed normally (1001)', code);
    case CloseCode.NoSharedSubprotocol:
      return new SaltyClientError('saltyrtc.subprotocol', 'server speaks no shared subprotocol (1002)', code);
    case CloseCode.PathFull:
      return new SaltyClientError('saltyrtc.path-full', 'path full (3000)', code);
    case CloseCode.ProtocolError:
      return new SaltyClientError('saltyrtc.protocol', 'protocol error (3001)', code);
    case CloseCode.InternalError:
      return new SaltyClientError('saltyrtc.server', 'server internal error (3002)', code);
    case CloseCode.Handover:
      return new SaltyClientError('saltyrtc.peer-closed', 'signaling handed over (3003)', code);
    case CloseCode.DroppedByInitiator:
      return new SaltyClientError('saltyrtc.dropped', 'dropped by the initiator (3004)', code);
    case CloseCode.InitiatorCouldNotDecrypt:
      return new SaltyClientError(
        'saltyrtc.refused',
        'initiator could not decrypt: token invalid or reused, or key not trusted (3005)',
        code,
      );
    case CloseCode.NoSharedTask:
      return new SaltyClientError('saltyrtc.no-task', 'no shared task (3006)', code);
    case CloseCode.InvalidKey:
      return new SaltyClientError('saltyrtc.server-key', 'server does not hold the requested permanent key (3007)', code);
    case CloseCode.Timeout:
      return new SaltyClientError('saltyrtc.timeout', 'server timeout (3008)', code);
    default:
      return new SaltyClientError('saltyrtc.server', `signaling connection closed (${code})`, code);
  }
}

function onFrame(tx: Tx, bytes: Uint8Array): void {
  if (bytes.length <= 24) return tx.fail(new SaltyClientError('saltyrtc.protocol', 'message without data'), CloseCode.ProtocolError);
  let nonce: ReturnType<typeof decodeNonce>;
  try {
    nonce = decodeNonce(bytes.subarray(0, 24));
  } catch (e) {
    return tx.fail(protocolError(e), CloseCode.ProtocolError);
  }
  const data = bytes.subarray(24);
  const nonceBytes = bytes.subarray(0, 24);
  const ctx = tx.ctx;
  // Destination: our address, or 0x00 during authentication; server-auth assigns the address.
  if (tx.s.phase === 'await-server-auth' && nonce.source === 0) {
    const ok = ctx.role === 'initiator' ? nonce.destination === INITIATOR : nonce.destination >= 2 && nonce.destination <= 0xff;
    if (!ok)
      return tx.fail(new SaltyClientError('saltyrtc.protocol', `address ${nonce.destination} does not fit role`), CloseCode.ProtocolError);
  } else if (nonce.destination !== tx.s.address) {
    return tx.fail(new SaltyClientError('saltyrtc.protocol', `message for address ${nonce.destination}`), CloseCode.ProtocolError);
  }
  if (nonce.source === 0) {
    try {
      const server = checkIncoming(tx.s.server, nonce.cookie, nonce.csn);
      tx.s = { ...tx.s, server };
      onServerMessage(tx, nonce.destination, nonceBytes, data);
    } catch (e) {
      tx.fail(protocolError(e), CloseCode.ProtocolError);
    }
    return;
  }
  // Client-to-client: only after server authentication, only from the other role.
  const validSource = ctx.role === 'initiator' ? nonce.source >= 2 : nonce.source === INITIATOR;
  if (tx.s.phase !== 'ready' || !validSource) {
    tx.emit({ type: 'warning', message: `discarded message from address ${nonce.source}` });
    return;
  }
  const peer = tx.peers.get(nonce.source);
  if (peer === undefined) {
    tx.emit({ type: 'warning', message: `discarded message from unannounced address ${nonce.source}` });
    return;
  }
  try {
    const p = { ...peer, channel: checkIncoming(peer.channel, nonce.cookie, nonce.csn) };
    tx.peers.set(p.address, p);
    onPeerMessage(tx, p, nonceBytes, data);
  } catch (e) {
    peerProtocolError(tx, peer, protocolError(e));
  }
}

function protocolError(e: unknown): SaltyClientError {
  if (e instanceof SaltyClientError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new SaltyClientError('saltyrtc.protocol', msg, CloseCode.ProtocolError);
}

// --- server handshake -------------------------------------------------------------------------

function onServerMessage(tx: Tx, destination: number, nonce: Uint8Array, data: Uint8Array): void {
  const ctx = tx.ctx;
  switch (tx.s.phase) {
    case 'await-server-hello': {
      const hello = sm.decodeServerHello(data);
      if (ctx.serverKey !== undefined && equalBytes(hello.key, ctx.serverKey)) {
        throw new SaltyClientError('saltyrtc.server-key', 'server session key equals its permanent key');
      }
      const serverSessionKey = asBoxPublicKey(hello.key);
      tx.s = { ...tx.s, phase: 'await-server-auth', serverSessionKey, serverShared: boxBefore(serverSessionKey, ctx.permanent.secretKey) };
      if (ctx.role === 'responder') tx.sendToServer(sm.encodeClientHello({ key: ctx.permanent.publicKey }), false);
      const yourCookie = tx.s.server.theirCookie;
      if (yourCookie === null) throw new ProtocolError('no server cookie');
      tx.sendToServer(sm.encodeClientAuth({ yourCookie, subprotocols: [SUBPROTOCOL], pingInterval: 0, yourKey: ctx.serverKey }), true);
      return;
    }
    case 'await-server-auth': {
      const plain = boxOpenAfter(data, nonce, tx.serverShared());
      const auth = sm.decodeServerAuth(plain, ctx.role);
      if (!equalBytes(auth.yourCookie, tx.s.server.ourCookie)) throw new ProtocolError('server-auth: your_cookie mismatch');
      if (ctx.serverKey !== undefined) checkSignedKeys(tx, auth.signedKeys, nonce);
      else if (auth.signedKeys !== undefined) tx.emit({ type: 'warning', message: 'server signed its keys but no server key is pinned' });
      tx.s = { ...tx.s, phase: 'ready', address: destination };
      if (ctx.role === 'initiator') {
        for (const id of auth.responders ?? []) addResponder(tx, id);
        tx.emit({ type: 'server-ready', address: destination, initiatorConnected: true });
      } else {
        const connected = auth.initiatorConnected === true;
        tx.emit({ type: 'server-ready', address: destination, initiatorConnected: connected });
        if (connected) startResponderHandshake(tx);
      }
      return;
    }
    case 'ready':
      onServerNotice(tx, boxOpenAfter(data, nonce, tx.serverShared()));
      return;
    case 'closed':
      return;
  }
}

function checkSignedKeys(tx: Tx, signed: Uint8Array | undefined, nonce: Uint8Array): void {
  const ctx = tx.ctx;
  if (signed === undefined || ctx.serverKey === undefined || tx.s.serverSessionKey === null) {
    throw new SaltyClientError('saltyrtc.server-key', 'server-auth lacks signed_keys but a server key is pinned');
  }
  let opened: Uint8Array;
  try {
    opened = boxOpenAfter(signed, nonce, ctx.sharedWith(ctx.serverKey));
  } catch (e) {
    if (!(e instanceof AuthError)) throw e;
    throw new SaltyClientError('saltyrtc.server-key', 'signed_keys not signed by the pinned server key');
  }
  if (!equalBytes(opened, concat(tx.s.serverSessionKey, ctx.permanent.publicKey))) {
    throw new SaltyClientError('saltyrtc.server-key', 'signed_keys do not match the session and our key');
  }
}

function onServerNotice(tx: Tx, plain: Uint8Array): void {
  const msg = sm.decodeServerToClient(plain, tx.ctx.role);
  switch (msg.type) {
    case 'new-responder':
      addResponder(tx, msg.id);
      tx.emit({ type: 'responder-added', peer: msg.id });
      return;
    case 'new-initiator':
      tx.peers.delete(INITIATOR);
      startResponderHandshake(tx);
      return;
    case 'disconnected': {
      const had = tx.peers.delete(msg.id);
      if (had)
        tx.emit({ type: 'peer-lost', peer: msg.id, error: new SaltyClientError('saltyrtc.peer-closed', `peer ${msg.id} disconnected`) });
      return;
    }
    case 'send-error': {
      // Protocol.md 'send-error': a protocol error towards the destination client, without a 'close'.
      const dest = msg.id[1] ?? 0;
      const p = tx.peers.get(dest);
      if (p === undefined) return tx.emit({ type: 'warning', message: `send-error for unknown peer ${dest}` });
      const err = new SaltyClientError('saltyrtc.peer-closed', `server could not relay to peer ${dest}`);
      if (tx.ctx.role === 'responder') return tx.fail(err, CloseCode.GoingAway);
      tx.peers.delete(dest);
      tx.emit({ type: 'peer-lost', peer: dest, error: err });
      return;
    }
  }
}

function addResponder(tx: Tx, id: number): void {
  // A re-used address is a new responder: forget everything about the previous one.
  tx.peers.set(id, {
    address: id,
    stage: 'await-token-or-key',
    channel: newChannel(tx.ctx.random),
    permanentKey: null,
    session: null,
    sessionShared: null,
    refused: false,
  });
}

function startResponderHandshake(tx: Tx): void {
  const ctx = tx.ctx;
  if (ctx.initiatorKey === undefined) throw new ProtocolError('responder needs the initiator key');
  const session = generateBoxKeyPair(ctx.random);
  let p: PeerState = {
    address: INITIATOR,
    stage: 'await-key',
    channel: newChannel(ctx.random),
    permanentKey: ctx.initiatorKey,
    session,
    sessionShared: null,
    refused: false,
  };
  tx.peers.set(INITIATOR, p);
  const token = ctx.token;
  if (token !== undefined) p = tx.sendToPeer(p, pm.encodeToken(ctx.permanent.publicKey), (m, n) => secretbox(m, n, asSecretboxKey(token)));
  const shared = ctx.sharedWith(ctx.initiatorKey);
  tx.sendToPeer(p, pm.encodeKey(session.publicKey), (m, n) => boxAfter(m, n, shared));
}

// --- client-to-client handshake ---------------------------------------------------------------

function onPeerMessage(tx: Tx, p: PeerState, nonce: Uint8Array, data: Uint8Array): void {
  switch (p.stage) {
    case 'await-token-or-key':
      return onFirstResponderMessage(tx, p, nonce, data);
    case 'await-key':
      return onKey(tx, p, nonce, data);
    case 'await-auth':
      return onAuth(tx, p, nonce, data);
    case 'authenticated':
    case 'handed-over':
      return onPostAuth(tx, p, nonce, data);
  }
}

/**
 * Initiator: the first message is a 'token' (pending invite) or a 'key' (trusted responder). A token
 * or key the initiator knows but refuses continues the handshake to the session keys and ends in the
 * authenticated refusal (docs/PROTOCOL.md 4.1); one it does not know is dropped with 3005.
 */
function onFirstResponderMessage(tx: Tx, p: PeerState, nonce: Uint8Array, data: Uint8Array): void {
  const ctx = tx.ctx;
  const openToken = (token: Uint8Array): BoxPublicKey | null => {
    let plain: Uint8Array;
    try {
      plain = secretboxOpen(data, nonce, asSecretboxKey(token));
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      return null; // not this invite's token: try the next one
    }
    return asBoxPublicKey(pm.decodeToken(plain).key);
  };
  const openKey = (key: BoxPublicKey): Uint8Array | null => {
    try {
      return boxOpenAfter(data, nonce, ctx.sharedWith(key));
    } catch (e) {
      if (!(e instanceof AuthError)) throw e; // only 'not this key' means try the next one
      return null;
    }
  };
  const trusted = (key: BoxPublicKey): boolean => {
    for (const t of ctx.trustedKeys?.() ?? []) if (equalBytes(t, key)) return true;
    return false;
  };
  for (const token of ctx.pendingTokens?.() ?? []) {
    const key = openToken(token);
    if (key === null) continue;
    // A token refused meanwhile, from a key we trust: a member reconnecting with a token it spent.
    const refused = ctx.acceptToken?.(token, key) !== true && !trusted(key);
    tx.peers.set(p.address, { ...p, stage: 'await-key', permanentKey: key, refused });
    return;
  }
  for (const key of ctx.trustedKeys?.() ?? []) {
    const plain = openKey(key);
    if (plain === null) continue;
    return onKeyPlain(tx, { ...p, stage: 'await-key', permanentKey: key }, plain);
  }
  for (const token of ctx.refusedTokens?.() ?? []) {
    const key = openToken(token);
    if (key === null) continue;
    tx.peers.set(p.address, { ...p, stage: 'await-key', permanentKey: key, refused: !trusted(key) });
    return;
  }
  for (const key of ctx.refusedKeys?.() ?? []) {
    const plain = openKey(key);
    if (plain === null) continue;
    return onKeyPlain(tx, { ...p, stage: 'await-key', permanentKey: key, refused: true }, plain);
  }
  dropResponder(tx, p.address, CloseCode.InitiatorCouldNotDecrypt, 'first message opened with no known token and no known key');
}

function onKey(tx: Tx, p: PeerState, nonce: Uint8Array, data: Uint8Array): void {
  if (p.permanentKey === null) throw new ProtocolError('key before permanent key known');
  let plain: Uint8Array;
  try {
    plain = boxOpenAfter(data, nonce, tx.ctx.sharedWith(p.permanentKey));
  } catch (e) {
    if (!(e instanceof AuthError)) throw e;
    if (tx.ctx.role === 'initiator') return dropResponder(tx, p.address, CloseCode.InitiatorCouldNotDecrypt, 'could not decrypt key');
    throw new ProtocolError('could not decrypt the initiator key message');
  }
  onKeyPlain(tx, p, plain);
}

function onKeyPlain(tx: Tx, p: PeerState, plain: Uint8Array): void {
  const ctx = tx.ctx;
  const msg = pm.decodeKey(plain);
  if (p.permanentKey === null || equalBytes(msg.key, p.permanentKey)) throw new ProtocolError('session key equals permanent key');
  const theirSession = asBoxPublicKey(msg.key);
  if (ctx.role === 'initiator') {
    const session = generateBoxKeyPair(ctx.random);
    const shared = ctx.sharedWith(p.permanentKey);
    const next = tx.sendToPeer({ ...p, session }, pm.encodeKey(session.publicKey), (m, n) => boxAfter(m, n, shared));
    tx.peers.set(p.address, { ...next, stage: 'await-auth', sessionShared: boxBefore(theirSession, session.secretKey) });
    return;
  }
  if (p.session === null) throw new ProtocolError('responder without session key');
  const sessionShared = boxBefore(theirSession, p.session.secretKey);
  const theirCookie = p.channel.theirCookie;
  if (theirCookie === null) throw new ProtocolError('no initiator cookie');
  const next = tx.sendToPeer(
    { ...p, sessionShared },
    pm.encodeAuthToInitiator(theirCookie, [pm.WEBRTC_TASK], ctx.taskData, ctx.iceRestart),
    (m, n) => boxAfter(m, n, sessionShared),
  );
  tx.peers.set(p.address, { ...next, stage: 'await-auth' });
}

function onAuth(tx: Tx, p: PeerState, nonce: Uint8Array, data: Uint8Array): void {
  const ctx = tx.ctx;
  const shared = p.sessionShared;
  if (shared === null || p.permanentKey === null) throw new ProtocolError('auth before key');
  const plain = boxOpenAfter(data, nonce, shared);
  if (ctx.role === 'initiator') {
    const auth = pm.decodeAuthFromResponder(plain);
    if (!equalBytes(auth.yourCookie, p.channel.ourCookie)) throw new ProtocolError('auth: your_cookie mismatch');
    if (p.refused) {
      // 4.1: the refusal in place of our auth, sealed with this handshake's session keys; no task.
      tx.sendToPeer(p, pm.encodeClose(pm.REFUSAL_REASON), (m, n) => boxAfter(m, n, shared));
      tx.emit({ type: 'warning', message: `refused responder ${p.address}: a token or key we know and refuse` });
      return dropResponder(tx, p.address, CloseCode.DroppedByInitiator, 'refused (authenticated refusal sent)');
    }
    if (!auth.tasks.includes(pm.WEBRTC_TASK)) {
      tx.sendToPeer(p, pm.encodeClose(CloseCode.NoSharedTask), (m, n) => boxAfter(m, n, shared));
      return dropResponder(tx, p.address, CloseCode.DroppedByInitiator, 'no shared task'); // 'close' 3006 told the responder why
    }
    const taskData = pm.decodeWebRtcTaskData(auth.data.get(pm.WEBRTC_TASK));
    const request = iceRestartRequest(auth);
    const theirCookie = p.channel.theirCookie;
    if (theirCookie === null) throw new ProtocolError('no responder cookie');
    // 4.6: the application decides whether it can restart that session; if not, the WebRTC task
    // (a new peer connection) is the fallback the responder offered.
    const restart = request !== null && ctx.acceptIceRestart?.(p.permanentKey, request) === true ? request : null;
    const reply =
      restart !== null
        ? pm.encodeAuthToResponderIceRestart(theirCookie, restart)
        : pm.encodeAuthToResponder(theirCookie, pm.WEBRTC_TASK, ctx.taskData);
    const next = tx.sendToPeer(p, reply, (m, n) => boxAfter(m, n, shared));
    tx.peers.set(p.address, { ...next, stage: 'authenticated' });
    tx.emit({ type: 'peer-authenticated', peer: p.address, peerKey: p.permanentKey, sessionShared: shared, taskData, iceRestart: restart });
    return;
  }
  const auth = pm.decodeInitiatorAnswer(plain);
  if (auth.type === 'refusal') {
    // Sealed with this handshake's session keys, whose initiator half came boxed from the initiator's
    // permanent key: only the owner can say this, and it cannot be replayed into another handshake.
    const err = new SaltyClientError('saltyrtc.initiator-refused', 'the owner refused this invite or key', auth.reason);
    tx.peers.delete(p.address);
    tx.emit({ type: 'peer-lost', peer: p.address, error: err });
    return tx.fail(err, CloseCode.GoingAway);
  }
  if (!equalBytes(auth.yourCookie, p.channel.ourCookie)) throw new ProtocolError('auth: your_cookie mismatch');
  if (auth.task === pm.ICE_RESTART_TASK && ctx.iceRestart !== undefined) {
    const echoed = pm.decodeIceRestartTaskData(auth.data.get(pm.ICE_RESTART_TASK));
    if (!equalBytes(echoed.session, ctx.iceRestart.session)) throw new ProtocolError('auth: ICE restart of a session we did not ask for');
    tx.peers.set(p.address, { ...p, stage: 'authenticated' });
    tx.emit({
      type: 'peer-authenticated',
      peer: p.address,
      peerKey: p.permanentKey,
      sessionShared: shared,
      taskData: ctx.taskData,
      iceRestart: echoed,
    });
    return;
  }
  if (auth.task !== pm.WEBRTC_TASK) throw new SaltyClientError('saltyrtc.no-task', `initiator chose a task we did not offer: ${auth.task}`);
  const taskData = pm.decodeWebRtcTaskData(auth.data.get(pm.WEBRTC_TASK));
  tx.peers.set(p.address, { ...p, stage: 'authenticated' });
  tx.emit({ type: 'peer-authenticated', peer: p.address, peerKey: p.permanentKey, sessionShared: shared, taskData, iceRestart: null });
}

/**
 * A responder's ICE-restart request (4.6), or null. The ICE-restart task MUST be offered first and
 * only beside the WebRTC task (the fallback); its data MUST decode strictly.
 */
export function iceRestartRequest(auth: pm.AuthFromResponder): pm.IceRestartTaskData | null {
  if (!auth.tasks.includes(pm.ICE_RESTART_TASK)) return null;
  if (auth.tasks.length !== 2 || auth.tasks[0] !== pm.ICE_RESTART_TASK || auth.tasks[1] !== pm.WEBRTC_TASK) {
    throw new ProtocolError('auth: the ICE-restart task must be offered first, followed only by the WebRTC task');
  }
  return pm.decodeIceRestartTaskData(auth.data.get(pm.ICE_RESTART_TASK));
}

function onPostAuth(tx: Tx, p: PeerState, nonce: Uint8Array, data: Uint8Array): void {
  if (p.sessionShared === null) throw new ProtocolError('no session key');
  const message = pm.decodePostAuth(boxOpenAfter(data, nonce, p.sessionShared));
  if (message.type === 'close') {
    // Protocol.md 'close': forget the peer; the responder leaves the server (1001). The initiator
    // stays for the other responders (group use) and only forgets this one.
    tx.peers.delete(p.address);
    const err = new SaltyClientError('saltyrtc.peer-closed', `peer closed (${message.reason})`, message.reason);
    tx.emit({ type: 'peer-lost', peer: p.address, error: err });
    if (tx.ctx.role === 'responder') tx.fail(err, CloseCode.GoingAway);
    return;
  }
  tx.emit({ type: 'peer-message', peer: p.address, message });
}

/** Protocol.md "Client-to-Client Messages": protocol errors depend on the peer's auth state. */
function peerProtocolError(tx: Tx, p: PeerState, err: SaltyClientError): void {
  const authenticated = p.stage === 'authenticated' || p.stage === 'handed-over';
  if (authenticated && p.sessionShared !== null) {
    const shared = p.sessionShared;
    tx.sendToPeer(p, pm.encodeClose(CloseCode.ProtocolError), (m, n) => boxAfter(m, n, shared));
  }
  if (tx.ctx.role === 'initiator') {
    if (!authenticated) return dropResponder(tx, p.address, CloseCode.ProtocolError, err.message);
    tx.peers.delete(p.address);
    tx.emit({ type: 'peer-lost', peer: p.address, error: err });
    return;
  }
  tx.fail(err, authenticated ? CloseCode.GoingAway : CloseCode.ProtocolError);
}

function dropResponder(tx: Tx, id: number, reason: number, why: string): void {
  tx.peers.delete(id);
  tx.sendToServer(sm.encodeDropResponder({ id, reason }), true);
  tx.emit({
    type: 'peer-lost',
    peer: id,
    error: new SaltyClientError(reason === CloseCode.InitiatorCouldNotDecrypt ? 'saltyrtc.refused' : 'saltyrtc.dropped', why, reason),
  });
}

// --- application events -------------------------------------------------------------------------

function onSend(tx: Tx, peer: number, payload: Uint8Array): void {
  const p = tx.peers.get(peer);
  if (p === undefined || p.stage !== 'authenticated' || p.sessionShared === null) {
    tx.emit({ type: 'warning', message: `cannot send to peer ${peer}: not authenticated` });
    return;
  }
  const shared = p.sessionShared;
  tx.sendToPeer(p, payload, (m, n) => boxAfter(m, n, shared));
}

function onHandoverDone(tx: Tx, peer: number): void {
  const p = tx.peers.get(peer);
  if (p === undefined) return;
  if (tx.ctx.role === 'responder') {
    tx.s = { ...tx.s, phase: 'closed' };
    tx.peers.clear();
    tx.emit({ type: 'close-ws', code: CloseCode.Handover });
    return;
  }
  // Task-WebRTC.md handover: signaling for this peer continues on the data channel.
  tx.peers.delete(peer);
}

function onClosePeer(tx: Tx, peer: number, reason: number): void {
  const p = tx.peers.get(peer);
  if (p === undefined) return;
  if (p.stage === 'authenticated' && p.sessionShared !== null) {
    const shared = p.sessionShared;
    tx.sendToPeer(p, pm.encodeClose(reason), (m, n) => boxAfter(m, n, shared));
  }
  if (tx.ctx.role === 'initiator') {
    tx.peers.delete(peer);
    tx.sendToServer(sm.encodeDropResponder({ id: peer, reason: CloseCode.DroppedByInitiator }), true);
    return;
  }
  tx.s = { ...tx.s, phase: 'closed' };
  tx.peers.clear();
  tx.emit({ type: 'close-ws', code: CloseCode.GoingAway });
}
