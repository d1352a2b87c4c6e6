// A side of a peer link that restarted (new process: fresh Outbox and Inbox) while its peer kept the
// link continues the peer's message ids (adoptPeerNumbering, used by PeerLink), in both roles.
import { describe, expect, it } from 'vitest';
import { Inbox, LinkProtocolError, Outbox, type Inner } from '../../protocol/link/reliable.ts';

const data = (f: Inner): Extract<Inner, { kind: 'data' }> => {
  if (f.kind !== 'data') throw new Error('not data');
  return f;
};
const fresh = { adoptPeerNumbering: true };

/** A surviving side that exchanged `n` messages each way with an earlier incarnation of its peer. */
function survivor(n: number): { out: Outbox; inbox: Inbox } {
  const out = new Outbox(fresh);
  const inbox = new Inbox(fresh);
  const oldPeerOut = new Outbox(fresh);
  out.resume(1);
  for (let i = 0; i < n; i++) {
    out.add(Uint8Array.of(i));
    inbox.receive(data(oldPeerOut.add(Uint8Array.of(i))[0]!));
  }
  out.ack(n - 1); // the last one was never acknowledged
  return { out, inbox };
}

describe('restarted side of a link', () => {
  it('a fresh outbox continues the ids the surviving peer expects, queued messages included', () => {
    const peer = survivor(5);
    const restarted = new Outbox(fresh);
    restarted.add(Uint8Array.of(42)); // queued before the RESUME arrived
    const frames = restarted.resume(peer.inbox.resumePoint());
    expect(frames.map((f) => data(f).msgId)).toEqual([6]);
    expect(peer.inbox.receive(data(frames[0]!))).toEqual(Uint8Array.of(42));
    const next = restarted.add(Uint8Array.of(43));
    expect(peer.inbox.receive(data(next[0]!))).toEqual(Uint8Array.of(43));
  });

  it('a fresh inbox starts at the surviving peer re-sending its unacked messages', () => {
    const peer = survivor(5);
    const restarted = new Inbox(fresh);
    const again = peer.out.resume(restarted.resumePoint());
    expect(again.map((f) => data(f).msgId)).toEqual([5]);
    expect(restarted.receive(data(again[0]!))).toEqual(Uint8Array.of(4));
    expect(restarted.receive(data(peer.out.add(Uint8Array.of(9))[0]!))).toEqual(Uint8Array.of(9));
  });

  it('adopts only once: later gaps, resumes beyond and mid-message starts are still refused', () => {
    const inbox = new Inbox(fresh);
    const out = new Outbox(fresh);
    out.resume(1);
    for (let i = 0; i < 3; i++) out.add(Uint8Array.of(i));
    const skipped = new Outbox(fresh);
    skipped.resume(1);
    skipped.add(Uint8Array.of(0));
    inbox.receive(data(skipped.add(Uint8Array.of(1))[0]!)); // adopts 2
    expect(() => inbox.receive(data(out.add(Uint8Array.of(3))[0]!))).toThrow(LinkProtocolError); // 4 skips 3
    expect(() => out.resume(99)).toThrow(LinkProtocolError);
    const big = new Outbox(fresh);
    big.resume(1);
    const chunks = big.add(new Uint8Array(100_000));
    expect(() => new Inbox(fresh).receive(data(chunks[1]!))).toThrow(LinkProtocolError);
  });

  it('without the option (the default) nothing is adopted', () => {
    const b = new Outbox();
    b.add(Uint8Array.of(1));
    expect(() => new Inbox().receive(data(b.add(Uint8Array.of(2))[0]!))).toThrow(LinkProtocolError);
    expect(() => new Outbox().resume(5)).toThrow(LinkProtocolError);
  });
});
