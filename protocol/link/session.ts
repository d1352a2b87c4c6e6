/**
 * One peer-connection session of a peer link: the WebRTC task's signaling (offer/answer/candidates/
 * handover through SaltyRTC) and the session's lifecycle, composed of three parts in their own
 * modules: the peer connection (simple-peer-adapter.ts), the encrypted frame stream (frame-pump.ts)
 * and ICE restart (session-restart.ts). A link has at most one live session; a reconnect makes a
 * new one (new SaltyRTC handshake -> new session key, cookies and CSNs) while message ids carry over.
 *
 * An open session whose ICE goes 'disconnected' or 'failed' may instead be repaired by an ICE
 * restart (docs/PROTOCOL.md 4.6) when its RTCPeerConnection supports one: the restart's signaling
 * comes through a new SaltyRTC session (the ICE-restart task, `RestartPort`), and the data channel,
 * frame key, cookies and CSNs of this session carry on.
 *
 * A direct session also carries the files channel (docs/PROTOCOL.md 5.17.3; files-channel.ts) on the
 * same peer connection: it is reported open once both it and the session are open, survives an ICE
 * restart with the peer connection, and does not exist in fallback.
 */
import type { RandomBytes, SharedKey } from '../../crypto/index.ts';
import * as pm from '../saltyrtc/peer-messages.ts';
import { MAX_FRAME, PORTABLE_FRAME } from './frame.ts';
import { chunkPayloadFor, CHUNK_PAYLOAD, encodeInner, type Inner } from './reliable.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import { ZeroRoomError } from '../errors.ts';
import type { MsgValue } from '../msgpack.ts';
import {
  decodeFallbackData,
  encodeFallbackFrame,
  encodeFallbackStart,
  FALLBACK_AFTER_MS,
  FALLBACK_POLL_MS,
  FallbackError,
} from './fallback.ts';
import { FILES_CHANNEL_LABEL, SessionFilesChannel } from './files-channel.ts';
import { CHANNEL_HIGH_WATERMARK, CHANNEL_LOW_WATERMARK, FramePump } from './frame-pump.ts';
import type { IceServer, IceTransportPolicy, PeerConnectionLike } from './rtc.ts';
import { SessionRestart, type RestartPort } from './session-restart.ts';
import { SimplePeerTransport, type Signal } from './simple-peer-adapter.ts';
import { isRelayed } from './stats.ts';

export { ACK_DELAY_MS, CHANNEL_HIGH_WATERMARK, CHANNEL_LOW_WATERMARK } from './frame-pump.ts';
export type { RestartPort } from './session-restart.ts';

/** A session whose data channel is not open after this long is torn down (and retried). */
export const CONNECT_TIMEOUT_MS = 20_000;

export class LinkConnectError extends ZeroRoomError {
  constructor(state: string) {
    super('link.connect', `peer connection ${state} before the data channel opened`);
  }
}

export class LinkTimeoutError extends ZeroRoomError {
  constructor() {
    super('link.timeout', `data channel not open after ${CONNECT_TIMEOUT_MS} ms`);
  }
}

export interface WebRtcConfig {
  readonly iceServers: readonly IceServer[];
  readonly iceTransportPolicy?: IceTransportPolicy;
  /** WebRTC implementation for simple-peer (Node: signaling/node-wrtc.ts); browsers use their own. */
  readonly wrtc?: object;
  /**
   * Fallback through the signaling server (docs/PROTOCOL.md 4.8): the member's deadline for a data
   * channel (default FALLBACK_AFTER_MS); `false` never falls back (the session ends as before).
   */
  readonly fallback?: { readonly afterMs?: number; readonly probeAfterMs?: number } | false;
}

/** How a session talks to the other client through the server (SaltyRTC task/application messages). */
export interface TaskPort {
  send(payload: Uint8Array): void;
  handoverDone(): void;
  /** Leave this SaltyRTC peer (member: close the signaling connection; owner: drop the responder). */
  close?(): void;
  /** Bytes the signaling WebSocket still buffers (backpressure while in fallback). */
  bufferedAmount?(): number;
  /** The session moved onto the server: its SaltyRTC connection must stay open. */
  fallbackStarted?(): void;
}

