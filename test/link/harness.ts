/**
 * Test harness for peer-link tests: our signaling server on 127.0.0.1 (port 0, restartable on the
 * same port), node-datachannel through the simple-peer shim, and helpers that await events.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { generateBoxKeyPair, type BoxKeyPair } from '../../crypto/index.ts';
import { attachSignalingServer, type SignalingServer } from '../../signaling/server.ts';
import type { RelayBudget } from '../../signaling/relay-budget.ts';
import { nodeWrtc } from '../../signaling/node-wrtc.ts';
import type { WebSocketCtor } from '../../protocol/saltyrtc/client-driver.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';

export const wrtc = nodeWrtc({ loopback: true });
export const WS = WebSocket as unknown as WebSocketCtor;

/** Generous limits: tests open many connections from 127.0.0.1 in a burst. */
const limits = { maxConnectionsPerIp: 10_000, newConnectionsPerSecondPerIp: 10_000 };

export class TestServer {
  private http: http.Server | null = null;
  private signaling: SignalingServer | null = null;
  port = 0;

  /** Pass the keys of a previous instance to restart "the same" server. */
  constructor(
    readonly keys: BoxKeyPair = generateBoxKeyPair(),
    private readonly relayBudget?: RelayBudget,
  ) {}

  async start(port = 0): Promise<this> {
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    this.signaling = attachSignalingServer({
      server,
      permanentKeys: [this.keys],
      limits,
      ...(this.relayBudget !== undefined ? { relayBudget: this.relayBudget } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.http = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get connectionCount(): number {
    return this.signaling?.connectionCount ?? 0;
  }

  /** Kill the server: every WebSocket is closed, the port is freed. */
  async stop(): Promise<void> {
    const s = this.signaling;
    const h = this.http;
    this.signaling = null;
    this.http = null;
    await s?.close();
    if (h !== null) {
      h.closeAllConnections();
      await new Promise<void>((resolve) => h.close(() => resolve()));
    }
  }
}

/** Resolve on the next `ev` of a link (rejects after `ms` so a broken link fails the test). */
export function nextEvent<T = unknown>(link: PeerLink, ev: 'message' | 'state' | 'close' | 'drain' | 'error', ms = 15_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${ev}`));
    }, ms);
    const off = link.on(ev, ((v: T) => {
      clearTimeout(timer);
      off();
      resolve(v);
    }) as never);
  });
}

/** Wait until `link.state` is one of `states`. */
export function untilState(link: PeerLink, states: string[], ms = 15_000): Promise<void> {
  if (states.includes(link.state)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for state ${states.join('|')} (now ${link.state})`));
    }, ms);
    const off = link.on('state', (s) => {
      if (!states.includes(s)) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** Collect `n` messages from a link. */
export function collect(link: PeerLink, n: number, ms = 30_000): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out with ${got.length}/${n} messages`));
    }, ms);
    const off = link.on('message', (m) => {
      got.push(m);
      if (got.length === n) {
        clearTimeout(timer);
        off();
        resolve(got);
      }
    });
  });
}

/** Poll `cond` until true (only where no event exists), failing after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
