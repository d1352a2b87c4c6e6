/**
 * SessionFilesChannel (docs/PROTOCOL.md 5.17.3) against a scripted data channel: sizes, state,
 * received bytes, and a text message refused with a typed error.
 */
import { describe, expect, it } from 'vitest';
import {
  FILES_DEFAULT_MAX_FRAME,
  FILES_LOW_WATERMARK,
  FilesChannelError,
  FilesFrameTooLargeError,
  SessionFilesChannel,
  type FilesChannelHost,
} from '../../protocol/link/files-channel.ts';
import { LinkClosedError } from '../../protocol/link/link-errors.ts';
import type { DataChannelState, MessageChannelLike } from '../../protocol/link/rtc.ts';

class ScriptedChannel implements MessageChannelLike {
  readonly label = 'zeroroom-files/1';
  readyState: DataChannelState = 'connecting';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  binaryType = 'blob';
  readonly sent: Uint8Array[] = [];
  private readonly listeners = new Map<string, ((ev: { readonly data?: unknown }) => void)[]>();
  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  close(): void {
    this.readyState = 'closed';
    this.fire('close');
  }
  addEventListener(type: string, listener: (ev: { readonly data?: unknown }) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  fire(type: string, data?: unknown): void {
    if (type === 'open') this.readyState = 'open';
    for (const l of this.listeners.get(type) ?? []) l({ data });
  }
}

function setUp(sctpMax?: number): { dc: ScriptedChannel; fc: SessionFilesChannel; log: unknown[] } {
  const log: unknown[] = [];
  const host: FilesChannelHost = {
    opened: () => log.push('opened'),
    frame: (b) => log.push(['frame', [...b]]),
    drained: () => log.push('drained'),
    closed: () => log.push('closed'),
    fail: (e) => log.push(e),
  };
  const dc = new ScriptedChannel();
  return { dc, fc: new SessionFilesChannel(dc, () => sctpMax, host), log };
}

const thrown = (f: () => void): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return null;
};

describe('SessionFilesChannel', () => {
  it('sets binary type and low-water mark; refuses to send before open (LinkClosedError)', () => {
    const { dc, fc, log } = setUp(262_144);
    expect(dc.binaryType).toBe('arraybuffer');
    expect(dc.bufferedAmountLowThreshold).toBe(FILES_LOW_WATERMARK);
    expect(thrown(() => fc.send(Uint8Array.of(1)))).toBeInstanceOf(LinkClosedError);
    dc.fire('open');
    fc.send(Uint8Array.of(1));
    expect(dc.sent).toHaveLength(1);
    expect(log).toEqual(['opened']);
  });

  it('refuses a frame above maxMessageSize with link.files-too-large and sends nothing; the exact maximum goes', () => {
    const { dc, fc } = setUp(1000);
    dc.fire('open');
    const e = thrown(() => fc.send(new Uint8Array(1001)));
    expect(e).toBeInstanceOf(FilesFrameTooLargeError);
    expect((e as FilesFrameTooLargeError).code).toBe('link.files-too-large');
    expect(dc.sent).toHaveLength(0);
    fc.send(new Uint8Array(1000));
    expect(dc.sent).toHaveLength(1);
  });

  it('an engine that does not say its maximum gets the largest sealed chunk (65,573 bytes); Infinity means no limit', () => {
    for (const unknown of [undefined, 0]) {
      const { dc, fc } = setUp(unknown);
      dc.fire('open');
      expect(fc.maxFrame).toBe(FILES_DEFAULT_MAX_FRAME);
      fc.send(new Uint8Array(65_573));
      expect(thrown(() => fc.send(new Uint8Array(65_574)))).toBeInstanceOf(FilesFrameTooLargeError);
    }
    const { dc, fc } = setUp(Infinity);
    dc.fire('open');
    fc.send(new Uint8Array(300_000));
    expect(dc.sent).toHaveLength(1);
  });

  it('hands binary messages over as bytes (ArrayBuffer or a view) and refuses a text message (link.files)', () => {
    const { dc, log } = setUp(262_144);
    dc.fire('open');
    dc.fire('message', Uint8Array.of(1, 2).buffer);
    const big = Uint8Array.of(9, 8, 7, 6);
    dc.fire('message', big.subarray(1, 3));
    dc.fire('message', 'text');
    expect(log.slice(0, 3)).toEqual(['opened', ['frame', [1, 2]], ['frame', [8, 7]]]);
    expect(log[3]).toBeInstanceOf(FilesChannelError);
    expect((log[3] as FilesChannelError).code).toBe('link.files');
  });

  it('reports drain and close; after close (or detach) it reports nothing and refuses to send', () => {
    const { dc, fc, log } = setUp(262_144);
    dc.fire('open');
    dc.fire('bufferedamountlow');
    dc.close();
    dc.fire('message', Uint8Array.of(1).buffer);
    dc.fire('bufferedamountlow');
    expect(log).toEqual(['opened', 'drained', 'closed']);
    expect(thrown(() => fc.send(Uint8Array.of(1)))).toBeInstanceOf(LinkClosedError);
    expect(fc.bufferedAmount).toBe(0);

    const other = setUp(262_144);
    other.dc.fire('open');
    other.fc.detach();
    other.dc.fire('message', Uint8Array.of(1).buffer);
    other.dc.close();
    expect(other.log).toEqual(['opened']);
    expect(thrown(() => other.fc.send(Uint8Array.of(1)))).toBeInstanceOf(LinkClosedError);
  });
});
