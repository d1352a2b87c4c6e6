/**
 * One peer-connection session of a peer link: the simple-peer instance, the WebRTC task's
 * signaling (offer/answer/candidates/handover through SaltyRTC), and the encrypted frame stream
 * on its data channel. A link has at most one live session; a reconnect makes a new one (new
 * SaltyRTC handshake -> new session key, cookies and CSNs) while message ids carry over.
 *
 * An open session whose ICE goes 'disconnected' or 'failed' may instead be repaired by an ICE
 * restart (docs/PROTOCOL.md 4.6) when its RTCPeerConnection supports one: the restart's signaling
 * comes through a new SaltyRTC session (the ICE-restart task, `RestartPort`), and the data channel,
 * frame key, cookies and CSNs of this session carry on.
 */
import Peer from 'simple-peer';
import type { Instance as PeerInstance, SignalData } from 'simple-peer';
import type { RandomBytes, SharedKey } from '../../crypto/index.ts';
import * as pm from '../saltyrtc/peer-messages.ts';
import {
  MAX_FRAME,
  newReceiveState,
  newSendState,
  openFrame,
  PORTABLE_FRAME,
  sealFrame,
  type ReceiveState,
  type SendState,
} from './frame.ts';
import { chunkPayloadFor, CHUNK_PAYLOAD, decodeInner, encodeInner, LinkProtocolError, type Inner } from './reliable.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import { ZeroRoomError } from '../errors.ts';
import { equalBytes } from '../../crypto/index.ts';
import {
  descriptionsDone,
  IceRestartError,
  MEMBER_RESTART_DEADLINE_MS,
  newRestart,
  OWNER_RESTART_DEADLINE_MS,
  restartIdOf,
  restartStep,
  type RestartEvent,
  type RestartState,
} from './ice-restart.ts';

/** Stop sealing frames while the data channel buffers more than this; resume at the low mark. */
export const CHANNEL_HIGH_WATERMARK = 1024 * 1024;
export const CHANNEL_LOW_WATERMARK = 256 * 1024;
/** Send a pending ack this long after the last delivered message (unless one is due earlier). */
export const ACK_DELAY_MS = 50;
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
  readonly iceServers: readonly RTCIceServer[];
  readonly iceTransportPolicy?: RTCIceTransportPolicy;
  /** WebRTC implementation for simple-peer (Node: nodeWrtc()); browsers use their own. */
  readonly wrtc?: object;
}

/** How a session talks to the other client before handover (SaltyRTC task messages). */
export interface TaskPort {
  send(payload: Uint8Array): void;
  handoverDone(): void;
}

/** How an ICE restart of a session talks to the other client (the ICE-restart task's SaltyRTC session). */
export interface RestartPort {
  send(payload: Uint8Array): void;
  /** The restart is done (ICE connected again); the member leaves that SaltyRTC session. */
  done(): void;
}

/** What a session reports to its link. */
export interface SessionHost {
  readonly random: RandomBytes;
  readonly timers: Timers;
  onOpen(s: LinkSession, relayed: boolean): void;
  /** The open session's ICE is disconnected/failed and its peer connection can restart ICE. */
  onIceTrouble(s: LinkSession): void;
  /** ICE is connected again after trouble: by an ICE restart (`restarted`) or by itself. */
  onIceRecovered(s: LinkSession, relayed: boolean, restarted: boolean): void;
  onInner(s: LinkSession, f: Inner): void;
  onEnded(s: LinkSession, error: Error | null): void;
  onBufferLow(s: LinkSession): void;
}

type DataChannelLike = EventTarget & { bufferedAmount: number; bufferedAmountLowThreshold: number };
type StateHandler = ((this: RTCPeerConnection, ev: Event) => unknown) | null;
/** The RTCPeerConnection handlers simple-peer installs (it destroys the peer on 'failed' in each). */
type PcHandlers = {
  oniceconnectionstatechange: StateHandler;
  onicegatheringstatechange: StateHandler;
  onconnectionstatechange: StateHandler;
};