/** The path an open session's frames take. */
export type SessionPath = 'direct' | 'relayed' | 'fallback';

/** What a session reports to its link. */
export interface SessionHost {
  readonly random: RandomBytes;
  readonly timers: Timers;
  onOpen(s: LinkSession, path: SessionPath): void;
  /** A probe session's data channel opened (synchronously, before any frame): make it the current one. */
  onPromote(s: LinkSession): void;
  /** The open session's ICE is disconnected/failed and its peer connection can restart ICE. */
  onIceTrouble(s: LinkSession): void;
  /** ICE is connected again after trouble: by an ICE restart (`restarted`) or by itself. */
  onIceRecovered(s: LinkSession, relayed: boolean, restarted: boolean): void;
  onInner(s: LinkSession, f: Inner): void;
  onEnded(s: LinkSession, error: Error | null): void;
  onBufferLow(s: LinkSession): void;
  /** The files channel is open on this open, direct session (5.17.3). */
  onFilesOpen(s: LinkSession): void;
  onFilesFrame(s: LinkSession, frame: Uint8Array): void;
  onFilesDrain(s: LinkSession): void;
  /** The files channel reported by onFilesOpen is gone (it closed, the session ended). */
  onFilesClosed(s: LinkSession): void;
}

export class LinkSession {
  private readonly transport: SimplePeerTransport;
  private readonly frames: FramePump;
  private readonly restart: SessionRestart;
  private filesChannel: SessionFilesChannel | null = null;
  /** onFilesOpen was reported (onFilesClosed follows it exactly once). */
  private filesReported = false;
  private connected = false;
  /** onOpen was reported for the direct path (after the path check). */
  private opened = false;
  private ended = false;
  private handoverSent = false;
  private descriptionSent = false;
  private descriptionReceived = false;
  private handoverReceived = false;
  private port: TaskPort | null;
  private connectTimer: unknown;
  private fallbackTimer: unknown = null;
  private pollTimer: unknown = null;
  /** Frames go as SaltyRTC application messages through the server (4.8) instead of the data channel. */
  private viaServer = false;
  private fallbackAfter = FALLBACK_AFTER_MS;
  private createdAt = 0;
  /** Member only: may move onto the server (not a probe, fallback enabled). */
  private readonly canFallBack: boolean;
  /** Fallback is on for this link (owner: wait for the member's decision when the peer connection fails). */
  private readonly fallbackOn: boolean;
  /** DATA chunk size for this session, from the SCTP transport's maxMessageSize (see frame.ts MAX_FRAME). */
  chunkSize = CHUNK_PAYLOAD;

