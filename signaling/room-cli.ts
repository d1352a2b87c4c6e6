/**
 * The Node side shared by `zeroroom host` and `zeroroom join`: the room driver itself is
 * protocol/room/driver.ts (the same one the web app runs); here are only what it is given in Node
 * (WebRTC, WebSocket, clock, randomness, a stderr logger, a store) and the JSON-lines process around
 * it (stdin commands, signals, stdout kept for JSON).
 */
import { WebSocket } from 'ws';
import { asBoxPublicKey, fromHex, systemRandom, type BoxKeyPair } from '../crypto/index.ts';
import { joinRoom } from '../protocol/link/member.ts';
import { startOwner } from '../protocol/link/owner.ts';
import type { EndpointOptions } from '../protocol/link/endpoint.ts';
import type { DriverEnv, DriverEvents, MemberLinkPort, MeshLinkPort, OwnerLinkPort, RoomStore } from '../protocol/room/driver-ports.ts';
import { meshLinkPort } from '../protocol/room/mesh-port.ts';
import type { OutboxRecord } from '../protocol/room/records.ts';
import type { MemberState, OwnerState } from '../protocol/room/types.ts';
import { systemTimers, type WebSocketCtor } from '../protocol/saltyrtc/client-driver.ts';
import { nodeWrtc, releaseNodeWrtc } from './node-wrtc.ts';
import { CommandError, LineSplitter, MAX_LINE, errorJson, type OutEvent } from './json-lines.ts';

export interface DriverIo {
  /** One JSON object per stdout line. */
  readonly out: (ev: OutEvent) => void;
  /** Diagnostics for people (stderr). */
  readonly warn: (message: string) => void;
}

/** Where a Node client's links go: signaling server (and pinned key), WebRTC options, own key pair. */
export interface NodeEndpoint {
  readonly server: string;
  /** Hex of the pinned server key, '' when not pinned. */
  readonly serverKey: string;
  readonly loopback: boolean;
  readonly iceServers: readonly string[];
  readonly keys: BoxKeyPair;
}

function endpointOptions(e: NodeEndpoint): EndpointOptions {
  return {
    signalingUrl: e.server,
    ...(e.serverKey !== '' ? { serverKey: asBoxPublicKey(fromHex(e.serverKey, 32)) } : {}),
    permanentKeys: e.keys,
    wrtc: nodeWrtc({ loopback: e.loopback }),
    WebSocket: WebSocket as unknown as WebSocketCtor,
    iceServers: e.iceServers.map((urls) => ({ urls })),
  };
}

/** The owner's link port over real WebRTC (node-datachannel) and `ws`. */
export function nodeOwnerPort(e: NodeEndpoint): OwnerLinkPort {
  const opts = endpointOptions(e);
  return (hooks) => startOwner({ ...opts, ...hooks });
}

/** The member's link port over real WebRTC (node-datachannel) and `ws`. */
export function nodeMemberPort(e: NodeEndpoint): MemberLinkPort {
  const opts = endpointOptions(e);
  return (o) => joinRoom({ ...opts, ...o });
}

/** Mesh links while the owner is away (5.16) over real WebRTC (node-datachannel) and `ws`. */
export function nodeMeshPort(e: NodeEndpoint): MeshLinkPort {
  return meshLinkPort(endpointOptions(e));
}

/**
 * Clock, randomness and a stderr logger for a CLI driver. Info lines (why a link was retried, what
 * a step refused) go to stderr only with --verbose: stdout events already say what happened.
 */
export function cliDriverEnv(io: DriverIo, events: DriverEvents, verbose = false): DriverEnv {
  return {
    timers: systemTimers,
    random: systemRandom,
    log: { info: verbose ? (m) => io.warn(m) : () => undefined, warn: (m) => io.warn(m), error: (m) => io.warn(m) },
    events,
  };
}

