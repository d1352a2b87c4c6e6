/**
 * Admission: everything that happens to an HTTP upgrade before a WebSocket exists (as ws's
 * `handleUpgrade`/`abortHandshake`). It checks the path and the subprotocol, the total and per-IP
 * connection limits, and refuses with a real HTTP status (docs/PROTOCOL.md 3.1, 3.4, 3.5). An
 * admitted socket is handed to the connection registry; the registry gives the per-IP slot back
 * with `release(ip)` when the socket closes.
 */
import type http from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { UpgradeRefusal } from '../protocol/saltyrtc/close-codes.ts';
import { SUBPROTOCOL } from '../protocol/saltyrtc/server-machine.ts';
import { IpLimits } from './ip-limits.ts';
import type { RejectReason, SignalingObserver } from './observer.ts';

/** Signaling paths: `/` + the initiator's permanent public key as 64 lowercase hex characters. */
export const PATH_PATTERN = /^\/([0-9a-f]{64})$/;

export type LogFields = Record<string, string | number | boolean>;

/** Why the server as a whole refuses new upgrades right now (HTTP 503), or null when it takes them. */
export type Unavailable = 'shutting-down' | 'cluster-unavailable';

export interface AdmissionOptions {
  readonly server: http.Server;
  readonly maxPayload: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly newConnectionsPerSecondPerIp: number;
  readonly observer: SignalingObserver;
  readonly log: (event: string, fields: LogFields) => void;
  readonly clientAddress: (req: http.IncomingMessage) => string;
  readonly now: () => number;
  /** Open WebSocket connections now (the registry's count). */
  readonly openConnections: () => number;
  readonly unavailable: () => Unavailable | null;
  /** Takes an accepted WebSocket; from here on the registry owns it and calls `release(ip)` once it closes. */
  readonly accept: (ws: WebSocket, pathHex: string, ip: string) => void;
}

export interface Admission {
  /** Give back the per-IP slot of a socket that has closed. */
  release(ip: string): void;
  /** Stop taking upgrades (the 'upgrade' listener is removed). */
  detach(): void;
}

export function peerAddress(req: http.IncomingMessage): string {
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

export function attachAdmission(opts: AdmissionOptions): Admission {
  const { observer, log } = opts;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false, // payloads are ciphertext: nothing to gain, and a zip-bomb surface
    handleProtocols: () => SUBPROTOCOL, // checked in onUpgrade before handleUpgrade
  });
  const ipLimits = new IpLimits(opts.maxConnectionsPerIp, opts.newConnectionsPerSecondPerIp, opts.now);

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
      ...(reason === 'rate-limited' || reason === 'cluster-unavailable' ? ['Retry-After: 1'] : []),
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
    const unavailable = opts.unavailable();
    if (unavailable !== null) return refuseUpgrade(socket, unavailable, null);
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) return refuseUpgrade(socket, 'bad-subprotocol', 'bad-subprotocol');
    if (opts.openConnections() >= opts.maxConnections) return refuseUpgrade(socket, 'too-many-connections', 'too-many-connections');
    const ip = opts.clientAddress(req);
    const admitted = ipLimits.admit(ip);
    if (admitted !== 'ok') return refuseUpgrade(socket, admitted, admitted);
    const pathHex = match[1]!;
    // ws may refuse the handshake itself (bad headers): then the socket closes without a WebSocket.
    const releaseIfRefused = (): void => ipLimits.release(ip);
    socket.once('close', releaseIfRefused);
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', releaseIfRefused);
      opts.accept(ws, pathHex, ip);
    });
  }

  opts.server.on('upgrade', onUpgrade);
  return {
    release: (ip) => ipLimits.release(ip),
    detach: () => void opts.server.off('upgrade', onUpgrade),
  };
}
