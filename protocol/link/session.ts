/**
 * One peer-connection session of a peer link: the simple-peer instance, the WebRTC task's
 * signaling (offer/answer/candidates/handover through SaltyRTC), and the encrypted frame stream
 * on its data channel. A link has at most one live session; a reconnect makes a new one (new
 * SaltyRTC handshake -> new session key, cookies and CSNs) while message ids carry over.
 */
import Peer from 'simple-peer';
import type { Instance as PeerInstance, SignalData } from 'simple-peer';
import type { RandomBytes, SharedKey } from '../../crypto/index.ts';
import * as pm from '../saltyrtc/peer-messages.ts';
import { MAX_FRAME, newReceiveState, newSendState, openFrame, PORTABLE_FRAME, sealFrame, type ReceiveState, type SendState } from './frame.ts';
import { chunkPayloadFor, CHUNK_PAYLOAD, decodeInner, encodeInner, LinkProtocolError, type Inner } from './reliable.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import { ZeroRoomError } from '../errors.ts';

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

/** What a session reports to its link. */
export interface SessionHost {
  readonly random: RandomBytes;
  readonly timers: Timers;
  onOpen(s: LinkSession, relayed: boolean): void;
  onInner(s: LinkSession, f: Inner): void;
  onEnded(s: LinkSession, error: Error | null): void;
  onBufferLow(s: LinkSession): void;
}

type DataChannelLike = EventTarget & { bufferedAmount: number; bufferedAmountLowThreshold: number };

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

  constructor(
    private readonly host: SessionHost,
    private readonly key: SharedKey,
    initiator: boolean,
    rtc: WebRtcConfig,
    port: TaskPort,
    ownResume: Inner,
  ) {
    this.port = port;
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

  // --- WebRTC task (Task-WebRTC.md) ------------------------------------------------------------

  private onLocalSignal(d: SignalData): void {
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
          this.peer.signal({ type: 'candidate', candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? '0', sdpMLineIndex: c.sdpMLineIndex ?? 0 } } as SignalData);
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
      const stats = [...report.values()] as { type: string; id: string; selectedCandidatePairId?: string; localCandidateId?: string; nominated?: boolean; state?: string; candidateType?: string }[];
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