  constructor(
    private readonly host: SessionHost,
    key: SharedKey,
    private readonly initiator: boolean,
    rtc: WebRtcConfig,
    port: TaskPort,
    ownResume: () => Inner,
    /** A probe for a direct path while the current session runs in fallback (4.8): it never falls back. */
    readonly probe = false,
    /**
     * The link's previous session also failed before its channel opened: an early failure of this
     * one means fall back at once. A first early failure is often transient and gets a new session.
     */
    private readonly eagerFallback = false,
  ) {
    this.port = port;
    this.fallbackOn = rtc.fallback !== false;
    this.canFallBack = !initiator && !probe && this.fallbackOn;
    this.frames = new FramePump(
      {
        timers: host.timers,
        channelBuffered: () => (this.viaServer ? (this.port?.bufferedAmount?.() ?? 0) : this.transport.bufferedAmount),
        sendFrame: (frame) => {
          if (!this.viaServer) return this.transport.send(frame);
          this.port?.send(encodeFallbackFrame(frame));
          // No low-water event on a WebSocket: look again while it is full.
          if ((this.port?.bufferedAmount?.() ?? 0) >= CHANNEL_HIGH_WATERMARK) this.schedulePoll();
        },
        onInner: (f) => this.host.onInner(this, f),
        onBufferLow: () => this.host.onBufferLow(this),
        fail: (e) => this.end(e),
      },
      key,
      host.random,
      ownResume,
    );
    this.transport = new SimplePeerTransport(
      {
        initiator,
        channelName: 'zeroroom-link',
        extraChannel: FILES_CHANNEL_LABEL,
        iceServers: rtc.iceServers,
        ...(rtc.iceTransportPolicy !== undefined ? { iceTransportPolicy: rtc.iceTransportPolicy } : {}),
        ...(rtc.wrtc !== undefined ? { wrtc: rtc.wrtc } : {}),
      },
      {
        signal: (s) => {
          if (!this.viaServer) this.onLocalSignal(s);
        },
        connect: () => {
          if (!this.viaServer) void this.onConnect();
        },
        data: (d) => {
          if (!this.viaServer) this.frames.receive(d);
        },
        close: () => this.onTransportGone(null),
        error: (e) => this.onTransportGone(e),
      },
    );
    this.transport.onExtraChannel((dc) => {
      if (this.ended || this.viaServer) return dc.close();
      this.filesChannel = new SessionFilesChannel(dc, () => this.transport.peerConnection?.sctp?.maxMessageSize, {
        opened: () => this.maybeFilesOpen(),
        frame: (bytes) => {
          if (this.filesReported) this.host.onFilesFrame(this, bytes);
        },
        drained: () => {
          if (this.filesReported) this.host.onFilesDrain(this);
        },
        closed: () => this.dropFiles(),
        fail: (e) => this.end(e),
      });
    });
    // The other side gave up before the channel opened (its peer connection failed or was
    // destroyed): end now rather than at the connect timeout, so the link retries at once.
    const pc = this.transport.peerConnection;
    pc?.addEventListener('connectionstatechange', () => {
      const st = pc.connectionState;
      if (!this.connected && (st === 'failed' || st === 'closed')) this.onTransportGone(new LinkConnectError(st));
    });
    this.restart = new SessionRestart(
      {
        timers: host.timers,
        initiator,
        transport: this.transport,
        isOpen: () => this.isOpen,
        end: (e) => this.end(e),
        onIceTrouble: () => this.host.onIceTrouble(this),
        onIceRecovered: (restarted) => {
          void isRelayed(this.transport.peerConnection).then((relayed) => {
            if (!this.ended) this.host.onIceRecovered(this, relayed, restarted);
          });
        },
      },
      key,
    );
    this.connectTimer = host.timers.setTimeout(() => {
      if (!this.connected) this.end(new LinkTimeoutError());
    }, CONNECT_TIMEOUT_MS);
    const fallbackAfter = (rtc.fallback !== false ? rtc.fallback?.afterMs : undefined) ?? FALLBACK_AFTER_MS;
    this.fallbackAfter = fallbackAfter;
    this.createdAt = host.timers.now();
    // Member: no data channel by the deadline -> move onto the server. Probe: give up quietly.
    if (this.canFallBack || (probe && rtc.fallback !== false)) {
      let extended = false;
      const onDeadline = (): void => {
        this.fallbackTimer = null;
        if (this.connected || this.ended) return;
        // ICE found a pair and only DTLS/SCTP is still on its way (a slow, loaded machine): that is
        // no reason to leave the direct path; wait once more, up to the connect timeout.
        const ice = this.transport.peerConnection?.iceConnectionState;
        if (!extended && (ice === 'connected' || ice === 'completed') && CONNECT_TIMEOUT_MS > fallbackAfter) {
          extended = true;
          this.fallbackTimer = host.timers.setTimeout(onDeadline, CONNECT_TIMEOUT_MS - fallbackAfter - 1000);
          return;
        }
        if (this.probe) this.end(new LinkTimeoutError());
        else this.startFallback();
      };
      this.fallbackTimer = host.timers.setTimeout(onDeadline, fallbackAfter);
    }
  }