export class LinkSession {
  private readonly peer: PeerInstance;
  private sendState: SendState;
  private recvState: ReceiveState;
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private connected = false;
  private ended = false;
  private handoverSent = false;
  private descriptionSent = false;
  private descriptionReceived = false;
  private handoverReceived = false;
  private port: TaskPort | null;
  private ackTimer: unknown = null;
  private connectTimer: unknown;
  /** The peer's RESUME arrived (it MUST be its first frame). */
  peerResumed = false;
  /** DATA chunk size for this session, from the SCTP transport's maxMessageSize (see frame.ts MAX_FRAME). */
  chunkSize = CHUNK_PAYLOAD;
  /** Names this session in an ICE-restart request (ice-restart.ts restartIdOf). */
  readonly restartId: Uint8Array;
  /** Whether the peer connection can restart ICE; probed once, when first needed. */
  private restartSupport: boolean | null = null;
  /** ICE went disconnected/failed while open and has not recovered yet. */
  private iceTrouble = false;
  /** The last ICE restart's signaling state (kept after it is done, to judge late messages). */
  private restart: RestartState | null = null;
  /** A restart is running (its port set, not done yet). */
  private restartActive = false;
  private restartPort: RestartPort | null = null;
  private restartDeadline: unknown = null;

  constructor(
    private readonly host: SessionHost,
    private readonly key: SharedKey,
    private readonly initiator: boolean,
    rtc: WebRtcConfig,
    port: TaskPort,
    ownResume: Inner,
  ) {
    this.port = port;
    this.restartId = restartIdOf(key);
    this.sendState = newSendState(host.random);
    this.recvState = newReceiveState(this.sendState.cookie);
    this.enqueue(encodeInner(ownResume)); // our first frame, sealed once the channel is open
    const config: RTCConfiguration = { iceServers: [...rtc.iceServers] };
    if (rtc.iceTransportPolicy !== undefined) config.iceTransportPolicy = rtc.iceTransportPolicy;
    this.peer = new Peer({
      initiator,
      trickle: true,
      config,
      channelName: 'zeroroom-link',
      iceCompleteTimeout: 300,
      ...(rtc.wrtc !== undefined ? { wrtc: rtc.wrtc } : {}),
    } as ConstructorParameters<typeof Peer>[0]);
    this.peer.on('signal', (d: SignalData) => this.onLocalSignal(d));
    this.peer.on('connect', () => void this.onConnect());
    this.peer.on('data', (d: Uint8Array) => this.onData(d));
    this.peer.on('close', () => this.end(null));
    this.peer.on('error', (e: Error) => this.end(e));
    // The other side gave up before the channel opened (its peer connection failed or was
    // destroyed): end now rather than at the connect timeout, so the link retries at once.
    const pc = (this.peer as unknown as { _pc: RTCPeerConnection | null })._pc;
    pc?.addEventListener('connectionstatechange', () => {
      const st = pc.connectionState;
      if (!this.connected && (st === 'failed' || st === 'closed')) this.end(new LinkConnectError(st));
    });
    if (pc !== null && pc !== undefined) this.holdIceFailure(pc);
    this.connectTimer = host.timers.setTimeout(() => {
      if (!this.connected) this.end(new LinkTimeoutError());
    }, CONNECT_TIMEOUT_MS);
  }

  get bufferedAmount(): number {
    return this.queued + (this.ended ? 0 : this.channelBuffered());
  }

  /** simple-peer's `bufferSize` getter: its data channel's bufferedAmount (missing from @types/simple-peer). */
  private channelBuffered(): number {
    return (this.peer as unknown as { bufferSize: number }).bufferSize;
  }

  get isOpen(): boolean {
    return this.connected && !this.ended;
  }

  private get pc(): RTCPeerConnection | null {
    return (this.peer as unknown as { _pc: RTCPeerConnection | null })._pc;
  }

  // --- ICE restart (docs/PROTOCOL.md 4.6) ------------------------------------------------------

