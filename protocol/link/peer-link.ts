/**
 * PeerLink: an authenticated, end-to-end encrypted, ordered, reliable byte channel between the
 * room owner and one member (docs/PROTOCOL.md section 4). The room layer and the web app use
 * only this interface plus `startOwner` (owner side) and `joinRoom` (member side).
 *
 * Guarantees:
 * - `peerKey` is the other side's SaltyRTC permanent public key, authenticated by the client
 *   handshake (token path or trusted-key path). It is the peer's identity.
 * - Messages arrive whole, in order, exactly once, across reconnects: each message has a link-level
 *   id, is kept until the peer acks it, is re-sent on the next session and de-duplicated there.
 *   Messages that arrive before the first 'message' listener is registered wait for it.
 * - Every data-channel frame is encrypted and authenticated with the session key of the SaltyRTC
 *   handshake that created the peer connection; replayed, reordered or tampered frames end the
 *   session with a typed error (`FrameError`), never with plaintext.
 * - Backpressure: `send` never throws for a full channel; watch `bufferedAmount` and wait for
 *   'drain' (emitted once it falls below LINK_LOW_WATERMARK after having reached LINK_HIGH_WATERMARK).
 *
 * States: 'connecting' (before the first data channel opens), 'direct' / 'relayed' (open; relayed
 * when the selected ICE candidate pair is a TURN relay), 'restarting' (ICE went down on the open
 * session and an ICE restart is under way: the data channel, its keys and queued messages stay; see
 * ice-restart.ts), 'fallback' (open, but frames go through the signaling server because no ICE pair
 * works: docs/PROTOCOL.md 4.8; a probe session may bring the link back to 'direct'), 'offline'
 * (dropped; the member is reconnecting, the owner waits for it), 'closed' (final: close() on either
 * side, or refused).
 *
 * Files (docs/PROTOCOL.md 5.17.3): each direct (or relayed) session also opens the files channel,
 * a second data channel on the same peer connection, exposed as `files` between 'files-open' and
 * 'files-closed'. Its frames bypass the message store: no ids, acks, resume or MAX_MESSAGE. A
 * session in fallback has none; a new session (reconnect, probe) brings a new one.
 */
import type { BoxPublicKey, RandomBytes, SharedKey } from '../../crypto/index.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import { pathKindOf, type LinkPathInfo } from './diagnostics.ts';
import { Emitter } from './emitter.ts';
import type { FilesChannel } from './files-channel.ts';
import { LinkClosedError } from './link-errors.ts';
import { Inbox, LinkTooLargeError, MAX_MESSAGE, Outbox, type Inner } from './reliable.ts';
import { LinkSession, type TaskPort, type WebRtcConfig } from './session.ts';
import { selectedPath } from './stats.ts';

export type LinkState = 'connecting' | 'direct' | 'relayed' | 'fallback' | 'restarting' | 'offline' | 'closed';

/** How this link object was kept up: peer connections made and ICE restarts completed on them. */
export interface LinkCounts {
  readonly peerConnections: number;
  readonly iceRestarts: number;
}

export const LINK_HIGH_WATERMARK = 4 * 1024 * 1024;
export const LINK_LOW_WATERMARK = 1024 * 1024;
/** How long close() waits for queued frames to leave before tearing the channel down. */
export const CLOSE_FLUSH_MS = 2000;
/** Reason carried by the CLOSE frame when the application closes a link. */
export const CLOSE_NORMAL = 1000;

export interface PeerLinkEvents {
  message: (bytes: Uint8Array) => void;
  state: (state: LinkState) => void;
  drain: () => void;
  close: (error: Error | null) => void;
  /** A session ended with an error (the link itself may reconnect). */
  error: (error: Error) => void;
  /** The peer acknowledged every message up to the one `send` returned this ticket for. */
  acked: (ticket: number) => void;
  /**
   * A (new) session's files channel opened: resume transfers (FileTransfers.resume). A listener
   * registered while `files` is not null is also called once for that channel (in a microtask), so
   * whoever gets the link after its open does not miss it.
   */
  'files-open': () => void;
  /** One frame from the files channel of the current session. */
  'files-frame': (frame: Uint8Array) => void;
  /** The files channel's bufferedAmount fell to its low-water mark (FILES_LOW_WATERMARK): FileTransfers.pump(). */
  'files-drain': () => void;
  /** The channel of the last 'files-open' is gone (drop, fallback, close): wait for the next 'files-open'. */
  'files-closed': () => void;
}

