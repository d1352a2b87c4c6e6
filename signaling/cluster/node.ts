/**
 * One node of a multi-node signaling server (docs/PROTOCOL.md 3.8): its registration in Redis (a
 * fresh node id with a lease kept alive by heartbeats), its channel `zr:to:<node>` with the order
 * check, the scripts that change path state, and the reaper that frees the slots of dead nodes.
 *
 * Redis client: node-redis (`@redis/client`, the core of the `redis` package without its module
 * extensions), loaded only by `zeroroom serve --redis` through a dynamic import.
 *
 * Losing Redis (a dropped connection, a lease found gone, a script cache found empty, a gap in the
 * channel's numbering) means this node can no longer trust what it knows about its paths: it tells
 * the registry (which closes every client with 1012), stops taking upgrades, and once Redis answers
 * again retires its old id (peers get 'disconnected') and registers a new one.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from '@redis/client';
import type { ClusterEffect, ConnId } from '../../protocol/saltyrtc/server-machine.ts';
import type { LogFields } from '../admission.ts';
import { createRegistry, type ConnectionRegistry, type RegistryDeps } from '../registry.ts';
import { ClusterMessageError, SequenceCheck, asNodeId, decodeNodeMessage, type NodeId, type NodeMessage } from './messages.ts';
import {
  ALL_SCRIPTS,
  CLAIM_INITIATOR,
  CLAIM_RESPONDER,
  DROP_RESPONDER,
  HEARTBEAT,
  LEAVE,
  REAP,
  REGISTER,
  RELAY,
  SEND_ERROR,
  type ScriptSource,
} from './scripts.ts';

export interface ClusterTiming {
  /** A node that has not renewed its lease for this long is dead: its slots are freed. */
  readonly leaseMs: number;
  /** How often the lease is renewed (well under leaseMs). */
  readonly heartbeatMs: number;
  /** How often every node looks for dead nodes to sweep. */
  readonly reapIntervalMs: number;
}

export const defaultTiming: ClusterTiming = Object.freeze({ leaseMs: 10_000, heartbeatMs: 2_000, reapIntervalMs: 2_000 });

export interface ClusterOptions {
  /** redis:// or rediss:// URL. */
  readonly url: string;
  readonly timing?: Partial<ClusterTiming>;
  /** Largest client frame (the server's maxPayload): bounds inter-node messages. */
  readonly maxPayload: number;
  readonly log?: (event: string, fields: LogFields) => void;
}

/** What the node tells its registry. */
export interface ClusterSink {
  message(m: NodeMessage): void;
  /** The node lost its registration: every client must be closed (1012). */
  lost(reason: string): void;
}

export type LossReason = 'redis-connection' | 'lease-lost' | 'script-cache-lost' | 'messages-lost' | 'script-error';

const REAP_BUDGET = 500;
/** Connection attempts at start before `start()` rejects (about 1.5 s in all). */
const START_ATTEMPTS = 6;

/** Well-kept ranges for the timing; out of range is a configuration error. */
export function resolveTiming(partial: Partial<ClusterTiming> = {}): ClusterTiming {
  const t = { ...defaultTiming, ...partial };
  if (!Number.isSafeInteger(t.leaseMs) || t.leaseMs < 500 || t.leaseMs > 600_000) throw new RangeError('leaseMs outside [500, 600000]');
  if (!Number.isSafeInteger(t.heartbeatMs) || t.heartbeatMs < 50 || t.heartbeatMs * 2 > t.leaseMs)
    throw new RangeError('heartbeatMs must be >= 50 and at most half of leaseMs');
  if (!Number.isSafeInteger(t.reapIntervalMs) || t.reapIntervalMs < 50 || t.reapIntervalMs > 600_000)
    throw new RangeError('reapIntervalMs outside [50, 600000]');
  return t;
}

type Client = ReturnType<typeof createClient>;

export class ClusterNode {
  readonly timing: ClusterTiming;
  private readonly log: (event: string, fields: LogFields) => void;
  private readonly cmd: Client;
  private readonly sub: Client;
  private shas = new Map<string, string>();
  private id: NodeId | null = null;
  private channel = '';
  private seq = new SequenceCheck();
  private isUp = false;
  private started = false;
  private closed = false;
  private sink: ClusterSink | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private reaper: NodeJS.Timeout | null = null;
  private reaping = false;
  private retry: NodeJS.Timeout | null = null;
  /** Ids this node held before a loss, to retire once Redis answers. */
  private readonly toRetire: NodeId[] = [];
  private readonly listener = (message: Buffer, channel: Buffer): void => this.onMessage(message, channel);