  /**
   * simple-peer destroys the peer as soon as ICE or the connection reports 'failed'. An ICE restart
   * can repair a failed connection, so during an ICE-trouble episode of an open session that can
   * restart, a 'failed' is kept from simple-peer; the restart deadline ends the session if needed.
   */
  private holdIceFailure(pc: RTCPeerConnection): void {
    const handlers = pc as unknown as PcHandlers;
    const wrap = (name: keyof PcHandlers, before?: () => void): void => {
      const original = handlers[name];
      handlers[name] = (ev: Event) => {
        before?.();
        if (!this.failureHeld(pc)) original?.call(pc, ev);
      };
    };
    wrap('oniceconnectionstatechange', () => this.onIceConnectionState(pc));
    wrap('onicegatheringstatechange');
    // The connection state may report 'failed' first: look at ICE before simple-peer does.
    wrap('onconnectionstatechange', () => this.onIceConnectionState(pc));
  }

  /** Hold a 'failed' back only in an ICE-trouble episode of a restartable open session. */
  private failureHeld(pc: RTCPeerConnection): boolean {
    const failed = pc.iceConnectionState === 'failed' || pc.connectionState === 'failed';
    return failed && this.isOpen && this.iceTrouble && this.restartSupport === true;
  }

  private onIceConnectionState(pc: RTCPeerConnection): void {
    if (!this.isOpen) return;
    const st = pc.iceConnectionState;
    if (st === 'disconnected' || st === 'failed') {
      if (this.iceTrouble || !this.supportsRestart()) return; // unsupported (libdatachannel): as before, 'failed' ends it
      this.iceTrouble = true;
      this.armRestartDeadline(false);
      this.host.onIceTrouble(this);
    } else if (st === 'connected' || st === 'completed') {
      this.maybeRecovered();
    }
  }

  /**
   * RTCPeerConnection.restartIce() where it works. libdatachannel (node-datachannel's polyfill)
   * throws "Not implemented": such a session is never restarted (a new peer connection instead).
   * The call itself only marks the local ICE credentials for replacement at the next negotiation,
   * which is the restart's own next step.
   */
  private supportsRestart(): boolean {
    if (this.restartSupport === null) {
      const pc = this.pc;
      try {
        if (pc === null || typeof pc.restartIce !== 'function') this.restartSupport = false;
        else {
          pc.restartIce();
          this.restartSupport = true;
        }
      } catch {
        // The probe's answer is the throw itself (DOMException "Not implemented"): unsupported.
        this.restartSupport = false;
      }
    }
    return this.restartSupport;
  }

  /** Owner: can this session be restarted for a request naming `id`? */
  acceptsIceRestart(id: Uint8Array): boolean {
    return this.isOpen && !this.restartActive && equalBytes(id, this.restartId) && this.supportsRestart();
  }

  /**
   * Restart ICE on this open session, signaling through `port`. The owner (simple-peer initiator)
   * makes the offer with `iceRestart: true`; the member answers it. Throws IceRestartError when the
   * session is not open, is already restarting, or its peer connection cannot restart ICE.
   */
  beginIceRestart(port: RestartPort): void {
    if (!this.isOpen) throw new IceRestartError('link.ice-restart', 'ICE restart of a session that is not open');
    if (this.restartActive) throw new IceRestartError('link.ice-restart', 'an ICE restart of this session is already running');
    if (!this.supportsRestart()) throw new IceRestartError('link.ice-restart', 'this peer connection cannot restart ICE');
    this.restart = newRestart(this.initiator ? 'offerer' : 'answerer');
    this.restartActive = true;
    this.restartPort = port;
    this.armRestartDeadline(this.initiator);
    if (this.initiator) {
      // simple-peer 9: offerOptions is what _createOffer passes to createOffer; negotiate() makes a new offer.
      (this.peer as unknown as { offerOptions: RTCOfferOptions }).offerOptions = { iceRestart: true };
      (this.peer as unknown as { negotiate(): void }).negotiate();
    }
  }

