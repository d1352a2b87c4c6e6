/**
 * SaltyRTC 1.0 signaling server on `ws` (API skeleton; the implementation lands next).
 */
import type http from 'node:http';
import type https from 'node:https';
import type { BoxKeyPair, RandomBytes } from '../crypto/index.ts';
import { nullObserver, type SignalingObserver } from './observer.ts';

export interface SignalingLimits {
  /** Largest WebSocket message accepted (bytes); bounded to [MIN_MAX_PAYLOAD, MAX_MAX_PAYLOAD]. */
  maxPayload: number;
  /** Open WebSocket connections in total. */
  maxConnections: number;
  /** Open WebSocket connections from one IP address. */
  maxConnectionsPerIp: number;
  /** New connections per second from one IP address (token bucket, burst = this many). */
  newConnectionsPerSecondPerIp: number;
  /** Time from upgrade to a completed client-to-server handshake. */
  handshakeTimeoutMs: number;
}

export const MIN_MAX_PAYLOAD = 64 * 1024;
export const MAX_MAX_PAYLOAD = 16 * 1024 * 1024;

export const defaultLimits: SignalingLimits = Object.freeze({
  maxPayload: 1024 * 1024,
  maxConnections: 10_000,
  maxConnectionsPerIp: 50,
  newConnectionsPerSecondPerIp: 20,
  handshakeTimeoutMs: 10_000,
});

export type LogFields = Record<string, string | number | boolean>;

export interface SignalingServerOptions {
  /** Only upgrades to `/<64 lowercase hex>` are taken; other upgrades and requests are left alone. */
  server: http.Server | https.Server;
  /** The first is presented by default; clients may pin any of them via `your_key`. */
  permanentKeys: BoxKeyPair[];
  limits?: Partial<SignalingLimits>;
  observer?: SignalingObserver;
  log?: (event: string, fields: LogFields) => void;
  random?: RandomBytes;
  now?: () => number;
}

export interface SignalingServer {
  /** Close every client with 1001 (Going Away) and stop accepting upgrades. */
  close(): Promise<void>;
  readonly connectionCount: number;
  readonly pathCount: number;
}

export function attachSignalingServer(opts: SignalingServerOptions): SignalingServer {
  const observer = opts.observer ?? nullObserver;
  void observer;
  return {
    close: async () => undefined,
    connectionCount: 0,
    pathCount: 0,
  };
}
