/**
 * The Node driver shared by `zeroroom host` and `zeroroom join`: it applies room-machine steps one
 * at a time (a promise queue), persists the new state, then carries out the effects (link sends and
 * closes, JSON events). Same order of work as the web app's runtime, except that the state is saved
 * BEFORE the effects leave: a host that crashes mid-step must not come back with an epoch its
 * members have already seen announced with another key.
 */
import { WebSocket } from 'ws';
import { memberList } from '../protocol/room/index.ts';
import { nodeWrtc, releaseNodeWrtc } from './node-wrtc.ts';
import type { PeerLink } from '../protocol/link/peer-link.ts';
import type { IceServer } from '../protocol/link/rtc.ts';
import type { WebSocketCtor } from '../protocol/saltyrtc/client-driver.ts';
import type { Effect, MemberState, OwnerState, RoomEvent, Step } from '../protocol/room/types.ts';
import { CommandError, LineSplitter, MAX_LINE, errorJson, roomEventJson, type OutEvent } from './json-lines.ts';

export interface DriverIo {
  /** One JSON object per stdout line. */
  readonly out: (ev: OutEvent) => void;
  /** Diagnostics for people (stderr). */
  readonly warn: (message: string) => void;
}

export abstract class RoomDriver<S extends OwnerState | MemberState> {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    protected state: S,
    protected readonly io: DriverIo,
    private readonly save: ((state: S) => Promise<void>) | null,
  ) {}

  /** Runs `fn` after every earlier step has been applied, saved and carried out. */
  protected serial(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch((e: unknown) => this.io.out(errorJson(e)));
    return this.queue;
  }

  /** A local command: a refusal becomes an error event (the machine kept its state). */
  protected command(make: (s: S) => Step<S>): Promise<void> {
    return this.serial(async () => {
      const step = make(this.state);
      if (step.error !== undefined) {
        this.io.out(errorJson(step.error));
        await this.effects(step.effects);
        return;
      }
      await this.apply(step);
    });
  }

  /** Peer input: a refusal goes to stderr (the machine already answered the peer through its effects). */
  protected received(make: (s: S) => Step<S>): Promise<void> {
    return this.serial(async () => {
      const step = make(this.state);
      if (step.error !== undefined) {
        this.io.warn(`refused peer input: ${step.error.code}: ${step.error.message}`);
        await this.effects(step.effects);
        return;
      }
      await this.apply(step);
    });
  }

  protected async apply(step: Step<S>): Promise<void> {
    const changed = step.state !== this.state;
    this.state = step.state;
    if (changed && this.save !== null) await this.save(this.state);
    await this.effects(step.effects);
  }

  private async effects(effects: readonly Effect[]): Promise<void> {
    for (const e of effects) {
      if (e.kind === 'send') this.sendTo(e.to, e.bytes);
      else if (e.kind === 'close') this.closeLink(e.to, e.reason);
      else await this.onRoomEvent(e.event);
    }
  }

  protected onRoomEvent(ev: RoomEvent): void | Promise<void> {
    this.io.out(roomEventJson(ev));
  }

  /** The `members` and `safety-code` commands, answered in order with the steps before them. */
  protected query(what: 'members' | 'safety-code'): void {
    void this.serial(async () =>
      this.io.out(
        what === 'members'
          ? { event: 'members', members: memberList(this.state) }
          : { event: 'safety-code', epoch: this.state.epoch, code: this.safetyCode() },
      ),
    );
  }

  protected abstract safetyCode(): string | null;

  /** Resolves once every queued step is done. */
  idle(): Promise<void> {
    return this.queue;
  }

  protected abstract sendTo(to: string, bytes: Uint8Array): void;
  protected abstract closeLink(to: string, reason: string): void;
}

/** How long a link the room machine closes stays open for the peer to close it first. */
export const LINGER_MS = 2000;

/**
 * Close `link` once the peer has closed it, or after LINGER_MS. Closing right after a send can
 * overtake that send (the removal notice to a kicked member, a member's leave): the peer closes
 * its side when it has read it (a removed member closes, the owner closes after a leave).
 */
export function lingerClose(link: PeerLink): Promise<void> {
  if (link.state === 'closed') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      link.close();
      resolve();
    }, LINGER_MS);
    const off = link.on('close', () => {
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** WebRTC and WebSocket for the Node links (protocol/link), and ICE servers from --ice-server. */
export function nodeLinkEnv(opts: { loopback: boolean; iceServers: readonly string[] }): {
  wrtc: object;
  WebSocket: WebSocketCtor;
  iceServers: IceServer[];
} {
  return {
    wrtc: nodeWrtc({ loopback: opts.loopback }),
    WebSocket: WebSocket as unknown as WebSocketCtor,
    iceServers: opts.iceServers.map((urls) => ({ urls })),
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
 * under a supervisor with stdin closed) until {"cmd":"quit"}, SIGTERM or SIGINT.
 */
export function startLifecycle(io: DriverIo, onLine: (line: string) => void): Lifecycle {
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
  process.stdin.on('data', onData);
  process.stdin.on('end', onEnd);
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