  /**
   * A message of this session's restart signaling. Anything out of order (no restart was begun, the
   * session is not open, the machine refuses it) throws IceRestartError; an open session ends first.
   */
  onRestartMessage(msg: pm.PostAuthMessage): void {
    if (msg.type === 'close') return; // the SaltyRTC machine handles it (peer-lost)
    const refuse = (why: string): never => {
      const e = new IceRestartError('link.ice-restart', why);
      this.end(e);
      throw e;
    };
    if (!this.isOpen) return refuse(`restart ${msg.type} for a session that is not open`);
    if (this.restart === null) return refuse(`restart ${msg.type} before any restart began`);
    if (msg.type === 'application') return refuse("'application' in an ICE restart");
    this.stepRestart({ type: 'remote', message: msg });
  }

  /**
   * Member: the restart's SaltyRTC session is over (`chosen`: the owner had chosen the ICE-restart
   * task in it). Before the restart is done, or before the owner answered while ICE is still down,
   * that is the restart's failure: the session ends and the usual reconnect follows.
   */
  restartSignalingClosed(error: Error, chosen: boolean): void {
    this.restartPort = null;
    if (this.restartActive || (!chosen && this.iceTrouble))
      this.end(new IceRestartError('link.ice-restart', `restart signaling closed: ${error.message}`));
  }

  /** Owner: the restart's SaltyRTC session is gone (the member left it); the deadline still applies. */
  detachRestartPort(): void {
    this.restartPort = null;
  }

