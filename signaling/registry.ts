/**
 * The connection registry of one node: which connections are on which path, the per-path state of
 * the pure machine (protocol/saltyrtc/server-machine.ts: addresses, initiator, responders), and
 * relaying with its per-destination queue limit. It feeds socket events to the machine and carries
 * out the effects. With a cluster port (signaling/cluster/, `zeroroom serve --redis`) the path-wide
 * decisions go to the cluster and its messages come back in as machine events (docs/PROTOCOL.md 3.9);
 * without one, nothing of the cluster runs.
 */
import { WebSocket } from 'ws';
import { CloseCode } from '../protocol/saltyrtc/close-codes.ts';
import {
  emptyPath,
  step,
  type ClusterEffect,
  type PathState,
  type ServerContext,
  type ServerEvent,
  type StepResult,
} from '../protocol/saltyrtc/server-machine.ts';
import type { LogFields } from './admission.ts';
import type { NodeId, NodeMessage } from './cluster/messages.ts';
import type { SignalingObserver } from './observer.ts';
import { throttle, type RelayBudget } from './relay-budget.ts';
import { SocketTable, type SocketEntry } from './sockets.ts';

/** A relay destination with more than this queued gets send-error instead of more data. */
export const MAX_BUFFERED_PER_CONNECTION = 8 * 1024 * 1024;

/** What a registry gets from the composition (signaling/server.ts). */
export interface RegistryDeps {
  readonly handshakeTimeoutMs: number;
  readonly pingTimeoutMs: number;
  readonly observer: SignalingObserver;
  readonly log: (event: string, fields: LogFields) => void;
  /** The machine context of a path (its initiator key, our permanent keys, randomness, key agreement). */
  readonly contextFor: (pathHex: string) => ServerContext;
  /** Give the per-IP admission slot back once a socket has closed. */
  readonly release: (ip: string) => void;
  /** Per-path budget for relayed client-to-client data (docs/PROTOCOL.md 3.9); absent = unlimited. */
  readonly relayBudget?: RelayBudget;
}

export interface ConnectionRegistry {
  /** Take an admitted WebSocket on `pathHex` (64 lowercase hex). */
  accept(ws: WebSocket, pathHex: string, ip: string): void;
  readonly connectionCount: number;
  /** Paths with at least one connection on this node. */
  readonly pathCount: number;
  /** Close every client with 1001 and resolve once all sockets are closed. */
  shutDown(): Promise<void>;
  /** False while a cluster node has no registration (upgrades then get HTTP 503). */
  readonly accepting: boolean;
}

/** What the registry needs from a cluster node (signaling/cluster/node.ts implements it). */
export interface ClusterPort {
  readonly up: boolean;
  run(pathHex: string, effect: ClusterEffect): void;
  sendError(node: NodeId, conn: number, id: Uint8Array): void;
  attach(sink: { message(m: NodeMessage): void; lost(reason: string): void }): void;
}

interface PathEntry {
  readonly hex: string;
  readonly number: number;
  readonly ctx: ServerContext;
  state: PathState;
  /** Sockets of this path that have not emitted 'close' yet (a count, not a Set: idle paths are
   * most of the server's memory, and only emptiness is ever asked). */
  open: number;
}

interface ConnEntry extends SocketEntry {
  readonly path: PathEntry;
}

export function createLocalRegistry(deps: RegistryDeps): ConnectionRegistry {
  return createRegistry(deps, null);
}

