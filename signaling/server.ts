/**
 * SaltyRTC 1.0 signaling server on `ws` (noServer mode). This file is the driver: it owns sockets,
 * timers and limits, and feeds events to the pure per-path state machine in
 * protocol/saltyrtc/server-machine.ts, whose effects it carries out. Spec: docs/PROTOCOL.md
 * section 3 (what we implement of Protocol.md, limits, close codes).
 */
import type http from 'node:http';
import type https from 'node:https';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  asBoxPublicKey,
  systemRandom,
  toHex,
  type BoxKeyPair,
  type BoxPublicKey,
  type BoxSecretKey,
  type RandomBytes,
} from '../crypto/index.ts';
import { ZeroRoomError } from '../protocol/errors.ts';
import { CloseCode, UpgradeRefusal } from '../protocol/saltyrtc/close-codes.ts';
import {
  SUBPROTOCOL,
  emptyPath,
  step,
  type ConnId,
  type PathState,
  type ServerContext,
  type ServerEvent,
  type StepResult,
} from '../protocol/saltyrtc/server-machine.ts';
import { IpLimits } from './ip-limits.ts';
import { SharedKeyCache, nativeBoxBefore, nativeGenerateKeyPair } from './nacl-native.ts';
import { nullObserver, type RejectReason, type SignalingObserver } from './observer.ts';
import { type RelayBudget, throttle } from './relay-budget.ts';

export interface SignalingLimits {
  /** Largest WebSocket message accepted (bytes), within [MIN_MAX_PAYLOAD, MAX_MAX_PAYLOAD]. Larger: close 1009. */
  maxPayload: number;
  /** Open WebSocket connections in total. More: HTTP 503 at the upgrade. */
  maxConnections: number;
  /** Open connections from one IPv4 address or IPv6 /64. More: HTTP 429. */
  maxConnectionsPerIp: number;
  /** New connections per second from one address (token bucket, burst = this many). More: HTTP 429. */
  newConnectionsPerSecondPerIp: number;
  /** Time from the upgrade to a completed client-to-server handshake. Later: close 3008. */
  handshakeTimeoutMs: number;
  /** Time a client has to answer one of the pings it asked for (ping_interval). Later: close 3008. */
  pingTimeoutMs: number;
}

export const MIN_MAX_PAYLOAD = 64 * 1024;
export const MAX_MAX_PAYLOAD = 16 * 1024 * 1024;

export const defaultLimits: Readonly<SignalingLimits> = Object.freeze({
  maxPayload: 1024 * 1024,
  maxConnections: 10_000,
  maxConnectionsPerIp: 50,
  newConnectionsPerSecondPerIp: 20,
  handshakeTimeoutMs: 10_000,
  pingTimeoutMs: 30_000,
});

const LIMIT_RANGES: Record<keyof SignalingLimits, [number, number]> = {
  maxPayload: [MIN_MAX_PAYLOAD, MAX_MAX_PAYLOAD],
  maxConnections: [1, 1_000_000],
  maxConnectionsPerIp: [1, 1_000_000],
  newConnectionsPerSecondPerIp: [1, 1_000_000],
  handshakeTimeoutMs: [10, 600_000],
  pingTimeoutMs: [10, 600_000],
};

/** A bad limit or key list passed to attachSignalingServer. */
export class SignalingConfigError extends ZeroRoomError {
  constructor(message: string) {
    super('signaling.config', message);
  }
}

export type LogFields = Record<string, string | number | boolean>;