/** Without --state: nothing is kept (the driver's outbox lives in memory for this run). */
export function ephemeralStore<S extends OwnerState | MemberState>(): RoomStore<S> {
  return {
    save: async () => undefined,
    appendHistory: async () => undefined,
    putOutbox: async () => undefined,
    removeOutbox: async () => undefined,
    listOutbox: async (): Promise<OutboxRecord[]> => [],
    // Keys live for this run only, like everything else here (a key update still works).
    saveKeys: async () => undefined,
  };
}

export interface Lifecycle {
  /** Resolves with the reason once `quit`, SIGTERM or SIGINT asked the client to stop. */
  readonly stopped: Promise<string>;
  stop(reason: string): void;
  /** Stop reading stdin and remove the signal handlers. */
  dispose(): void;
}

/**
 * Reads commands from stdin (one JSON object per line, each line at most MAX_LINE characters) and
 * waits for a stop. End of stdin ends command input only: the client keeps running (so it can run
 * under a supervisor with stdin closed) until {"cmd":"quit"}, SIGTERM or SIGINT. `initial` is input
 * read from stdin before (after an invite line).
 */
export function startLifecycle(io: DriverIo, onLine: (line: string) => void, initial = ''): Lifecycle {
  let resolveStop: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (resolveStop = resolve));
  const splitter = new LineSplitter(
    (line) => {
      if (line.trim() !== '') onLine(line);
    },
    () => io.out(errorJson(new CommandError('cli.line-too-long', `command line longer than ${MAX_LINE} characters (skipped)`))),
  );
  const onData = (chunk: string): void => splitter.push(chunk);
  const onEnd = (): void => splitter.end();
  process.stdin.setEncoding('utf8');
  if (initial !== '') splitter.push(initial);
  process.stdin.on('data', onData);
  process.stdin.on('end', onEnd);
  process.stdin.resume();
  const onSignal = (signal: NodeJS.Signals): void => {
    // A second signal while shutting down exits at once.
    process.once('SIGTERM', () => process.exit(1));
    process.once('SIGINT', () => process.exit(1));
    resolveStop(signal);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return {
    stopped,
    stop: (reason) => resolveStop(reason),
    dispose: () => {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      process.stdin.destroy();
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

/** The longest first stdin line taken as an invite URL. */
export const MAX_INVITE_LINE = 8192;

/**
 * The first line of stdin (an invite URL given as `--invite-file -`, kept out of the process list)
 * and whatever followed it in the same read (the first commands).
 */
export function readFirstStdinLine(): Promise<{ line: string; rest: string }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (error: Error | null): void => {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      if (error !== null) {
        process.stdin.destroy(); // the process ends with this error: an open pipe must not keep it alive
        return reject(error);
      }
      const nl = buf.indexOf('\n');
      resolve(nl === -1 ? { line: buf.trim(), rest: '' } : { line: buf.slice(0, nl).trim(), rest: buf.slice(nl + 1) });
    };
    const onData = (chunk: string): void => {
      buf += chunk;
      if (buf.includes('\n')) done(null);
      else if (buf.length > MAX_INVITE_LINE) done(new Error(`the first stdin line is longer than ${MAX_INVITE_LINE} characters`));
    };
    const onEnd = (): void => done(null);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
    process.stdin.resume();
  });
}

/** stdout carries only JSON lines: library logging (console.log/info/debug) goes to stderr. */
export function keepStdoutForJson(): void {
  const toStderr = (...args: unknown[]): void => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}

/** JSON out and warnings for a CliIo. */
export function driverIo(io: { out: (line: string) => void; err: (line: string) => void }): DriverIo {
  return { out: (ev) => io.out(JSON.stringify(ev)), warn: (m) => io.err(`zeroroom: ${m}`) };
}

/**
 * Links flush queued frames for up to CLOSE_FLUSH_MS after close(); libdatachannel's threads are
 * released once their peer connections have closed (releaseNodeWrtc), then the process may exit.
 */
export async function closeWebRtc(): Promise<void> {
  await releaseNodeWrtc();
  // Anything still holding the event loop (a peer connection libdatachannel did not release) must
  // not keep a stopped client alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}