  /** The session's RTCPeerConnection (null once destroyed or in fallback), for stats. */
  get peerConnection(): PeerConnectionLike | null {
    return this.viaServer ? null : this.transport.peerConnection;
  }

  /** The open direct session's files channel (5.17.3), once reported open; null otherwise. */
  get files(): SessionFilesChannel | null {
    return this.filesReported ? this.filesChannel : null;
  }

  /** Report the files channel open when it and the session both are (and the session is direct). */
  private maybeFilesOpen(): void {
    const fc = this.filesChannel;
    if (this.filesReported || fc === null || !fc.isOpen || !this.opened || this.ended || this.viaServer) return;
    this.filesReported = true;
    this.host.onFilesOpen(this);
  }

  /** The files channel is gone (it closed, the session ended or moved onto the server). */
  private dropFiles(): void {
    const fc = this.filesChannel;
    this.filesChannel = null;
    fc?.detach();
    if (!this.filesReported) return;
    this.filesReported = false;
    this.host.onFilesClosed(this);
  }

  /** The channel opened at some point (directly or through the server). */
  get everOpened(): boolean {
    return this.connected;
  }

  /** Frames go through the signaling server (4.8). */
  get isFallback(): boolean {
    return this.viaServer;
  }

  // --- fallback through the server (docs/PROTOCOL.md 4.8; fallback.ts) ----------------------------

  /** The peer connection closed or failed. Before the channel opened that may mean: fall back. */
  private onTransportGone(error: Error | null): void {
    if (this.viaServer || this.ended) return;
    if (!this.connected && this.port !== null && !this.handoverSent && !this.probe) {
      const late = this.host.timers.now() - this.createdAt >= this.fallbackAfter;
      if (this.canFallBack && (this.eagerFallback || late)) return this.startFallback();
      // Owner: the member decides (its fallback message comes, or the connect timeout ends this).
      if (this.initiator && this.fallbackOn) return;
    }
    this.end(error);
  }

  /** Member: tell the owner, then carry frames through the server. */
  private startFallback(): void {
    if (this.connected || this.ended || this.port === null || this.handoverSent) return;
    this.port.send(encodeFallbackStart());
    this.switchToServer();
  }

  private switchToServer(): void {
    this.viaServer = true;
    this.connected = true;
    this.host.timers.clearTimeout(this.connectTimer);
    if (this.fallbackTimer !== null) this.host.timers.clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    // Nothing more goes over ICE; the callbacks above ignore what the dying transport still reports.
    this.dropFiles();
    this.transport.destroy();
    this.chunkSize = chunkPayloadFor(MAX_FRAME);
    this.port?.fallbackStarted?.();
    this.frames.start();
    this.host.onOpen(this, 'fallback');
  }

  private schedulePoll(): void {
    if (this.pollTimer !== null || this.ended) return;
    this.pollTimer = this.host.timers.setTimeout(() => {
      this.pollTimer = null;
      this.frames.pump();
    }, FALLBACK_POLL_MS);
  }