export interface SignalingServerOptions {
  /** Only upgrades to `/<64 lowercase hex>` are taken; other upgrades are left to other listeners
   * (or refused with 400 when we are the only 'upgrade' listener); plain requests are never touched. */
  server: http.Server | https.Server;
  /** The first is presented by default; clients may pin any of them via `your_key`. */
  permanentKeys: BoxKeyPair[];
  limits?: Partial<SignalingLimits>;
  observer?: SignalingObserver;
  /** Structured events; fields never hold payloads, keys, paths or IP addresses. */
  log?: (event: string, fields: LogFields) => void;
  /**
   * The client address the per-IP limits count by. Default: the TCP peer address. Behind a reverse
   * proxy use `behindProxy([...proxy addresses])`, or every client shares the proxy's budget.
   */
  clientAddress?: (req: http.IncomingMessage) => string;
  /** Cookies and initial sequence numbers (session key pairs come from OpenSSL's CSPRNG). */
  random?: RandomBytes;
  now?: () => number;
  /** Per-path budget for relayed client-to-client data (docs/PROTOCOL.md 3.8); absent = unlimited. */
  relayBudget?: RelayBudget;
}

export interface SignalingServer {
  /** Close every client with 1001 (Going Away) and stop accepting upgrades. */
  close(): Promise<void>;
  readonly connectionCount: number;
  readonly pathCount: number;
}

const PATH_PATTERN = /^\/([0-9a-f]{64})$/;

/** Where a socket keeps its connection entry, for the shared listeners. */
/** A relay destination with more than this queued gets send-error instead of more data. */
export const MAX_BUFFERED_PER_CONNECTION = 8 * 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;
const SHUTDOWN_GRACE_MS = 2000;

interface PathEntry {
  readonly hex: string;
  readonly number: number;
  readonly ctx: ServerContext;
  state: PathState;
  /** Sockets of this path that have not emitted 'close' yet (a count, not a Set: idle paths are
   * most of the server's memory, and only emptiness is ever asked). */
  open: number;
}

interface ConnEntry {
  readonly id: ConnId;
  readonly ws: WebSocket;
  readonly path: PathEntry;
  readonly ip: string;
  /** We closed it (or the machine did): frames are no longer fed in. */
  closing: boolean;
  handshakeTimer: NodeJS.Timeout | null;
  pingTimer: NodeJS.Timeout | null;
  pongTimer: NodeJS.Timeout | null;
}

export function resolveLimits(partial: Partial<SignalingLimits> = {}): SignalingLimits {
  const limits = { ...defaultLimits };
  for (const key of Object.keys(LIMIT_RANGES) as (keyof SignalingLimits)[]) {
    const v = partial[key];
    if (v === undefined) continue;
    const [min, max] = LIMIT_RANGES[key];
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new SignalingConfigError(`limit ${key}=${v} outside [${min}, ${max}]`);
    limits[key] = v;
  }
  return limits;
}

