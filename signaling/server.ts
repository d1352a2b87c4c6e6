/**
 * SaltyRTC 1.0 signaling server on `ws` (noServer mode), composed of three parts as websockets/ws
 * splits its server: admission (signaling/admission.ts: path and subprotocol checks, total and
 * per-IP limits, HTTP status refusals), the connection registry (signaling/registry.ts: paths,
 * addresses, relay queues; signaling/sockets.ts: the sockets and their timers) and this file, which
 * checks the options and wires them together. The pure per-path state machine is
 * protocol/saltyrtc/server-machine.ts. Spec: docs/PROTOCOL.md section 3 (what we implement of
 * Protocol.md, limits, close codes).
 */
import type http from 'node:http';
import type https from 'node:https';
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
import type { ServerContext } from '../protocol/saltyrtc/server-machine.ts';
import { attachAdmission, peerAddress, type Admission, type LogFields } from './admission.ts';
import { SharedKeyCache, nativeBoxBefore, nativeGenerateKeyPair } from './nacl-native.ts';
import { nullObserver, type SignalingObserver } from './observer.ts';
import type { RelayBudget } from './relay-budget.ts';
import { createLocalRegistry, type ConnectionRegistry, type RegistryDeps } from './registry.ts';

export { behindProxy } from './admission.ts';
export type { LogFields } from './admission.ts';
export { MAX_BUFFERED_PER_CONNECTION } from './registry.ts';

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
  /** The connection registry; default: this process alone (createLocalRegistry). */
  registry?: (deps: RegistryDeps) => ConnectionRegistry;
  /** Per-path budget for relayed client-to-client data (docs/PROTOCOL.md 3.9); absent = unlimited. */
  relayBudget?: RelayBudget;
}

export interface SignalingServer {
  /** Close every client with 1001 (Going Away) and stop accepting upgrades. */
  close(): Promise<void>;
  readonly connectionCount: number;
  readonly pathCount: number;
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

export function attachSignalingServer(opts: SignalingServerOptions): SignalingServer {
  const limits = resolveLimits(opts.limits);
  const observer = opts.observer ?? nullObserver;
  const log = opts.log ?? ((): void => undefined);
  const random = opts.random ?? systemRandom;
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
  const contextFor = (pathHex: string): ServerContext => ({
    initiatorKey: asBoxPublicKey(Buffer.from(pathHex, 'hex')),
    permanentKeys,
    random,
    generateSessionKey,
    sharedKey,
  });

  let closing = false;
  let closePromise: Promise<void> | null = null;
  // Registry first (a registry that refuses its options must not leave an 'upgrade' listener behind);
  // it reaches admission through this binding, which is set before any socket can exist.
  let admission: Admission | null = null;
  const registry = (opts.registry ?? createLocalRegistry)({
    handshakeTimeoutMs: limits.handshakeTimeoutMs,
    pingTimeoutMs: limits.pingTimeoutMs,
    observer,
    log,
    contextFor,
    release: (ip) => admission?.release(ip),
    ...(opts.relayBudget !== undefined ? { relayBudget: opts.relayBudget } : {}),
  });
  admission = attachAdmission({
    server: opts.server,
    maxPayload: limits.maxPayload,
    maxConnections: limits.maxConnections,
    maxConnectionsPerIp: limits.maxConnectionsPerIp,
    newConnectionsPerSecondPerIp: limits.newConnectionsPerSecondPerIp,
    observer,
    log,
    clientAddress: opts.clientAddress ?? peerAddress,
    now: opts.now ?? Date.now,
    openConnections: () => registry.connectionCount,
    unavailable: () => (closing ? 'shutting-down' : registry.accepting ? null : 'cluster-unavailable'),
    accept: (ws, pathHex, ip) => registry.accept(ws, pathHex, ip),
  });
  const attached = admission;

  return {
    close(): Promise<void> {
      closePromise ??= (() => {
        closing = true;
        attached.detach();
        return registry.shutDown();
      })();
      return closePromise;
    },
    get connectionCount() {
      return registry.connectionCount;
    },
    get pathCount() {
      return registry.pathCount;
    },
  };
}
