// Data-channel frame layer (protocol/link/frame.ts), fed exact bytes: docs/PROTOCOL.md section 4.
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { asSharedKey, type RandomBytes } from '../../crypto/index.ts';
import { FrameError, newReceiveState, newSendState, openFrame, sealFrame, MAX_FRAME, type SendState } from '../../protocol/link/frame.ts';

const key = asSharedKey(new Uint8Array(32).fill(7));
const otherKey = asSharedKey(new Uint8Array(32).fill(8));

/** Deterministic "random": bytes from a counter, so cookies and CSNs are known. */
function counterRandom(start: number): RandomBytes {
  let n = start;
  return (len) => Uint8Array.from({ length: len }, () => n++ & 0xff);
}

function sender(): SendState {
  return newSendState(counterRandom(0x10)); // cookie 10..1f, csn bytes 20 21 22 23
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof FrameError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('frame layout', () => {
  it('is cookie || 0x0000 || overflow || sequence || box.after(inner)', () => {
    const s = sender();
    expect(s.csn).toBe(0x20212223);
    const { frame, state } = sealFrame(s, key, Uint8Array.of(1, 2, 3));
    const nonce = Uint8Array.from([...Array.from({ length: 16 }, (_, i) => 0x10 + i), 0, 0, 0, 0, 0x20, 0x21, 0x22, 0x23]);
    expect([...frame.subarray(0, 24)]).toEqual([...nonce]);
    expect([...frame.subarray(24)]).toEqual([...nacl.box.after(Uint8Array.of(1, 2, 3), nonce, key)]);
    expect(frame.length).toBe(24 + 16 + 3);
    expect(state.csn).toBe(0x20212224);
    expect(s.csn).toBe(0x20212223); // input not mutated
  });

  it('carries the overflow number in bytes 18-19', () => {
    const { frame } = sealFrame({ cookie: new Uint8Array(16).fill(1), csn: 0x1_0000_0005 }, key, Uint8Array.of(9));
    expect([...frame.subarray(16, 24)]).toEqual([0, 0, 0, 1, 0, 0, 0, 5]);
  });
});

describe('openFrame', () => {
  function pair(): { frames: Uint8Array[]; recv: ReturnType<typeof newReceiveState> } {
    let s = sender();
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      const r = sealFrame(s, key, Uint8Array.of(i));
      s = r.state;
      frames.push(r.frame);
    }
    return { frames, recv: newReceiveState(new Uint8Array(16).fill(0xee)) };
  }

  it('opens frames in order', () => {
    const { frames, recv } = pair();
    let st = recv;
    for (let i = 0; i < 3; i++) {
      const r = openFrame(st, key, frames[i]!);
      expect([...r.inner]).toEqual([i]);
      st = r.state;
    }
    expect(st.expectedCsn).toBe(0x20212226);
  });

  it('refuses a replayed frame', () => {
    const { frames, recv } = pair();
    const a = openFrame(recv, key, frames[0]!);
    const b = openFrame(a.state, key, frames[1]!);
    expect(code(() => openFrame(b.state, key, frames[1]!))).toBe('link.replay');
    expect(code(() => openFrame(b.state, key, frames[0]!))).toBe('link.replay');
  });

  it('refuses a reordered frame (gap)', () => {
    const { frames, recv } = pair();
    const a = openFrame(recv, key, frames[0]!);
    expect(code(() => openFrame(a.state, key, frames[2]!))).toBe('link.reorder');
  });

  it('refuses a tampered ciphertext, a tampered header and the wrong key', () => {
    const { frames, recv } = pair();
    const body = frames[0]!.slice();
    body[30] = body[30]! ^ 1;
    expect(code(() => openFrame(recv, key, body))).toBe('link.auth');
    const cookie = frames[0]!.slice();
    cookie[0] = cookie[0]! ^ 1; // first frame: cookie is learnt, but the MAC covers it through the nonce
    expect(code(() => openFrame(recv, key, cookie))).toBe('link.auth');
    expect(code(() => openFrame(recv, otherKey, frames[0]!))).toBe('link.auth');
    const a = openFrame(recv, key, frames[0]!);
    const seq = frames[1]!.slice();
    seq[23] = seq[23]! ^ 1; // csn no longer the expected one
    expect(code(() => openFrame(a.state, key, seq))).toMatch(/link\.(replay|reorder)/);
  });

  it('refuses a changed cookie and our own cookie', () => {
    const { frames, recv } = pair();
    const a = openFrame(recv, key, frames[0]!);
    const other = sealFrame({ cookie: new Uint8Array(16).fill(3), csn: 0x20212224 }, key, Uint8Array.of(1)).frame;
    expect(code(() => openFrame(a.state, key, other))).toBe('link.cookie');
    const mirrored = sealFrame({ cookie: new Uint8Array(16).fill(0xee), csn: 5 }, key, Uint8Array.of(1)).frame;
    expect(code(() => openFrame(recv, key, mirrored))).toBe('link.cookie');
  });

  it('refuses short, oversized, wrong-channel and overflowed first frames', () => {
    const { recv } = pair();
    expect(code(() => openFrame(recv, key, new Uint8Array(40)))).toBe('link.frame');
    expect(code(() => openFrame(recv, key, new Uint8Array(MAX_FRAME + 1)))).toBe('link.frame');
    const ch = sealFrame(sender(), key, Uint8Array.of(1)).frame;
    ch[17] = 1;
    expect(code(() => openFrame(recv, key, ch))).toBe('link.frame');
    const of = sealFrame({ cookie: new Uint8Array(16).fill(1), csn: 2 ** 32 }, key, Uint8Array.of(1)).frame;
    expect(code(() => openFrame(recv, key, of))).toBe('link.csn');
  });

  it('never returns plaintext for any single-byte corruption (all positions)', () => {
    const { frames, recv } = pair();
    const f = frames[0]!;
    for (let i = 0; i < f.length; i++) {
      const bad = f.slice();
      bad[i] = bad[i]! ^ 0x80;
      expect(() => openFrame(recv, key, bad)).toThrow(FrameError);
    }
  });
});