  /** An `application` message from the other client on this session's SaltyRTC channel. */
  onApplication(data: MsgValue): void {
    if (this.ended) return;
    let msg: ReturnType<typeof decodeFallbackData>;
    try {
      msg = decodeFallbackData(data);
      if (msg.kind === 'start') {
        if (!this.initiator) throw new FallbackError('fallback from the owner');
        if (this.viaServer) throw new FallbackError('second fallback message');
        if (this.connected || this.handoverSent) throw new FallbackError('fallback after the data channel opened');
      } else if (!this.viaServer) throw new FallbackError('frame through the server before fallback');
    } catch (e) {
      this.end(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (msg.kind === 'start') this.switchToServer();
    else this.frames.receive(msg.frame);
  }

  get bufferedAmount(): number {
    return this.frames.queued + (this.ended ? 0 : this.transport.bufferedAmount);
  }

  get isOpen(): boolean {
    return this.connected && !this.ended;
  }

  /** The peer's RESUME arrived (it MUST be its first frame). */
  get peerResumed(): boolean {
    return this.frames.peerResumed;
  }

  // --- ICE restart (docs/PROTOCOL.md 4.6; session-restart.ts) ---------------------------------

  /** Names this session in an ICE-restart request (ice-restart.ts restartIdOf). */
  get restartId(): Uint8Array {
    return this.restart.restartId;
  }

  /** Owner: can this session be restarted for a request naming `id`? */
  acceptsIceRestart(id: Uint8Array): boolean {
    return this.restart.accepts(id);
  }

  /**
   * Restart ICE on this open session, signaling through `port`. The owner (simple-peer initiator)
   * makes the offer with `iceRestart: true`; the member answers it. Throws IceRestartError when the
   * session is not open, is already restarting, or its peer connection cannot restart ICE.
   */
  beginIceRestart(port: RestartPort): void {
    this.restart.begin(port);
  }

  /**
   * A message of this session's restart signaling. Anything out of order (no restart was begun, the
   * session is not open, the machine refuses it) throws IceRestartError; an open session ends first.
   */
  onRestartMessage(msg: pm.PostAuthMessage): void {
    this.restart.onMessage(msg);
  }

  /**
   * Member: the restart's SaltyRTC session is over (`chosen`: the owner had chosen the ICE-restart
   * task in it). Before the restart is done, or before the owner answered while ICE is still down,
   * that is the restart's failure: the session ends and the usual reconnect follows.
   */
  restartSignalingClosed(error: Error, chosen: boolean): void {
    this.restart.signalingClosed(error, chosen);
  }

  /** Owner: the restart's SaltyRTC session is gone (the member left it); the deadline still applies. */
  detachRestartPort(): void {
    this.restart.detachPort();
  }

  // --- WebRTC task (Task-WebRTC.md) ------------------------------------------------------------

  private onLocalSignal(s: Signal): void {
    if (this.restart.running) {
      this.restart.onLocalSignal(s);
      return;
    }
    const port = this.port;
    if (port === null || this.handoverSent || this.viaServer) return; // after handover no more signaling is needed
    if (s.type === 'candidate') {
      port.send(pm.encodeCandidates([s.candidate]));
      return;
    }
    // One offer/answer per session: we never renegotiate (no media, one channel). simple-peer
    // sometimes starts a redundant second negotiation (a 'stable' signaling state racing its
    // constructor's); forwarding it made the other side answer twice and the offerer fail.
    if (this.descriptionSent) return;
    this.descriptionSent = true;
    port.send(s.type === 'offer' ? pm.encodeOffer({ type: 'offer', sdp: s.sdp }) : pm.encodeAnswer({ type: 'answer', sdp: s.sdp }));
  }

  /** A task message from the other client (relayed by the server). */
  onTaskMessage(msg: pm.TaskMessage): void {
    if (this.ended) return;
    if (this.viaServer) {
      // Late candidates of the abandoned peer connection are harmless; a handover is not (4.8).
      if (msg.type === 'handover') this.end(new FallbackError('handover on a session in fallback'));
      return;
    }
    switch (msg.type) {
      case 'offer':
      case 'answer':
        if (this.descriptionReceived) return; // see onLocalSignal: one description each way
        this.descriptionReceived = true;
        this.transport.signal(msg.type === 'offer' ? { type: 'offer', sdp: msg.offer.sdp } : { type: 'answer', sdp: msg.answer.sdp });
        return;
      case 'candidates':
        for (const c of msg.candidates) {
          if (c === null) continue; // end-of-candidates: simple-peer has no use for it
          this.transport.signal({ type: 'candidate', candidate: c });
        }
        return;
      case 'handover':
        this.handoverReceived = true;
        this.maybeHandoverDone();
        return;
    }
  }

  /**
   * The signaling connection for this peer is gone (expected after handover). A session in fallback
   * has lost its transport with it and ends with `error`.
   */
  detachPort(error: Error | null = null): void {
    this.port = null;
    if (this.viaServer) this.end(error);
  }

  private maybeHandoverDone(): void {
    if (this.handoverSent && this.handoverReceived && this.port !== null) {
      const port = this.port;
      this.port = null;
      port.handoverDone();
    }
  }

  private async onConnect(): Promise<void> {
    if (this.ended) return;
    this.connected = true;
    this.host.timers.clearTimeout(this.connectTimer);
    if (this.fallbackTimer !== null) this.host.timers.clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    // A probe becomes the current session now, before any frame of the peer can arrive on it.
    if (this.probe) this.host.onPromote(this);
    const sctpMax = this.transport.peerConnection?.sctp?.maxMessageSize;
    const frameSize = typeof sctpMax === 'number' && sctpMax >= PORTABLE_FRAME ? Math.min(MAX_FRAME, sctpMax) : PORTABLE_FRAME;
    this.chunkSize = chunkPayloadFor(frameSize);
    const channel = this.transport.dataChannel;
    if (channel !== null) {
      channel.bufferedAmountLowThreshold = CHANNEL_LOW_WATERMARK;
      channel.addEventListener('bufferedamountlow', () => this.frames.pump());
    }
    if (this.port !== null) {
      this.port.send(pm.encodeHandover());
      this.handoverSent = true;
      this.maybeHandoverDone();
    }
    this.frames.start();
    const relayed = await isRelayed(this.transport.peerConnection);
    if (this.ended) return;
    this.host.onOpen(this, relayed ? 'relayed' : 'direct');
    // After the link announced its state (the owner hands the link out then): 'files-open' follows.
    this.opened = true;
    this.maybeFilesOpen();
  }

  // --- frames (frame-pump.ts) -------------------------------------------------------------------

  enqueueAll(frames: readonly Inner[]): void {
    this.frames.enqueueAll(frames);
  }

  /** Queue an ack ahead of queued data (it is small and frees the peer's memory), never before our RESUME. */
  sendAck(f: Inner): void {
    this.frames.sendAck(f);
  }

  scheduleAck(build: () => Inner | null): void {
    this.frames.scheduleAck(build);
  }

  pump(): void {
    this.frames.pump();
  }

  /** Tear the peer connection down; `error` is why (null: closed normally). */
  end(error: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    this.frames.stop();
    this.host.timers.clearTimeout(this.connectTimer);
    if (this.fallbackTimer !== null) this.host.timers.clearTimeout(this.fallbackTimer);
    if (this.pollTimer !== null) this.host.timers.clearTimeout(this.pollTimer);
    this.restart.stop();
    this.dropFiles();
    this.transport.destroy();
    // Still attached to its SaltyRTC peer (before handover, or in fallback): leave it, so the other
    // side's session ends too instead of waiting on a path nobody serves.
    const port = this.port;
    this.port = null;
    if (port !== null && !this.handoverSent) port.close?.();
    else if (port !== null && this.viaServer) port.close?.();
    this.host.onEnded(this, error);
  }

  /** Close gracefully: send what is queued (ending with `last`), wait for the channel to drain, end. */
  finish(last: Inner, maxWaitMs: number): void {
    if (this.ended) return;
    if (!this.connected) return this.end(null);
    if (this.viaServer) {
      // The WebSocket keeps its order: queue the CLOSE frame, then leave after a short grace.
      this.frames.enqueue(encodeInner(last));
      this.frames.pump();
      this.host.timers.setTimeout(() => this.end(null), Math.min(maxWaitMs, 500));
      return;
    }
    this.frames.enqueue(encodeInner(last));
    this.frames.pump();
    const channel = this.transport.dataChannel;
    const deadline = this.host.timers.setTimeout(() => this.end(null), maxWaitMs);
    const check = (): void => {
      if (this.frames.empty && this.transport.bufferedAmount === 0) {
        this.host.timers.clearTimeout(deadline);
        this.end(null);
      }
    };
    if (channel !== null) {
      channel.bufferedAmountLowThreshold = 0;
      channel.addEventListener('bufferedamountlow', check);
    }
    check();
  }
}