function peerAddress(req: http.IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * Client addresses for a server behind reverse proxies: when the TCP peer is one of `trusted`,
 * the address is the last X-Forwarded-For entry (the one that proxy appended); otherwise, and
 * when the header is missing or empty, it is the TCP peer. Earlier entries are client-supplied
 * and never trusted.
 */
export function behindProxy(trusted: readonly string[]): (req: http.IncomingMessage) => string {
  const proxies = new Set(trusted.map(normalizeAddress));
  return (req) => {
    const peer = peerAddress(req);
    if (!proxies.has(normalizeAddress(peer))) return peer;
    const header = req.headers['x-forwarded-for'];
    const value = Array.isArray(header) ? header.at(-1) : header;
    const last = value?.split(',').at(-1)?.trim() ?? '';
    return last === '' ? peer : last;
  };
}

function normalizeAddress(a: string): string {
  return a.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

export function attachSignalingServer(opts: SignalingServerOptions): SignalingServer {
  const limits = resolveLimits(opts.limits);
  const observer = opts.observer ?? nullObserver;
  const log = opts.log ?? ((): void => undefined);
  const random = opts.random ?? systemRandom;
  const now = opts.now ?? Date.now;
  const clientAddress = opts.clientAddress ?? peerAddress;
  const permanentKeys = opts.permanentKeys.map((k) => ({ publicKey: asBoxPublicKey(k.publicKey), secretKey: k.secretKey }));
  if (new Set(permanentKeys.map((k) => toHex(k.publicKey))).size !== permanentKeys.length) {
    throw new SignalingConfigError('permanent keys must not repeat');
  }
  const permanentIds = new Map<BoxSecretKey, string>(opts.permanentKeys.map((k, i) => [k.secretKey, `p${i}`]));
  // box.before(client permanent key, server permanent key) for signed_keys: clients reconnect often.
  const signingKeys = new SharedKeyCache(1024);
  const sharedKey = (theirPublic: BoxPublicKey, mySecret: BoxSecretKey) => {
    const id = permanentIds.get(mySecret);
    return id === undefined ? nativeBoxBefore(theirPublic, mySecret) : signingKeys.get(theirPublic, mySecret, id);
  };
  // Session keys come from OpenSSL's CSPRNG (native generation keeps the key object); `random` feeds cookies and csns.
  const generateSessionKey = nativeGenerateKeyPair;

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: limits.maxPayload,
    perMessageDeflate: false, // payloads are ciphertext: nothing to gain, and a zip-bomb surface
    handleProtocols: () => SUBPROTOCOL, // checked in onUpgrade before handleUpgrade
  });
  const ipLimits = new IpLimits(limits.maxConnectionsPerIp, limits.newConnectionsPerSecondPerIp, now);
  const paths = new Map<string, PathEntry>();
  const conns = new Map<ConnId, ConnEntry>();
  // The shared socket listeners find their entry here. A Map entry is a few words; a property
  // added to each WebSocket gave every socket a PropertyArray (~90 B per idle connection).
  const bySocket = new Map<WebSocket, ConnEntry>();
  let nextConnId = 1;
  let nextPathNumber = 1;
  let closing = false;
  let closedResolve: (() => void) | null = null;
  let closePromise: Promise<void> | null = null;

  function refuseUpgrade(socket: Duplex, reason: keyof typeof UpgradeRefusal, observed: RejectReason | null): void {
    const status = UpgradeRefusal[reason];
    if (observed !== null) observer.rejected(observed);
    log('upgrade-refused', { reason, status });
    // As ws abortHandshake: a real HTTP response, then close the socket.
    const body = `${reason}\n`;
    const headers = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
      'Connection: close',
      'Content-Type: text/plain; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...(reason === 'rate-limited' ? ['Retry-After: 1'] : []),
    ];
    if (!socket.writable) return void socket.destroy();
    // Destroy only once the response is flushed (destroying right after end() can drop it).
    socket.once('finish', () => socket.destroy());
    socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
  }

  function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const match = PATH_PATTERN.exec(req.url ?? '');
    if (match === null) {
      // Someone else may serve other WebSocket paths on this HTTP server.
      if (opts.server.listenerCount('upgrade') > 1) return;
      return refuseUpgrade(socket, 'bad-path', 'bad-path');
    }
    if (closing) return refuseUpgrade(socket, 'shutting-down', null);
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) return refuseUpgrade(socket, 'bad-subprotocol', 'bad-subprotocol');
    if (conns.size >= limits.maxConnections) return refuseUpgrade(socket, 'too-many-connections', 'too-many-connections');
    const ip = clientAddress(req);
    const admitted = ipLimits.admit(ip);
    if (admitted !== 'ok') return refuseUpgrade(socket, admitted, admitted);
    const pathHex = match[1]!;
    // ws may refuse the handshake itself (bad headers): then the socket closes without a WebSocket.
    const releaseIfRefused = (): void => ipLimits.release(ip);
    socket.once('close', releaseIfRefused);
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', releaseIfRefused);
      onConnection(ws, pathHex, ip);
    });
  }

  function pathFor(pathHex: string): PathEntry {
    const existing = paths.get(pathHex);
    if (existing !== undefined) return existing;
    const entry: PathEntry = {
      hex: pathHex,
      number: nextPathNumber++,
      ctx: { initiatorKey: asBoxPublicKey(Buffer.from(pathHex, 'hex')), permanentKeys, random, generateSessionKey, sharedKey },
      state: emptyPath,
      open: 0,
    };
    paths.set(pathHex, entry);
    observer.pathOpened();
    log('path-opened', { path: entry.number });
    return entry;
  }

  function onConnection(ws: WebSocket, pathHex: string, ip: string): void {
    const path = pathFor(pathHex);
    const entry: ConnEntry = { id: nextConnId++, ws, path, ip, closing: false, handshakeTimer: null, pingTimer: null, pongTimer: null };
    conns.set(entry.id, entry);
    path.open++;
    observer.connectionOpened();
    log('connection-opened', { conn: entry.id, path: path.number });

    bySocket.set(ws, entry);
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    ws.on('error', onSocketError);
    ws.on('close', onSocketClose);

    entry.handshakeTimer = setTimeout(
      () => dispatch(path, { type: 'timeout', conn: entry.id, kind: 'handshake' }),
      limits.handshakeTimeoutMs,
    );
    dispatch(path, { type: 'connected', conn: entry.id });
  }

  // One set of listeners shared by every socket instead of four closures per connection: idle
  // connections are most of the server's memory (bench:signaling). `this` is the socket.
  function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    const entry = bySocket.get(this)!;
    if (entry.closing) return;
    if (!isBinary) return dispatch(entry.path, { type: 'invalid-frame', conn: entry.id, why: 'text frame (SaltyRTC is binary only)' });
    dispatch(entry.path, { type: 'frame', conn: entry.id, bytes: data });
  }

  function onSocketPong(this: WebSocket): void {
    clearTimer(bySocket.get(this)!, 'pongTimer');
  }

  function onSocketError(this: WebSocket, err: Error & { code?: string }): void {
    const entry = bySocket.get(this)!;
    // ws closes the socket itself (1009 for an oversized frame, 1002 for framing errors).
    log('ws-error', { conn: entry.id, code: err.code ?? 'unknown' });
    if (!entry.closing) observer.rejected('bad-message');
    entry.closing = true;
  }

  function onSocketClose(this: WebSocket, code: number): void {
    onClose(bySocket.get(this)!, code);
  }

  function onClose(entry: ConnEntry, code: number): void {
    clearTimer(entry, 'handshakeTimer');
    clearTimer(entry, 'pingTimer');
    clearTimer(entry, 'pongTimer');
    conns.delete(entry.id);
    bySocket.delete(entry.ws);
    ipLimits.release(entry.ip);
    observer.connectionClosed(code);
    log('connection-closed', { conn: entry.id, path: entry.path.number, code });
    const path = entry.path;
    path.open--;
    if (!closing) dispatch(path, { type: 'closed', conn: entry.id });
    if (path.open === 0 && paths.get(path.hex) === path) {
      paths.delete(path.hex);
      opts.relayBudget?.forget(path.number);
      observer.pathClosed();
      log('path-closed', { path: path.number });
    }
    if (closing && conns.size === 0) closedResolve?.();
  }

  function clearTimer(entry: ConnEntry, which: 'handshakeTimer' | 'pingTimer' | 'pongTimer'): void {
    const t = entry[which];
    if (t === null) return;
    if (which === 'pingTimer') clearInterval(t);
    else clearTimeout(t);
    entry[which] = null;
  }

  function startPings(entry: ConnEntry, seconds: number): void {
    if (seconds <= 0) return;
    const everyMs = Math.min(seconds * 1000, MAX_TIMER_MS);
    entry.pingTimer = setInterval(() => {
      if (entry.pongTimer !== null || entry.ws.readyState !== WebSocket.OPEN) return;
      entry.ws.ping();
      entry.pongTimer = setTimeout(() => {
        entry.pongTimer = null;
        dispatch(entry.path, { type: 'timeout', conn: entry.id, kind: 'ping' });
      }, limits.pingTimeoutMs);
    }, everyMs);
  }

  /** Run one event (and the events its effects cause, in order) through the path's machine. */
  function dispatch(path: PathEntry, first: ServerEvent): void {
    let queue: ServerEvent[] | null = null; // only relay failures add events; most frames need none
    for (let event: ServerEvent | undefined = first; event !== undefined; event = queue?.shift()) {
      let result: StepResult;
      try {
        result = step(path.ctx, path.state, event);
      } catch (e) {
        // A bug, not peer input (peer input ends in refusals): close that client with 3002 and take
        // it off the path instead of letting one connection crash the server.
        log('internal-error', { conn: event.conn, path: path.number, event: event.type, error: e instanceof Error ? e.name : typeof e });
        const c = conns.get(event.conn);
        if (c !== undefined && !c.closing) {
          c.closing = true;
          clearTimer(c, 'handshakeTimer');
          clearTimer(c, 'pingTimer');
          clearTimer(c, 'pongTimer');
          c.ws.close(CloseCode.InternalError);
        }
        if (event.type !== 'closed') (queue ??= []).push({ type: 'closed', conn: event.conn });
        continue;
      }
      const { state, effects } = result;
      path.state = state;
      for (const e of effects) {
        switch (e.type) {
          case 'send': {
            const c = conns.get(e.conn);
            if (c !== undefined && c.ws.readyState === WebSocket.OPEN) c.ws.send(e.bytes);
            break;
          }
          case 'relay': {
            const to = conns.get(e.to);
            if (
              to === undefined ||
              to.closing ||
              to.ws.readyState !== WebSocket.OPEN ||
              to.ws.bufferedAmount > MAX_BUFFERED_PER_CONNECTION
            ) {
              (queue ??= []).push({ type: 'relay-failed', conn: e.from, nonce: e.bytes.subarray(0, 24) });
              break;
            }
            to.ws.send(e.bytes);
            observer.relayed(e.bytes.length);
            // Over the path's budget: stop reading the sender for a while (backpressure, nothing dropped).
            const pauseMs = opts.relayBudget?.charge(path.number, e.bytes.length) ?? 0;
            const from = pauseMs > 0 ? conns.get(e.from) : undefined;
            if (from !== undefined) throttle(from.ws, pauseMs);
            break;
          }
          case 'close': {
            const c = conns.get(e.conn);
            if (e.reject !== undefined) observer.rejected(e.reject);
            if (c === undefined || c.closing) break;
            c.closing = true;
            clearTimer(c, 'handshakeTimer');
            clearTimer(c, 'pingTimer');
            clearTimer(c, 'pongTimer');
            c.ws.close(e.code);
            break;
          }
          case 'authenticated': {
            const c = conns.get(e.conn);
            if (c === undefined) break;
            clearTimer(c, 'handshakeTimer');
            observer.handshakeCompleted(e.role);
            startPings(c, e.pingIntervalSeconds);
            break;
          }
          case 'log':
            log(e.event, { ...e.fields, path: path.number });
            break;
        }
      }
    }
  }

  function shutDown(): Promise<void> {
    closing = true;
    opts.server.off('upgrade', onUpgrade);
    if (conns.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // Clients that do not answer the close frame are cut off after a grace period.
      const grace = setTimeout(() => {
        for (const c of conns.values()) c.ws.terminate();
      }, SHUTDOWN_GRACE_MS);
      closedResolve = () => {
        clearTimeout(grace);
        resolve();
      };
      for (const c of conns.values()) {
        clearTimer(c, 'handshakeTimer');
        clearTimer(c, 'pingTimer');
        clearTimer(c, 'pongTimer');
        if (!c.closing) {
          c.closing = true;
          c.ws.close(CloseCode.GoingAway);
        }
      }
    });
  }

  opts.server.on('upgrade', onUpgrade);

  return {
    close(): Promise<void> {
      closePromise ??= shutDown();
      return closePromise;
    },
    get connectionCount() {
      return conns.size;
    },
    get pathCount() {
      return paths.size;
    },
  };
}