export interface PeerLink {
  readonly peerKey: BoxPublicKey;
  readonly state: LinkState;
  /** Bytes accepted by send() and not yet handed to the data channel, plus the channel's own buffer. */
  readonly bufferedAmount: number;
  readonly counts: LinkCounts;
  /** The open direct session's files channel; null before open, in fallback, after close. */
  readonly files: FilesChannel | null;
  /**
   * Queue one message (any size up to MAX_MESSAGE = 1 MiB; larger: LinkTooLargeError). Throws
   * LinkClosedError after close. Returns the message's ticket (1, 2, 3, ... per link object):
   * 'acked' with a ticket >= it means the peer's link layer received it (not that the peer's
   * application handled it).
   */
  send(bytes: Uint8Array): number;
  on<K extends keyof PeerLinkEvents>(ev: K, f: PeerLinkEvents[K]): () => void;
  /** Deliver what is queued, tell the peer, and close for good (no reconnect). */
  close(): void;
  /** Diagnostics: the path the open session uses (host, reflexive, relay, fallback) and its RTT; null when not open. */
  pathInfo(): Promise<LinkPathInfo | null>;
}

export { LinkClosedError } from './link-errors.ts';
export {
  FilesChannelError,
  FilesFrameTooLargeError,
  FILES_CHANNEL_LABEL,
  FILES_LOW_WATERMARK,
  type FilesChannel,
} from './files-channel.ts';

export interface LinkDeps {
  readonly random: RandomBytes;
  readonly timers: Timers;
  readonly rtc: WebRtcConfig;
}

/** Shared by the owner and member sides; they attach sessions and react to drops. */
export class PeerLinkImpl implements PeerLink {
  private current: LinkSession | null = null;
  /** The session whose files channel was announced by 'files-open' (and not yet by 'files-closed'). */
  private filesSession: LinkSession | null = null;
  /** Sessions in a row that ended before their channel opened (an early failure then falls back at once). */
  private failedBeforeOpen = 0;
  /** A probe for a direct path while `current` runs in fallback (docs/PROTOCOL.md 4.8). */
  private probe: LinkSession | null = null;
  private readonly events = new Emitter<PeerLinkEvents>();
  // A side that restarted (new process) while its peer kept the link continues the peer's message
  // ids instead of failing every resume (zeroroom host/join restarted from --state).
  private readonly outbox = new Outbox({ adoptPeerNumbering: true });
  private readonly inbox = new Inbox({ adoptPeerNumbering: true });
  private wantDrain = false;
  private ackedEmitted = 0;
  /**
   * Messages that arrived before anyone listened: the owner announces a link only after getStats
   * says direct or relayed, and a member's joinRoom resolves after the open, while the peer may
   * send at once. They are acked already, so dropping them would lose them for good.
   */
  private early: Uint8Array[] | null = [];
  private flushScheduled = false;
  private stateValue: LinkState = 'connecting';
  private countsValue: LinkCounts = { peerConnections: 0, iceRestarts: 0 };
  /** Called when the open session's ICE went down and can be restarted (member: start the restart). */
  onIceTrouble: ((s: LinkSession) => void) | null = null;
  /** Called when a session drops and the link is not closed (member: schedule a reconnect). */
  onDropped: ((error: Error | null) => void) | null = null;
  /** Called once when the link is closed (owner: forget it). */
  onClosed: (() => void) | null = null;
  /** Called on every open (member: reset the backoff; owner: announce new links). */
  onOpened: (() => void) | null = null;
  /** Called when a probe ended without opening (member: schedule the next probe). */
  onProbeEnded: (() => void) | null = null;

  constructor(
    readonly peerKey: BoxPublicKey,
    private readonly deps: LinkDeps,
  ) {}

  get state(): LinkState {
    return this.stateValue;
  }

  get counts(): LinkCounts {
    return this.countsValue;
  }

  get bufferedAmount(): number {
    return this.current?.bufferedAmount ?? this.outbox.pendingBytes;
  }