  private constructor(private readonly opts: ClusterOptions) {
    this.timing = resolveTiming(opts.timing);
    this.log = opts.log ?? ((): void => undefined);
    // At start, give up after a few attempts (a wrong URL must not hang `zeroroom serve` silently);
    // once registered, keep trying for as long as it takes (clients get 503 meanwhile).
    const reconnectStrategy = (retries: number, cause: Error): number | Error =>
      this.started || retries < START_ATTEMPTS ? Math.min(50 * 2 ** retries, 1000) : cause;
    // No offline queue: a command issued while the connection is down fails at once instead of
    // running later against state this node no longer trusts.
    this.cmd = createClient({ url: opts.url, disableOfflineQueue: true, socket: { reconnectStrategy } });
    this.sub = this.cmd.duplicate();
    for (const [client, which] of [
      [this.cmd, 'command'],
      [this.sub, 'subscriber'],
    ] as const) {
      client.on('error', (e: unknown) => {
        this.log('cluster-redis-error', { connection: which, error: e instanceof Error ? e.message.slice(0, 120) : 'unknown' });
        this.lose('redis-connection');
      });
    }
  }

  /** Connect, load the scripts and register. Rejects when Redis cannot be reached. */
  static async start(opts: ClusterOptions): Promise<ClusterNode> {
    const node = new ClusterNode(opts);
    try {
      await node.cmd.connect();
      await node.sub.connect();
      await node.establish();
      node.started = true;
    } catch (e) {
      node.closed = true;
      node.cmd.destroy();
      node.sub.destroy();
      throw e;
    }
    return node;
  }

  get up(): boolean {
    return this.isUp;
  }

  get nodeId(): NodeId | null {
    return this.id;
  }

  attach(sink: ClusterSink): void {
    this.sink = sink;
  }

  // --- path operations (the registry's cluster effects) ----------------------------------------

