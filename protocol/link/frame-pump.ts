/**
 * The encrypted frame stream of one session (docs/PROTOCOL.md 4.4, 4.5, 4.6 backpressure): inner
 * frames wait in a queue and are sealed only while the data channel buffers less than the high
 * watermark; incoming frames are opened in strict CSN order and decoded; acks are delayed a little
 * so that several deliveries share one. Any refused frame fails the session (`fail`).
 */
import type { RandomBytes, SharedKey } from '../../crypto/index.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import { newReceiveState, newSendState, openFrame, sealFrame, type ReceiveState, type SendState } from './frame.ts';
import { decodeInner, encodeInner, LinkProtocolError, type Inner } from './reliable.ts';

/** Stop sealing frames while the data channel buffers more than this; resume at the low mark. */
export const CHANNEL_HIGH_WATERMARK = 1024 * 1024;
export const CHANNEL_LOW_WATERMARK = 256 * 1024;
/** Send a pending ack this long after the last delivered message (unless one is due earlier). */
export const ACK_DELAY_MS = 50;

export interface PumpHost {
  readonly timers: Timers;
  /** Bytes buffered on the data channel now. */
  channelBuffered(): number;
  sendFrame(frame: Uint8Array): void;
  onInner(f: Inner): void;
  /** The queue went below the watermark (the link may feed more). */
  onBufferLow(): void;
  /** A frame was refused or the channel threw: the session ends with this error. */
  fail(e: Error): void;
}

export class FramePump {
  private sendState: SendState;
  private recvState: ReceiveState;
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private ackTimer: unknown = null;
  /** Our RESUME has been sealed: acks may now jump ahead of queued data. */
  private resumeSealed = false;
  private open = false;
  private stopped = false;
  /** The peer's RESUME arrived (it MUST be its first frame). */
  peerResumed = false;

  constructor(
    private readonly host: PumpHost,
    private readonly key: SharedKey,
    random: RandomBytes,
    /** Our RESUME, built when the channel opens (a probe session opens while another one still delivers). */
    private readonly ownResume: () => Inner,
  ) {
    this.sendState = newSendState(random);
    this.recvState = newReceiveState(this.sendState.cookie);
  }

  /** Bytes accepted and not yet sealed onto the channel. */
  get queued(): number {
    return this.queuedBytes;
  }

  /** Nothing waits to be sealed. */
  get empty(): boolean {
    return this.queue.length === 0;
  }

  /** The data channel is open: start sealing. */
  start(): void {
    if (this.open) return;
    this.open = true;
    this.enqueue(encodeInner(this.ownResume()), true); // our first frame
    this.pump();
  }

  enqueue(inner: Uint8Array, front = false): void {
    if (front) this.queue.unshift(inner);
    else this.queue.push(inner);
    this.queuedBytes += inner.length;
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

  scheduleAck(build: () => Inner | null): void {
    if (this.ackTimer !== null) return;
    this.ackTimer = this.host.timers.setTimeout(() => {
      this.ackTimer = null;
      const f = build();
      if (f !== null && !this.stopped) this.sendAck(f);
    }, ACK_DELAY_MS);
  }

  pump(): void {
    if (!this.open || this.stopped) return;
    try {
      while (this.queue.length > 0 && this.host.channelBuffered() < CHANNEL_HIGH_WATERMARK) {
        const inner = this.queue.shift() as Uint8Array;
        this.queuedBytes -= inner.length;
        const { state, frame } = sealFrame(this.sendState, this.key, inner);
        this.sendState = state;
        this.resumeSealed = true;
        this.host.sendFrame(frame);
      }
    } catch (e) {
      this.host.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.host.onBufferLow();
  }

  /** One data-channel message: open, decode and hand over; a refusal fails the session. */
  receive(d: Uint8Array): void {
    if (this.stopped) return;
    try {
      const { state, inner } = openFrame(this.recvState, this.key, d);
      this.recvState = state;
      const f = decodeInner(inner);
      if (!this.peerResumed && f.kind !== 'resume') throw new LinkProtocolError(`${f.kind} frame before RESUME`);
      if (this.peerResumed && f.kind === 'resume') throw new LinkProtocolError('second RESUME in a session');
      if (f.kind === 'resume') this.peerResumed = true;
      this.host.onInner(f);
    } catch (e) {
      this.host.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** The session ended: drop what is queued and the pending ack. */
  stop(): void {
    this.stopped = true;
    this.clearAckTimer();
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private clearAckTimer(): void {
    if (this.ackTimer !== null) this.host.timers.clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }
}
