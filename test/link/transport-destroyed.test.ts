// A signal (late candidate, answer) for a peer connection that simple-peer already destroyed is
// moot: it must not throw out of the signaling client's message handler. Under load an owner got
// a member's candidate after its ICE 'failed' and the uncaught ERR_DESTROYED ended the process.
import { afterAll, describe, expect, it } from 'vitest';
import { SimplePeerTransport } from '../../protocol/link/simple-peer-adapter.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { wrtc } from './harness.ts';

afterAll(async () => {
  await releaseNodeWrtc();
});

describe('SimplePeerTransport after its peer is destroyed', () => {
  it('ignores late candidates, descriptions, frames and restart offers instead of throwing', async () => {
    const closed = { value: false };
    let onClose: () => void = () => undefined;
    const closedEvent = new Promise<void>((r) => (onClose = r));
    const t = new SimplePeerTransport(
      { initiator: false, iceServers: [], wrtc, channelName: 'zeroroom/1' },
      {
        signal: () => undefined,
        connect: () => undefined,
        data: () => undefined,
        close: () => {
          closed.value = true;
          onClose();
        },
        error: () => undefined,
      },
    );
    t.destroy();
    // Before 'close' reaches anyone and after it: both are moments a peer message can arrive.
    expect(() =>
      t.signal({ type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } }),
    ).not.toThrow();
    await closedEvent;
    expect(closed.value).toBe(true);
    expect(() => t.signal({ type: 'answer', sdp: 'v=0\r\n' })).not.toThrow();
    expect(() => t.send(new Uint8Array(8))).not.toThrow();
    expect(() => t.offerIceRestart()).not.toThrow();
    expect(() =>
      t.signal({ type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } }),
    ).not.toThrow();
  });
});