  run(pathHex: string, e: ClusterEffect): void {
    const id = this.id;
    if (!this.isUp || id === null) return; // the registry is closing every client anyway
    switch (e.type) {
      case 'claim':
        return this.call(e.role === 'initiator' ? CLAIM_INITIATOR : CLAIM_RESPONDER, [pathHex, id, String(e.conn)]);
      case 'cluster-relay':
        return this.call(RELAY, [
          pathHex,
          id,
          String(e.conn),
          String(e.source),
          String(e.destination),
          Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength),
        ]);
      case 'cluster-drop':
        return this.call(DROP_RESPONDER, [pathHex, id, String(e.conn), String(e.id), String(e.code)]);
      case 'leave':
        return this.call(LEAVE, [pathHex, id, String(e.conn)]);
    }
  }

  /** A relayed frame could not be written to our client: 'send-error' to its sender. */
  sendError(node: NodeId, conn: ConnId, id: Uint8Array): void {
    if (!this.isUp) return;
    this.call(SEND_ERROR, [node, String(conn), Buffer.from(id)]);
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  private async establish(): Promise<void> {
    for (const s of ALL_SCRIPTS) this.shas.set(s.name, String(await this.cmd.sendCommand(['SCRIPT', 'LOAD', s.lua])));
    // Free what earlier registrations of this process still hold (peers get 'disconnected').
    for (const old of this.toRetire.splice(0)) await this.reap(old);
    if (this.channel !== '') await this.sub.unsubscribe(this.channel);
    const id = asNodeId(randomBytes(8).toString('hex'));
    this.seq = new SequenceCheck();
    this.channel = `zr:to:${id}`;
    await this.sub.subscribe(this.channel, this.listener, true);
    await this.sendCommand(REGISTER, [id, String(this.timing.leaseMs)]);
    this.id = id;
    this.isUp = true;
    this.heartbeat = setInterval(() => this.beat(), this.timing.heartbeatMs);
    this.reaper = setInterval(() => void this.reapDead(), this.timing.reapIntervalMs);
    this.log('cluster-registered', { node: id });
  }

  private lose(reason: LossReason): void {
    if (!this.isUp) return;
    this.isUp = false;
    this.stopTimers();
    if (this.id !== null) this.toRetire.push(this.id);
    this.id = null;
    this.log('cluster-lost', { reason });
    this.sink?.lost(reason);
    this.scheduleRejoin();
  }

  private scheduleRejoin(): void {
    if (this.closed || this.retry !== null) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.closed || this.isUp) return;
      if (!this.cmd.isReady || !this.sub.isReady) return this.scheduleRejoin();
      this.establish().catch((e: unknown) => {
        this.log('cluster-rejoin-failed', { error: e instanceof Error ? e.message.slice(0, 120) : 'unknown' });
        this.isUp = false;
        this.stopTimers();
        this.scheduleRejoin();
      });
    }, 250);
  }

  private stopTimers(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    if (this.reaper !== null) clearInterval(this.reaper);
    this.heartbeat = this.reaper = null;
  }

  private beat(): void {
    const id = this.id;
    if (id === null) return;
    this.sendCommand(HEARTBEAT, [id, String(this.timing.leaseMs)]).then(
      (alive) => {
        if (alive !== 1 && this.id === id) this.lose('lease-lost');
      },
      (e: unknown) => this.onCommandError(e),
    );
  }

  private async reapDead(): Promise<void> {
    if (this.reaping || !this.isUp) return;
    this.reaping = true;
    try {
      await this.reap('');
    } catch (e) {
      this.onCommandError(e);
    } finally {
      this.reaping = false;
    }
  }

  /** Sweep dead nodes (and `retire`, if given) until nothing is left, REAP_BUDGET paths per call. */
  private async reap(retire: NodeId | ''): Promise<void> {
    let target: NodeId | '' = retire;
    while ((await this.sendCommand(REAP, [String(REAP_BUDGET), target])) === 1) target = '';
  }

  /** Free this node's slots (peers get 'disconnected') and disconnect from Redis. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const wasUp = this.isUp;
    this.isUp = false;
    this.stopTimers();
    if (this.retry !== null) clearTimeout(this.retry);
    if (wasUp && this.id !== null) {
      try {
        await this.reap(this.id);
      } catch (e) {
        this.log('cluster-retire-failed', { error: e instanceof Error ? e.message.slice(0, 120) : 'unknown' });
      }
    }
    this.cmd.destroy();
    this.sub.destroy();
  }

  // --- messages and commands ---------------------------------------------------------------------

  private onMessage(message: Buffer, channel: Buffer): void {
    if (!this.isUp || channel.toString() !== this.channel) return; // an old registration's channel
    let m: NodeMessage;
    try {
      m = decodeNodeMessage(message, this.opts.maxPayload);
      this.seq.accept(m.seq);
    } catch (e) {
      if (!(e instanceof ClusterMessageError)) throw e;
      this.log('cluster-message-refused', { code: e.code });
      // A malformed message still used a number: the next one shows the gap.
      if (e.code === 'cluster.gap') this.lose('messages-lost');
      return;
    }
    this.sink?.message(m);
  }

  private call(script: ScriptSource, args: (string | Buffer)[]): void {
    this.sendCommand(script, args).then(undefined, (e: unknown) => this.onCommandError(e));
  }

  private sendCommand(script: ScriptSource, args: (string | Buffer)[]): Promise<unknown> {
    const sha = this.shas.get(script.name);
    if (sha === undefined) return Promise.reject(new Error(`script ${script.name} not loaded`));
    return this.cmd.sendCommand(['EVALSHA', sha, '0', ...args]);
  }

  private onCommandError(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    if (message.startsWith('NOSCRIPT')) return this.lose('script-cache-lost');
    if (message.startsWith('ZRLOST')) return this.lose('lease-lost');
    this.log('cluster-command-failed', { error: message.slice(0, 120) });
    this.lose(this.cmd.isReady ? 'script-error' : 'redis-connection');
  }
}

/** The registry factory for attachSignalingServer({registry}) that routes path-wide work through `node`. */
export function clusterRegistry(node: ClusterNode): (deps: RegistryDeps) => ConnectionRegistry {
  return (deps) => createRegistry(deps, node);
}

/** Timing derived from one lease (`zeroroom serve --redis-lease-ms`): heartbeat and reaper at a fifth of it. */
export function timingForLease(leaseMs: number): ClusterTiming {
  const step = Math.max(50, Math.floor(leaseMs / 5));
  return resolveTiming({ leaseMs, heartbeatMs: step, reapIntervalMs: step });
}
