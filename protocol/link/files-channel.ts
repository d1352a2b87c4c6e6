/**
 * The files channel of a direct session (docs/PROTOCOL.md 5.17.3): a second data channel labelled
 * `zeroroom-files/1` (ordered, reliable) on the session's RTCPeerConnection. It carries the file
 * path's frames (sealed chunks, 5.17.2) as they are: nothing here touches the link's message store,
 * acks or frame keys (4.4, 4.5). The session (session.ts) decides when the channel counts as open
 * for the link; this module wraps one RTCDataChannel: sizes, buffering and the received bytes.
 */
import { ZeroRoomError } from '../errors.ts';
import { LinkClosedError } from './link-errors.ts';
import type { MessageChannelLike } from './rtc.ts';

export const FILES_CHANNEL_LABEL = 'zeroroom-files/1';
/** 'files-drain' fires when the channel's buffer falls to this (the file path stops sealing at 4 MiB). */
export const FILES_LOW_WATERMARK = 1024 * 1024;
/**
 * Largest frame assumed when the SCTP transport does not say (`sctp.maxMessageSize` absent): a
 * sealed 64 KiB chunk (5.17.2, 65,573 bytes), which every engine we run carries (they announce 256 KiB).
 */
export const FILES_DEFAULT_MAX_FRAME = 65_573;

/** Frames of the files path (5.17.3) on the open direct session; not part of the link's message store. */
export interface FilesChannel {
  /**
   * Send one frame. Throws LinkClosedError when the channel is not open, FilesFrameTooLargeError
   * (`link.files-too-large`) for a frame above `maxFrame`, and nothing is sent then.
   */
  send(frame: Uint8Array): void;
  readonly bufferedAmount: number;
}

export class FilesFrameTooLargeError extends ZeroRoomError {
  constructor(size: number, max: number) {
    super('link.files-too-large', `files frame of ${size} bytes, the channel carries at most ${max}`);
  }
}

/** A message on the files channel that is not binary (the peer breaks 5.17.3). */
export class FilesChannelError extends ZeroRoomError {
  constructor(message: string) {
    super('link.files', message);
  }
}

export interface FilesChannelHost {
  /** The data channel is open. */
  opened(): void;
  frame(bytes: Uint8Array): void;
  /** The buffer fell to FILES_LOW_WATERMARK. */
  drained(): void;
  /** The data channel closed (by either side, or with its peer connection). */
  closed(): void;
  /** The peer broke the channel's rules. */
  fail(e: Error): void;
}

/** One session's files channel. */
export class SessionFilesChannel implements FilesChannel {
  private gone = false;

  constructor(
    private readonly dc: MessageChannelLike,
    /** The SCTP transport's maxMessageSize now (undefined when the engine does not say). */
    private readonly sctpMax: () => number | undefined,
    host: FilesChannelHost,
  ) {
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = FILES_LOW_WATERMARK;
    dc.addEventListener('open', () => {
      if (!this.gone) host.opened();
    });
    dc.addEventListener('bufferedamountlow', () => {
      if (!this.gone) host.drained();
    });
    dc.addEventListener('message', (ev) => {
      if (this.gone) return;
      const bytes = binaryOf(ev.data);
      if (bytes === null) host.fail(new FilesChannelError('a text message on the files channel'));
      else host.frame(bytes);
    });
    dc.addEventListener('close', () => {
      if (this.gone) return;
      this.gone = true;
      host.closed();
    });
  }

  get isOpen(): boolean {
    return !this.gone && this.dc.readyState === 'open';
  }

  get bufferedAmount(): number {
    return this.gone ? 0 : this.dc.bufferedAmount;
  }

  /** The largest frame this channel carries (the SCTP transport's maxMessageSize). */
  get maxFrame(): number {
    const m = this.sctpMax();
    // Infinity: the engine sets no limit; 0 or absent: unknown.
    return typeof m === 'number' && m > 0 ? m : FILES_DEFAULT_MAX_FRAME;
  }

  send(frame: Uint8Array): void {
    if (!this.isOpen) throw new LinkClosedError();
    if (frame.length > this.maxFrame) throw new FilesFrameTooLargeError(frame.length, this.maxFrame);
    this.dc.send(frame);
  }

  /** The session is over: nothing more is reported (the session reports the close itself). */
  detach(): void {
    this.gone = true;
  }
}

function binaryOf(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}
