// Inner frames, chunking, acks and de-duplication (protocol/link/reliable.ts), exact bytes.
import { describe, expect, it } from 'vitest';
import {
  CHUNK_PAYLOAD,
  chunkMessage,
  decodeInner,
  encodeInner,
  Inbox,
  LinkProtocolError,
  LinkTooLargeError,
  MAX_CHUNK_PAYLOAD,
  MAX_CHUNKS,
  MAX_MESSAGE,
  Outbox,
  type Inner,
} from '../../protocol/link/reliable.ts';
import { MAX_FRAME, PORTABLE_FRAME } from '../../protocol/link/frame.ts';

const data = (f: Inner): Extract<Inner, { kind: 'data' }> => {
  if (f.kind !== 'data') throw new Error('not data');
  return f;
};

describe('inner frame bytes', () => {
  it('encodes each kind exactly', () => {
    expect([...encodeInner({ kind: 'data', msgId: 0x01020304, index: 1, count: 2, payload: Uint8Array.of(0xaa) })]).toEqual([
      1, 1, 2, 3, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa,
    ]);
    expect([...encodeInner({ kind: 'ack', msgId: 258 })]).toEqual([2, 0, 0, 1, 2]);
    expect([...encodeInner({ kind: 'resume', nextId: 1 })]).toEqual([3, 0, 0, 0, 1]);
    expect([...encodeInner({ kind: 'close', reason: 1000 })]).toEqual([4, 0x03, 0xe8]);
  });

  it('round-trips', () => {
    for (const f of [
      { kind: 'data', msgId: 9, index: 0, count: 1, payload: Uint8Array.of(1, 2) },
      { kind: 'ack', msgId: 7 },
      { kind: 'resume', nextId: 3 },
      { kind: 'close', reason: 1000 },
    ] as Inner[]) {
      expect(decodeInner(encodeInner(f))).toEqual(f);
    }
  });

  it('a full chunk makes a frame of exactly 16384 (portable) or 65536 (MAX_FRAME) bytes once sealed', () => {
    const f = encodeInner({ kind: 'data', msgId: 1, index: 0, count: 1, payload: new Uint8Array(CHUNK_PAYLOAD) });
    expect(f.length + 24 + 16).toBe(PORTABLE_FRAME);
    expect(CHUNK_PAYLOAD).toBe(16331);
    const g = encodeInner({ kind: 'data', msgId: 1, index: 0, count: 1, payload: new Uint8Array(MAX_CHUNK_PAYLOAD) });
    expect(g.length + 24 + 16).toBe(MAX_FRAME);
  });

  it('chunks with the session chunk size, within [16331, 65483]', () => {
    expect(chunkMessage(1, new Uint8Array(16 * 1024), MAX_CHUNK_PAYLOAD)).toHaveLength(1);
    expect(chunkMessage(1, new Uint8Array(16 * 1024))).toHaveLength(2);
    expect(() => chunkMessage(1, new Uint8Array(1), 100)).toThrow(RangeError);
    expect(() => chunkMessage(1, new Uint8Array(1), MAX_CHUNK_PAYLOAD + 1)).toThrow(RangeError);
  });

  it('refuses malformed frames', () => {
    const bad = [
      [],
      [9],
      [2, 0, 0, 1],
      [2, 0, 0, 0, 1, 0],
      [3, 0, 0, 1],
      [4, 0],
      [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], // no payload byte
      [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5], // index >= count
      [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5], // count 0
      [1, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 5], // count beyond MAX_MESSAGE
    ];
    for (const b of bad) expect(() => decodeInner(Uint8Array.from(b)), JSON.stringify(b)).toThrow(/.*/);
    for (const b of bad.slice(0, -1)) expect(() => decodeInner(Uint8Array.from(b)), JSON.stringify(b)).toThrow(LinkProtocolError);
    expect(() => decodeInner(Uint8Array.from(bad[bad.length - 1]!))).toThrow(LinkTooLargeError);
    const big = new Uint8Array(13 + MAX_CHUNK_PAYLOAD + 1);
    big.set([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
    expect(() => decodeInner(big)).toThrow(LinkProtocolError);
  });
});

describe('Outbox and Inbox', () => {
  it('chunks a message of exactly MAX_MESSAGE (1 MiB) and reassembles it, with either chunk size', () => {
    const msg = Uint8Array.from({ length: MAX_MESSAGE }, (_, i) => (i * 31) & 0xff);
    for (const chunk of [CHUNK_PAYLOAD, MAX_CHUNK_PAYLOAD]) {
      const frames = new Outbox().add(msg, chunk);
      expect(frames.length).toBe(Math.ceil(msg.length / chunk));
      expect(frames.length).toBeLessThanOrEqual(MAX_CHUNKS);
      const inbox = new Inbox();
      let out: Uint8Array | null = null;
      for (const f of frames) out = inbox.receive(data(decodeInner(encodeInner(f))));
      expect(out).not.toBeNull();
      expect(Buffer.from(out!).equals(Buffer.from(msg))).toBe(true);
    }
  });

  it('refuses to send a message above MAX_MESSAGE (link.too-large)', () => {
    const out = new Outbox();
    expect(() => out.add(new Uint8Array(MAX_MESSAGE + 1))).toThrow(LinkTooLargeError);
    expect(out.pending).toBe(0);
  });

  it('sends an empty message as one empty chunk', () => {
    const frames = new Outbox().add(new Uint8Array(0));
    expect(frames.length).toBe(1);
    expect(new Inbox().receive(data(frames[0]!))?.length).toBe(0);
  });

  it('re-sends unacked messages after a resume and drops duplicates', () => {
    const out = new Outbox();
    const inbox = new Inbox();
    const m1 = out.add(Uint8Array.of(1));
    const m2 = out.add(Uint8Array.of(2));
    const m3 = out.add(Uint8Array.of(3));
    expect(inbox.receive(data(m1[0]!))).toEqual(Uint8Array.of(1));
    expect(inbox.receive(data(m2[0]!))).toEqual(Uint8Array.of(2));
    out.ack(1); // the ack for 2 was lost with the session
    void m3; // never arrived
    const again = out.resume(inbox.resumePoint());
    expect(again.map((f) => data(f).msgId)).toEqual([3]);
    // A resume from an older point re-sends 2 as well: the inbox drops it.
    const older = new Outbox();
    older.add(Uint8Array.of(1));
    const fr = older.add(Uint8Array.of(2));
    expect(inbox.receive(data(fr[0]!))).toBeNull();
    expect(inbox.receive(data(again[0]!))).toEqual(Uint8Array.of(3));
    expect(out.pending).toBe(1);
    out.ack(3);
    expect(out.pending).toBe(0);
    expect(out.pendingBytes).toBe(0);
  });

  it('refuses gaps, chunks out of order, acks and resumes for unsent ids', () => {
    const out = new Outbox();
    const a = out.add(new Uint8Array(CHUNK_PAYLOAD * 2));
    const b = out.add(Uint8Array.of(1));
    expect(() => new Inbox().receive(data(b[0]!))).toThrow(LinkProtocolError);
    expect(() => new Inbox().receive(data(a[1]!))).toThrow(LinkProtocolError);
    expect(() => out.ack(5)).toThrow(LinkProtocolError);
    expect(() => out.resume(10)).toThrow(LinkProtocolError);
  });

  it('asks for an ack after 32 messages', () => {
    const out = new Outbox();
    const inbox = new Inbox();
    for (let i = 0; i < 31; i++) inbox.receive(data(out.add(Uint8Array.of(i))[0]!));
    expect(inbox.ackDue).toBe(false);
    inbox.receive(data(out.add(Uint8Array.of(0))[0]!));
    expect(inbox.ackDue).toBe(true);
    expect(inbox.takeAck()).toEqual({ kind: 'ack', msgId: 32 });
    expect(inbox.hasUnacked).toBe(false);
  });
});

describe('reassembly limit (docs/PROTOCOL.md 4.5)', () => {
  const chunk = (msgId: number, index: number, count: number, size: number): Extract<Inner, { kind: 'data' }> =>
    data(decodeInner(encodeInner({ kind: 'data', msgId, index, count, payload: new Uint8Array(size) })));
  const tooLarge = (f: () => unknown): void => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(LinkTooLargeError);
      expect((e as LinkTooLargeError).code).toBe('link.too-large');
      return;
    }
    throw new Error('not refused');
  };

  it('refuses a claimed 100 MiB message at its first frame, before storing any chunk', () => {
    const size = 100 * 1024 * 1024;
    // 64 KiB frames: 1602 chunks of 65483 bytes; the count alone gives it away.
    const count = Math.ceil(size / MAX_CHUNK_PAYLOAD);
    const first = encodeInner({ kind: 'data', msgId: 1, index: 0, count, payload: new Uint8Array(MAX_CHUNK_PAYLOAD) });
    tooLarge(() => decodeInner(first));
  });

  it('refuses at the first chunk when the count fits but the chunk size does not (65 chunks of 64 KiB = 4 MiB)', () => {
    const inbox = new Inbox();
    const heap = process.memoryUsage().arrayBuffers;
    tooLarge(() => inbox.receive(chunk(1, 0, MAX_CHUNKS, MAX_CHUNK_PAYLOAD)));
    // Nothing was kept: the inbox still expects message 1 from its first chunk, and a proper message goes through.
    expect(process.memoryUsage().arrayBuffers - heap).toBeLessThan(MAX_MESSAGE);
    expect(inbox.resumePoint()).toBe(1);
    expect(inbox.receive(chunk(1, 0, 1, 10))?.length).toBe(10);
  });

  it('refuses a running total above MAX_MESSAGE at the chunk that passes it', () => {
    // 65 chunks of 16331 bytes: the first chunk allows it (64 * 16331 + 1 <= 1 MiB), the last one passes it.
    const inbox = new Inbox();
    for (let i = 0; i < MAX_CHUNKS - 1; i++) expect(inbox.receive(chunk(1, i, MAX_CHUNKS, CHUNK_PAYLOAD))).toBeNull();
    tooLarge(() => inbox.receive(chunk(1, MAX_CHUNKS - 1, MAX_CHUNKS, CHUNK_PAYLOAD)));
  });

  it('refuses chunks whose sizes differ from the first (the bound on the first chunk must hold)', () => {
    const grow = new Inbox();
    expect(grow.receive(chunk(1, 0, 3, 100))).toBeNull();
    expect(() => grow.receive(chunk(1, 1, 3, MAX_CHUNK_PAYLOAD))).toThrow(LinkProtocolError);
    const lastLarger = new Inbox();
    expect(lastLarger.receive(chunk(1, 0, 2, 100))).toBeNull();
    expect(() => lastLarger.receive(chunk(1, 1, 2, 101))).toThrow(LinkProtocolError);
    const lastEmpty = new Inbox();
    expect(lastEmpty.receive(chunk(1, 0, 2, 100))).toBeNull();
    expect(() => lastEmpty.receive(chunk(1, 1, 2, 0))).toThrow(LinkProtocolError);
    // A shorter last chunk and an exact multiple are both fine.
    const ok = new Inbox();
    expect(ok.receive(chunk(1, 0, 2, 100))).toBeNull();
    expect(ok.receive(chunk(1, 1, 2, 1))?.length).toBe(101);
    expect(ok.receive(chunk(2, 0, 2, 100))).toBeNull();
    expect(ok.receive(chunk(2, 1, 2, 100))?.length).toBe(200);
  });

  it('room messages fit: the room codec limit is not above the link limit', async () => {
    const { MAX_LINK_MESSAGE } = await import('../../protocol/room/codec.ts');
    expect(MAX_LINK_MESSAGE).toBeLessThanOrEqual(MAX_MESSAGE);
  });
});

