/**
 * The room driver (docs/PROTOCOL.md 5.13, 6.4): it runs a room machine (owner.ts, member.ts) against
 * the outside world that it is given (driver-ports.ts). One driver for the web app and for
 * `zeroroom host`/`join`; owner-driver.ts and member-driver.ts add each role's link wiring.
 *
 * - One serial queue: a step starts after every earlier step was applied, saved and carried out.
 * - One order per step: outbox record (a send), history records (delivered messages), state — the
 *   commit point — and only then the effects (link sends and closes, events). A crash before the
 *   commit loses a step nobody has seen; a crash after it loses effects that the restarted driver
 *   reproduces from the saved state (a member's sync, the outbox re-sent), so a member never sees an
 *   epoch its owner does not know. A store that fails stops the step before anything leaves.
 * - Local commands reject with the machine's typed refusal; refused peer input is logged (the machine
 *   answered the peer through its effects); failures nobody awaits become 'error' events.
 */
import type { PeerLink } from '../link/peer-link.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import { DriverError, type DriverEnv, type RoomStore } from './driver-ports.ts';
import type { HistoryRecord, OutboxRecord } from './records.ts';
import { memberList, type MemberListEntry } from './roster.ts';
import type { Effect, MemberState, OwnerState, PeerKeyHex, RoomEvent, Step } from './types.ts';

/** How long a link the room machine closes stays open for the peer to close it first. */
export const LINGER_MS = 2000;

/**
 * Close `link` once the peer has closed it, or after LINGER_MS. Closing right after a send can
 * overtake that send (the removal notice to a kicked member, a member's leave): the peer closes its
 * side when it has read it (a removed member closes, the owner closes after a leave).
 */
export function lingerClose(link: PeerLink, timers: Timers): Promise<void> {
  if (link.state === 'closed') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = timers.setTimeout(() => {
      off();
      link.close();
      resolve();
    }, LINGER_MS);
    const off = link.on('close', () => {
      timers.clearTimeout(timer);
      off();
      resolve();
    });
  });
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return 'code' in e && typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message;
  return String(e);
}

type Message = Extract<RoomEvent, { type: 'message' }>;

export abstract class RoomDriver<S extends OwnerState | MemberState> {
  private current: S;
  private queue: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | null = null;
  private readonly closing = new Set<Promise<void>>();

  protected constructor(
    state: S,
    protected readonly store: RoomStore<S>,
    protected readonly env: DriverEnv,
  ) {
    this.current = state;
  }

  /** The last saved state. */
  get state(): S {
    return this.current;
  }

  get stopped(): boolean {
    return this.stopping !== null;
  }

  protected now(): number {
    return this.env.timers.now();
  }

  /** Runs `fn` after every earlier step; its result or rejection goes to the caller, the queue goes on. */
  protected serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Queued work nobody awaits: a failure is logged and reported as an 'error' event. */
  protected background(what: string, fn: () => Promise<void>): void {
    this.serial(fn).catch((e: unknown) => {
      this.env.log.error(`${what} failed: ${describeError(e)}`);
      this.env.events({ kind: 'error', error: e });
    });
  }

  /** Refuses commands once stop() was called (commands queued before it still run). */
  protected checkRunning(): void {
    if (this.stopped) throw new DriverError('room.stopped', 'the room driver has stopped');
  }