  /** A refused event ends the session; a remote one also throws (its driver leaves that signaling). */
  private stepRestart(ev: RestartEvent): void {
    const state = this.restart;
    if (state === null || this.ended) return;
    let step;
    try {
      step = restartStep(state, ev);
    } catch (e) {
      if (!(e instanceof IceRestartError)) throw e;
      this.end(e);
      if (ev.type === 'remote') throw e;
      return; // local: inside simple-peer's 'signal' event, where a throw would only reach simple-peer
    }
    this.restart = step.state;
    for (const eff of step.effects) {
      switch (eff.type) {
        case 'send-description':
          this.restartPort?.send(
            eff.sdpType === 'offer' ? pm.encodeOffer({ type: 'offer', sdp: eff.sdp }) : pm.encodeAnswer({ type: 'answer', sdp: eff.sdp }),
          );
          break;
        case 'send-candidate':
          this.restartPort?.send(pm.encodeCandidates([eff.candidate]));
          break;
        case 'apply-description':
          this.peer.signal({ type: eff.sdpType, sdp: eff.sdp });
          break;
        case 'apply-candidate': {
          const c = eff.candidate;
          this.peer.signal({
            type: 'candidate',
            candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? '0', sdpMLineIndex: c.sdpMLineIndex ?? 0 },
          } as SignalData);
          break;
        }
      }
    }
    if (this.restartActive && descriptionsDone(step.state)) this.maybeRecovered();
  }

  private maybeRecovered(): void {
    if (!this.isOpen || (!this.iceTrouble && !this.restartActive)) return;
    const pc = this.pc;
    if (pc === null || (pc.iceConnectionState !== 'connected' && pc.iceConnectionState !== 'completed')) return;
    // A running restart is done only once both descriptions are through (the new ICE generation).
    if (this.restartActive && (this.restart === null || !descriptionsDone(this.restart))) return;
    const restarted = this.restartActive;
    const port = this.restartPort;
    this.iceTrouble = false;
    this.restartActive = false;
    this.restartPort = null;
    this.clearRestartDeadline();
    if (restarted && this.initiator) (this.peer as unknown as { offerOptions: RTCOfferOptions }).offerOptions = {};
    port?.done();
    void this.isRelayed().then((relayed) => {
      if (!this.ended) this.host.onIceRecovered(this, relayed, restarted);
    });
  }

  /** `reset`: start the deadline again (owner, on a restart request); else only if none runs. */
  private armRestartDeadline(reset: boolean): void {
    if (this.restartDeadline !== null && !reset) return;
    this.clearRestartDeadline();
    const ms = this.initiator ? OWNER_RESTART_DEADLINE_MS : MEMBER_RESTART_DEADLINE_MS;
    this.restartDeadline = this.host.timers.setTimeout(() => {
      this.restartDeadline = null;
      this.end(new IceRestartError('link.ice-restart-timeout', `ICE not connected again ${ms} ms after it went down`));
    }, ms);
  }

  private clearRestartDeadline(): void {
    if (this.restartDeadline !== null) this.host.timers.clearTimeout(this.restartDeadline);
    this.restartDeadline = null;
  }

  // --- WebRTC task (Task-WebRTC.md) ------------------------------------------------------------

  private onLocalSignal(d: SignalData): void {
    if (this.restartActive) {
      if (d.type === 'offer' || d.type === 'answer') this.stepRestart({ type: 'local-description', sdpType: d.type, sdp: d.sdp ?? '' });
      else if (d.type === 'candidate' && d.candidate !== undefined) {
        const c = d.candidate;
        this.stepRestart({
          type: 'local-candidate',
          candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null },
        });
      }
      return;
    }
    const port = this.port;
    if (port === null || this.handoverSent) return; // after handover no more signaling is needed
    if (d.type === 'offer' || d.type === 'answer') {
      // One offer/answer per session: we never renegotiate (no media, one channel). simple-peer
      // sometimes starts a redundant second negotiation (a 'stable' signaling state racing its
      // constructor's); forwarding it made the other side answer twice and the offerer fail.
      if (this.descriptionSent) return;
      this.descriptionSent = true;
      const desc = { type: d.type, sdp: d.sdp ?? '' } as const;
      port.send(d.type === 'offer' ? pm.encodeOffer(desc) : pm.encodeAnswer(desc));
    } else if (d.type === 'candidate' && d.candidate !== undefined) {
      const c = d.candidate;
      port.send(pm.encodeCandidates([{ candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null }]));
    }
    // 'renegotiate' / 'transceiverRequest' never happen: we add no media and never renegotiate.
  }

  /** A task message from the other client (relayed by the server). */
  onTaskMessage(msg: pm.TaskMessage): void {
    if (this.ended) return;
    switch (msg.type) {
      case 'offer':
      case 'answer':
        if (this.descriptionReceived) return; // see onLocalSignal: one description each way
        this.descriptionReceived = true;
        this.peer.signal(msg.type === 'offer' ? { type: 'offer', sdp: msg.offer.sdp } : { type: 'answer', sdp: msg.answer.sdp });
        return;
      case 'candidates':
        for (const c of msg.candidates) {
          if (c === null) continue; // end-of-candidates: simple-peer has no use for it
          this.peer.signal({
            type: 'candidate',
            candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? '0', sdpMLineIndex: c.sdpMLineIndex ?? 0 },
          } as SignalData);
        }
        return;
      case 'handover':
        this.handoverReceived = true;
        this.maybeHandoverDone();
        return;
    }
  }

  /** The signaling connection for this peer is gone (expected after handover). */
  detachPort(): void {
    this.port = null;
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
    const sctpMax = (this.peer as unknown as { _pc: RTCPeerConnection | null })._pc?.sctp?.maxMessageSize;
    const frameSize = typeof sctpMax === 'number' && sctpMax >= PORTABLE_FRAME ? Math.min(MAX_FRAME, sctpMax) : PORTABLE_FRAME;
    this.chunkSize = chunkPayloadFor(frameSize);
    const channel = (this.peer as unknown as { _channel: DataChannelLike | null })._channel;
    if (channel !== null) {
      channel.bufferedAmountLowThreshold = CHANNEL_LOW_WATERMARK;
      channel.addEventListener('bufferedamountlow', () => this.pump());
    }
    if (this.port !== null) {
      this.port.send(pm.encodeHandover());
      this.handoverSent = true;
      this.maybeHandoverDone();
    }
    this.pump();
    const relayed = await this.isRelayed();
    if (!this.ended) this.host.onOpen(this, relayed);
  }

  /** 'relayed' when the selected ICE candidate pair uses a TURN relay (getStats). */
  private async isRelayed(): Promise<boolean> {
    const pc = (this.peer as unknown as { _pc: RTCPeerConnection | null })._pc;
    if (pc === null) return false;
    try {
      const report = await pc.getStats();
      const stats = [...report.values()] as {
        type: string;
        id: string;
        selectedCandidatePairId?: string;
        localCandidateId?: string;
        nominated?: boolean;
        state?: string;
        candidateType?: string;
      }[];
      const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId !== undefined);
      const pair =
        stats.find((s) => s.id === transport?.selectedCandidatePairId) ??
        stats.find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded');
      const local = stats.find((s) => s.id === pair?.localCandidateId);
      return local?.candidateType === 'relay';
    } catch {
      // Stats are informational: report 'direct' rather than fail the link over them.
      return false;
    }
  }

  // --- frames ---------------------------------------------------------------------------------

  enqueue(inner: Uint8Array, front = false): void {
    if (front) this.queue.unshift(inner);
    else this.queue.push(inner);
    this.queued += inner.length;
  }

  enqueueAll(frames: readonly Inner[]): void {
    for (const f of frames) this.enqueue(encodeInner(f));
    this.pump();
  }

  /** Queue an ack ahead of queued data (it is small and frees the peer's memory), never before our RESUME. */
  sendAck(f: Inner): void {
    this.clearAckTimer();
    this.enqueue(encodeInner(f), this.resumeSealed);
    this.pump();
  }

  private resumeSealed = false;

  scheduleAck(build: () => Inner | null): void {
    if (this.ackTimer !== null) return;
    this.ackTimer = this.host.timers.setTimeout(() => {
      this.ackTimer = null;
      const f = build();
      if (f !== null && !this.ended) this.sendAck(f);
    }, ACK_DELAY_MS);
  }

  private clearAckTimer(): void {
    if (this.ackTimer !== null) this.host.timers.clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  pump(): void {
    if (!this.connected || this.ended) return;
    try {
      while (this.queue.length > 0 && this.channelBuffered() < CHANNEL_HIGH_WATERMARK) {
        const inner = this.queue.shift() as Uint8Array;
        this.queued -= inner.length;
        const { state, frame } = sealFrame(this.sendState, this.key, inner);
        this.sendState = state;
        this.resumeSealed = true;
        this.peer.send(frame);
      }
    } catch (e) {
      this.end(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.host.onBufferLow(this);
  }

  private onData(d: Uint8Array): void {
    if (this.ended) return;
    try {
      const { state, inner } = openFrame(this.recvState, this.key, d);
      this.recvState = state;
      const f = decodeInner(inner);
      if (!this.peerResumed && f.kind !== 'resume') throw new LinkProtocolError(`${f.kind} frame before RESUME`);
      if (this.peerResumed && f.kind === 'resume') throw new LinkProtocolError('second RESUME in a session');
      if (f.kind === 'resume') this.peerResumed = true;
      this.host.onInner(this, f);
    } catch (e) {
      this.end(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Tear the peer connection down; `error` is why (null: closed normally). */
  end(error: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    this.clearAckTimer();
    this.host.timers.clearTimeout(this.connectTimer);
    this.clearRestartDeadline();
    this.restartActive = false;
    this.restartPort = null;
    this.queue.length = 0;
    this.queued = 0;
    this.peer.destroy();
    this.host.onEnded(this, error);
  }

  /** Close gracefully: send what is queued (ending with `last`), wait for the channel to drain, end. */
  finish(last: Inner, maxWaitMs: number): void {
    if (this.ended) return;
    if (!this.connected) return this.end(null);
    this.enqueue(encodeInner(last));
    this.pump();
    const channel = (this.peer as unknown as { _channel: DataChannelLike | null })._channel;
    const deadline = this.host.timers.setTimeout(() => this.end(null), maxWaitMs);
    const check = (): void => {
      if (this.queue.length === 0 && this.channelBuffered() === 0) {
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
