/** A real signaling server on 127.0.0.1:0 for the raw-protocol tests, plus a recording observer. */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import nacl from 'tweetnacl';
import type { BoxKeyPair, BoxPublicKey, BoxSecretKey } from '../../crypto/index.ts';
import type { RejectReason, SignalingObserver } from '../../signaling/observer.ts';
import { ClusterNode, clusterRegistry, type ClusterTiming } from '../../signaling/cluster/node.ts';
import { attachSignalingServer, type SignalingLimits, type SignalingServer } from '../../signaling/server.ts';

export class RecordingObserver extends EventEmitter implements SignalingObserver {
  opened = 0;
  closes: number[] = [];
  rejects: RejectReason[] = [];
  handshakes: string[] = [];
  relayedFrames = 0;
  relayedBytes = 0;
  pathsOpen = 0;

  connectionOpened(): void {
    this.opened++;
  }
  connectionClosed(code: number): void {
    this.closes.push(code);
    this.emit('closed', code);
  }
  rejected(reason: RejectReason): void {
    this.rejects.push(reason);
    this.emit('rejected', reason);
  }
  handshakeCompleted(role: 'initiator' | 'responder'): void {
    this.handshakes.push(role);
  }
  relayed(bytes: number): void {
    this.relayedFrames++;
    this.relayedBytes += bytes;
  }
  pathOpened(): void {
    this.pathsOpen++;
  }
  pathClosed(): void {
    this.pathsOpen--;
    this.emit('path-closed');
  }
  /** Resolves once `count` server-side closes have been seen in total. */
  closesReach(count: number): Promise<void> {
    if (this.closes.length >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (): void => {
        if (this.closes.length >= count) {
          this.off('closed', on);
          resolve();
        }
      };
      this.on('closed', on);
    });
  }
}

export function boxKeyPair(): BoxKeyPair {
  const k = nacl.box.keyPair();
  return { publicKey: k.publicKey as BoxPublicKey, secretKey: k.secretKey as BoxSecretKey };
}

export interface TestServer {
  http: http.Server;
  url: string;
  port: number;
  signaling: SignalingServer;
  observer: RecordingObserver;
  keys: BoxKeyPair[];
  logs: { event: string; fields: Record<string, string | number | boolean> }[];
  /** Resolves when the server logs `event` (counting from the call). */
  nextLog(event: string): Promise<Record<string, string | number | boolean>>;
  /** With `redis`: the cluster node. */
  node: ClusterNode | null;
  stop(): Promise<void>;
}

export async function startServer(
  o: {
    limits?: Partial<SignalingLimits>;
    keys?: BoxKeyPair[];
    now?: () => number;
    clientAddress?: (req: http.IncomingMessage) => string;
    /** A cluster node on this Redis (docs/PROTOCOL.md 3.8). */
    redis?: { url: string; timing?: Partial<ClusterTiming> };
  } = {},
): Promise<TestServer> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const observer = new RecordingObserver();
  const keys = o.keys ?? [boxKeyPair()];
  const logs: TestServer['logs'] = [];
  const logEvents = new EventEmitter();
  const log = (event: string, fields: Record<string, string | number | boolean>): void => {
    logs.push({ event, fields });
    logEvents.emit(event, fields);
  };
  const node =
    o.redis === undefined
      ? null
      : await ClusterNode.start({ url: o.redis.url, timing: o.redis.timing, maxPayload: o.limits?.maxPayload ?? 1024 * 1024, log });
  const signaling = attachSignalingServer({
    server,
    permanentKeys: keys,
    limits: o.limits,
    observer,
    log,
    ...(node !== null ? { registry: clusterRegistry(node) } : {}),
    ...(o.now !== undefined ? { now: o.now } : {}),
    ...(o.clientAddress !== undefined ? { clientAddress: o.clientAddress } : {}),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    http: server,
    url: `ws://127.0.0.1:${port}`,
    port,
    signaling,
    observer,
    keys,
    logs,
    node,
    nextLog: (event) => new Promise((resolve) => logEvents.once(event, resolve)),
    async stop() {
      await signaling.close();
      await node?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