  get files(): FilesChannel | null {
    return this.filesSession?.files ?? null;
  }

  on<K extends keyof PeerLinkEvents>(ev: K, f: PeerLinkEvents[K]): () => void {
    const off = this.events.on(ev, f);
    const announced = this.filesSession;
    if (ev === 'files-open' && announced !== null) {
      let subscribed = true;
      queueMicrotask(() => {
        if (subscribed && this.filesSession === announced) (f as PeerLinkEvents['files-open'])();
      });
      return () => {
        subscribed = false;
        off();
      };
    }
    if (ev === 'message' && this.early !== null && !this.flushScheduled) {
      // After the caller has registered its other handlers too, in arrival order.
      this.flushScheduled = true;
      queueMicrotask(() => {
        const early = this.early ?? [];
        this.early = null;
        for (const msg of early) if (this.stateValue !== 'closed') this.events.emit('message', msg);
      });
    }
    return off;
  }

  send(bytes: Uint8Array): number {
    if (this.stateValue === 'closed') throw new LinkClosedError();
    if (bytes.length > MAX_MESSAGE)
      throw new LinkTooLargeError(`message of ${bytes.length} bytes, the link carries at most ${MAX_MESSAGE}`);
    const frames = this.outbox.add(bytes.slice(), this.current?.chunkSize);
    // Before the peer's RESUME the frames wait in the outbox; resume() re-chunks them.
    if (this.current !== null && this.current.peerResumed) this.current.enqueueAll(frames);
    if (this.bufferedAmount >= LINK_HIGH_WATERMARK) this.wantDrain = true;
    return this.outbox.lastTicket;
  }

  close(): void {
    if (this.stateValue === 'closed') return;
    this.endProbe();
    const s = this.current;
    this.setState('closed');
    // The session flushes its queued messages for a while; file frames stop now.
    this.forgetFiles();
    if (s !== null) s.finish({ kind: 'close', reason: CLOSE_NORMAL }, CLOSE_FLUSH_MS);
    this.finalClose(null);
  }

  async pathInfo(): Promise<LinkPathInfo | null> {
    const s = this.current;
    if (s === null || !s.isOpen) return null;
    if (s.isFallback) return { kind: 'fallback', rttMs: null };
    const p = await selectedPath(s.peerConnection);
    return p === null ? null : { kind: pathKindOf(p), rttMs: p.rttMs };
  }

  /** Is the current session carried through the signaling server (4.8)? */
  get inFallback(): boolean {
    return this.current?.isFallback === true;
  }

  /**
   * Start a new session on this link (after a successful SaltyRTC handshake). While the current
   * session runs in fallback, the new one is a probe (4.8): the current one carries on until the
   * probe's data channel opens, and a probe that does not open ends quietly.
   */
  attach(key: SharedKey, initiator: boolean, port: TaskPort): LinkSession {
    const probe = this.current !== null && this.current.isFallback && this.stateValue !== 'closed';
    if (probe) this.endProbe();
    else {
      const old = this.current;
      this.current = null;
      old?.end(null);
      this.endProbe();
    }
    const session = new LinkSession(
      {
        random: this.deps.random,
        timers: this.deps.timers,
        onPromote: (s) => {
          if (s !== this.probe || this.stateValue === 'closed') return;
          const old = this.current;
          this.current = s;
          this.probe = null;
          old?.end(null);
        },
        onOpen: (s, path) => {
          if (s !== this.current || this.stateValue === 'closed') return;
          this.setState(path);
          this.onOpened?.();
        },
        onIceTrouble: (s) => {
          if (s !== this.current || this.stateValue === 'closed') return;
          this.setState('restarting');
          this.onIceTrouble?.(s);
        },
        onIceRecovered: (s, relayed, restarted) => {
          if (s !== this.current || this.stateValue === 'closed') return;
          if (restarted) this.countsValue = { ...this.countsValue, iceRestarts: this.countsValue.iceRestarts + 1 };
          this.setState(relayed ? 'relayed' : 'direct');
        },
        onInner: (s, f) => this.onInner(s, f),
        onEnded: (s, error) => this.onSessionEnded(s, error),
        onBufferLow: (s) => {
          if (s === this.current) this.checkDrain();
        },
        onFilesOpen: (s) => {
          if (s !== this.current || this.stateValue === 'closed') return;
          this.filesSession = s;
          this.events.emit('files-open');
        },
        onFilesFrame: (s, frame) => {
          if (s === this.filesSession) this.events.emit('files-frame', frame);
        },
        onFilesDrain: (s) => {
          if (s === this.filesSession) this.events.emit('files-drain');
        },
        onFilesClosed: (s) => {
          if (s !== this.filesSession) return;
          this.filesSession = null;
          this.events.emit('files-closed');
        },
      },
      key,
      initiator,
      this.deps.rtc,
      port,
      // Computed when the channel opens: a probe opens while the fallback session still delivers.
      () => ({ kind: 'resume', nextId: this.inbox.resumePoint() }),
      probe,
      this.failedBeforeOpen >= 1,
    );
    if (probe) this.probe = session;
    else this.current = session;
    this.countsValue = { ...this.countsValue, peerConnections: this.countsValue.peerConnections + 1 };
    return session;
  }