export function createRegistry(deps: RegistryDeps, cluster: ClusterPort | null): ConnectionRegistry {
  const { observer, log } = deps;
  const paths = new Map<string, PathEntry>();
  let nextPathNumber = 1;

  const sockets: SocketTable<ConnEntry> = new SocketTable<ConnEntry>(
    {
      frame: (entry, data) => dispatch(entry.path, { type: 'frame', conn: entry.id, bytes: data }),
      textFrame: (entry) => dispatch(entry.path, { type: 'invalid-frame', conn: entry.id, why: 'text frame (SaltyRTC is binary only)' }),
      timeout: (entry, kind) => dispatch(entry.path, { type: 'timeout', conn: entry.id, kind }),
      error: (entry, code) => log('ws-error', { conn: entry.id, code }),
      closed: onClosed,
    },
    deps.handshakeTimeoutMs,
    deps.pingTimeoutMs,
    observer,
  );

  function pathFor(pathHex: string): PathEntry {
    const existing = paths.get(pathHex);
    if (existing !== undefined) return existing;
    const ctx = cluster === null ? deps.contextFor(pathHex) : { ...deps.contextFor(pathHex), clustered: true };
    const entry: PathEntry = { hex: pathHex, number: nextPathNumber++, ctx, state: emptyPath, open: 0 };
    paths.set(pathHex, entry);
    observer.pathOpened();
    log('path-opened', { path: entry.number });
    return entry;
  }

  function accept(ws: WebSocket, pathHex: string, ip: string): void {
    const path = pathFor(pathHex);
    const entry: ConnEntry = { id: sockets.newId(), ws, path, ip, closing: false, handshakeTimer: null, pingTimer: null, pongTimer: null };
    path.open++;
    sockets.add(entry);
    log('connection-opened', { conn: entry.id, path: path.number });
    dispatch(path, { type: 'connected', conn: entry.id });
  }

  function onClosed(entry: ConnEntry, code: number): void {
    deps.release(entry.ip);
    log('connection-closed', { conn: entry.id, path: entry.path.number, code });
    const path = entry.path;
    path.open--;
    if (!sockets.closing) dispatch(path, { type: 'closed', conn: entry.id });
    if (path.open === 0 && paths.get(path.hex) === path) {
      paths.delete(path.hex);
      deps.relayBudget?.forget(path.number);
      observer.pathClosed();
      log('path-closed', { path: path.number });
    }
  }

  /** Over the path's relay budget: stop reading the sender for a while (backpressure, nothing dropped). */
  function charge(path: PathEntry, from: number, bytes: number): void {
    const pauseMs = deps.relayBudget?.charge(path.number, bytes) ?? 0;
    const sender = pauseMs > 0 ? sockets.get(from) : undefined;
    if (sender !== undefined) throttle(sender.ws, pauseMs);
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
        const c = sockets.get(event.conn);
        if (c !== undefined) sockets.close(c, CloseCode.InternalError);
        if (event.type !== 'closed') (queue ??= []).push({ type: 'closed', conn: event.conn });
        continue;
      }
      const { state, effects } = result;
      path.state = state;
      for (const e of effects) {
        switch (e.type) {
          case 'send': {
            const c = sockets.get(e.conn);
            if (c !== undefined && c.ws.readyState === WebSocket.OPEN) c.ws.send(e.bytes);
            break;
          }
          case 'relay': {
            const to = sockets.get(e.to);
            if (!canRelayTo(to)) {
              (queue ??= []).push({ type: 'relay-failed', conn: e.from, nonce: e.bytes.subarray(0, 24) });
              break;
            }
            to.ws.send(e.bytes);
            observer.relayed(e.bytes.length);
            charge(path, e.from, e.bytes.length);
            break;
          }
          case 'close': {
            const c = sockets.get(e.conn);
            if (e.reject !== undefined) observer.rejected(e.reject);
            if (c !== undefined) sockets.close(c, e.code);
            break;
          }
          case 'authenticated': {
            const c = sockets.get(e.conn);
            if (c === undefined) break;
            sockets.handshakeDone(c);
            observer.handshakeCompleted(e.role);
            sockets.startPings(c, e.pingIntervalSeconds);
            break;
          }
          case 'log':
            log(e.event, { ...e.fields, path: path.number });
            break;
          default:
            // A cluster relay is charged on the sender's node (the budget is per node and path).
            if (e.type === 'cluster-relay') charge(path, e.conn, e.bytes.length);
            cluster?.run(path.hex, e);
        }
      }
    }
  }

  cluster?.attach({
    message(m) {
      if (m.type === 'relay') {
        const to = sockets.get(m.conn);
        if (!canRelayTo(to)) return cluster.sendError(m.fromNode, m.fromConn, m.frame.subarray(16, 24));
        to.ws.send(m.frame);
        observer.relayed(m.frame.length);
        return;
      }
      const c = sockets.get(m.conn);
      if (c !== undefined) dispatch(c.path, m);
    },
    lost(reason) {
      // What this node knew about its paths is no longer the cluster's: end every session cleanly.
      log('cluster-closing-all', { reason, connections: sockets.size });
      for (const c of [...sockets.conns.values()]) sockets.close(c, CloseCode.ServiceRestart);
    },
  });

  return {
    accept,
    shutDown: () => sockets.shutDown(),
    get accepting() {
      return cluster === null || cluster.up;
    },
    get connectionCount() {
      return sockets.size;
    },
    get pathCount() {
      return paths.size;
    },
  };
}

/** A destination that takes a relayed frame now: open, not closing, not over its queue limit. */
export function canRelayTo<E extends SocketEntry>(to: E | undefined): to is E {
  return to !== undefined && !to.closing && to.ws.readyState === WebSocket.OPEN && to.ws.bufferedAmount <= MAX_BUFFERED_PER_CONNECTION;
}