describe('Outbox tickets (what PeerLink.send returns and its acked event reports)', () => {
  it('numbers messages 1, 2, 3 and reports how far the peer acknowledged them', () => {
    const out = new Outbox();
    expect(out.lastTicket).toBe(0);
    expect(out.ackedTicket).toBe(0);
    out.add(Uint8Array.of(1));
    expect(out.lastTicket).toBe(1);
    out.add(Uint8Array.of(2));
    out.add(Uint8Array.of(3));
    expect(out.lastTicket).toBe(3);
    out.ack(2);
    expect(out.ackedTicket).toBe(2);
    // A repeated or older ack does not move it back.
    out.ack(1);
    expect(out.ackedTicket).toBe(2);
    // A new session's RESUME acknowledges everything below its nextId.
    out.resume(4);
    expect(out.ackedTicket).toBe(3);
  });

  it('an ack for a message never sent is refused and acknowledges nothing', () => {
    const out = new Outbox();
    out.add(Uint8Array.of(1));
    expect(() => out.ack(2)).toThrow(LinkProtocolError);
    expect(out.ackedTicket).toBe(0);
  });

  it('keeps tickets when a fresh side adopts the peer numbering (ids move, tickets do not)', () => {
    const out = new Outbox({ adoptPeerNumbering: true });
    out.add(Uint8Array.of(1));
    out.add(Uint8Array.of(2));
    // The peer expects id 11 next: our two queued messages become ids 11 and 12.
    const frames = out.resume(11);
    expect(frames.map((f) => data(f).msgId)).toEqual([11, 12]);
    expect(out.ackedTicket).toBe(0);
    out.ack(11);
    expect(out.ackedTicket).toBe(1);
    out.add(Uint8Array.of(3));
    expect(out.lastTicket).toBe(3);
    out.ack(13);
    expect(out.ackedTicket).toBe(3);
  });
});