  private forgetFiles(): void {
    if (this.filesSession === null) return;
    this.filesSession = null;
    this.events.emit('files-closed');
  }

  private endProbe(): void {
    const p = this.probe;
    this.probe = null;
    p?.end(null);
  }

  /** End the current session with `error` (the link goes 'offline' and reconnects as after any drop). */
  dropSession(error: Error): void {
    this.current?.end(error);
  }

  get session(): LinkSession | null {
    return this.current;
  }

  private onInner(s: LinkSession, f: Inner): void {
    if (s !== this.current) return;
    switch (f.kind) {
      case 'resume':
        s.enqueueAll(this.outbox.resume(f.nextId, s.chunkSize));
        this.emitAcked();
        return;
      case 'ack':
        this.outbox.ack(f.msgId);
        this.emitAcked();
        this.checkDrain();
        return;
      case 'data': {
        const msg = this.inbox.receive(f);
        if (msg === null) return;
        if (this.inbox.ackDue) s.sendAck(this.inbox.takeAck());
        else s.scheduleAck(() => (this.inbox.hasUnacked ? this.inbox.takeAck() : null));
        if (this.stateValue === 'closed') return;
        if (this.early !== null) this.early.push(msg);
        else this.events.emit('message', msg);
        return;
      }
      case 'close':
        this.current = null;
        s.end(null);
        if (this.stateValue !== 'closed') {
          this.setState('closed');
          this.finalClose(null);
        }
        return;
    }
  }

  private onSessionEnded(s: LinkSession, error: Error | null): void {
    if (s === this.current) this.failedBeforeOpen = s.everOpened ? 0 : this.failedBeforeOpen + 1;
    if (s === this.probe) {
      this.probe = null;
      this.onProbeEnded?.();
      return;
    }
    if (s !== this.current) return;
    this.current = null;
    if (error !== null) this.events.emit('error', error);
    if (this.stateValue === 'closed') return;
    this.setState('offline');
    this.onDropped?.(error);
  }

  private emitAcked(): void {
    const ticket = this.outbox.ackedTicket;
    if (ticket > this.ackedEmitted) {
      this.ackedEmitted = ticket;
      this.events.emit('acked', ticket);
    }
  }

  private checkDrain(): void {
    if (this.wantDrain && this.bufferedAmount < LINK_LOW_WATERMARK) {
      this.wantDrain = false;
      this.events.emit('drain');
    }
  }

  /** Close for good without a session (refused on reconnect, owner shutting down). */
  fail(error: Error | null): void {
    if (this.stateValue === 'closed') return;
    this.endProbe();
    const s = this.current;
    this.current = null;
    s?.end(null);
    this.setState('closed');
    this.finalClose(error);
  }

  private finalClose(error: Error | null): void {
    this.events.emit('close', error);
    this.onClosed?.();
  }

  private setState(next: LinkState): void {
    if (next === this.stateValue) return;
    this.stateValue = next;
    this.events.emit('state', next);
  }
}

export { startOwner, type OwnerOptions, type OwnerHandle } from './owner.ts';
export { joinRoom, type JoinOptions } from './member.ts';