  /** A local command: a refusal rejects with the machine's typed error (its refusal effects still run). */
  protected command(make: (state: S, now: number) => Step<S>): Promise<void> {
    try {
      this.checkRunning();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      const step = make(this.current, this.now());
      if (step.error !== undefined) {
        await this.perform(step.effects);
        throw step.error;
      }
      await this.commit(step);
    });
  }

  /**
   * Peer input or a timer: a refusal is logged; the machine answered the peer through its effects.
   * Input that arrives after stop() is dropped (a restarted driver catches up through sync).
   */
  protected input(what: string, make: (state: S, now: number) => Step<S>): void {
    if (this.stopped) return;
    this.background(what, async () => {
      const step = make(this.current, this.now());
      if (step.error !== undefined) {
        this.env.log.warn(`${what} refused: ${step.error.code}: ${step.error.message}`);
        await this.perform(step.effects);
        return;
      }
      await this.commit(step);
    });
  }

  /**
   * The one order of work: `outbox` (a send's record), the history records of delivered messages,
   * the state (commit point), then the effects. Nothing leaves unless every write succeeded.
   */
  protected async commit(step: Step<S>, outbox?: OutboxRecord): Promise<void> {
    if (outbox !== undefined) await this.store.putOutbox(outbox);
    for (const e of step.effects) {
      if (e.kind === 'event' && e.event.type === 'message') await this.store.appendHistory(historyOf(e.event, step.state));
    }
    // A step that changed nothing (most ticks) costs no write.
    const changed = step.state !== this.current;
    if (changed) await this.store.save(step.state);
    this.current = step.state;
    if (outbox !== undefined) this.outboxCommitted(outbox);
    if (changed) this.env.events({ kind: 'saved' });
    await this.perform(step.effects);
  }

  /** Replaces the state outside the machine (configuration a user changed); saved like a step. */
  protected async replaceState(state: S): Promise<void> {
    await this.store.save(state);
    this.current = state;
    this.env.events({ kind: 'saved' });
  }

  /** A send's outbox record is committed together with the state (member driver keeps its list). */
  protected outboxCommitted(_record: OutboxRecord): void {}

  private async perform(effects: readonly Effect[]): Promise<void> {
    for (const e of effects) {
      if (e.kind === 'send') this.sendTo(e.to, e.bytes);
      else if (e.kind === 'close') this.closeLink(e.to, e.reason);
      else await this.onEvent(e.event);
    }
  }

  /** A machine event after its step was saved; every type (known or not) reaches the event sink. */
  protected async onEvent(event: RoomEvent): Promise<void> {
    this.env.events({ kind: 'room', event });
  }

  protected abstract sendTo(to: PeerKeyHex, bytes: Uint8Array): void;
  protected abstract closeLink(to: PeerKeyHex, reason: string): void;

  /** Close a link once its peer closed it or LINGER_MS passed; stop() waits for it. */
  protected linger(link: PeerLink): void {
    const done = lingerClose(link, this.env.timers);
    this.closing.add(done);
    void done.then(() => this.closing.delete(done));
  }

  // ---- queries ----

  /** Current members, owner first (roster.ts), from the last saved state. */
  members(): MemberListEntry[] {
    return memberList(this.current);
  }

  /** The safety code of the current epoch (section 5.11); null before a member holds one. */
  abstract safetyCode(): string | null;

  /** Runs `f` after every step queued before it (a `members` command answered in order). */
  inOrder<T>(f: () => T): Promise<T> {
    return this.serial(async () => f());
  }

  /** Resolves once every queued step is done. */
  idle(): Promise<void> {
    return this.queue;
  }

  // ---- lifecycle ----

  abstract start(): Promise<void>;

  /** Stop timers and reconnects now; finish queued steps and lingering closes; then close the links. */
  stop(): Promise<void> {
    if (this.stopping === null) {
      this.halt();
      this.stopping = (async () => {
        await this.queue;
        await Promise.all([...this.closing]);
        this.closeAll();
      })();
    }
    return this.stopping;
  }

  /** Stop timers and reconnect attempts (synchronously, at stop()). */
  protected abstract halt(): void;
  /** Close every link for good (after the queue drained). */
  protected abstract closeAll(): void;
}

/** The history record of a delivered message; in an owner room it carries the log entry (5.9). */
function historyOf(ev: Message, state: OwnerState | MemberState): HistoryRecord {
  const record = messageRecord(ev);
  if (state.role !== 'owner') return record;
  for (let i = state.log.length - 1; i >= 0; i--) {
    const entry = state.log[i]!;
    if (entry.idx === ev.idx) return { ...record, epoch: entry.epoch, env: entry.env };
    if (entry.idx < ev.idx) break;
  }
  return record;
}

/** A delivered message as a history record, without the owner's log fields (what views list). */
export function messageRecord(ev: Message): HistoryRecord {
  return { idx: ev.idx, senderId: ev.from, senderName: ev.name, seq: ev.seq, text: ev.text, at: ev.ts, system: false };
}
