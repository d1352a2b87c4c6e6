/**
 * The file path over real WebRTC (node-datachannel, 127.0.0.1): FileTransfers at both ends, chunks
 * on their own data channel, grants on a control channel (the link's role), files streamed from and
 * to disk. A transfer resumes after the peer connection is cut mid-file; a 256 MiB sparse file goes
 * through with memory bounded well below its size (peak RSS printed). The 1 GiB case runs end to
 * end through the CLI, two processes, in test/cli-room/files-1gib.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateAeadKey } from '../../crypto/index.ts';
import { asFileId, chunkPlainLength, FILE_CHUNK, FileTransfers, type FileEvent, type FileOffer } from '../../protocol/files/index.ts';
import { nodeAead } from '../../signaling/aead-node.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { connectPair, type RtcPair } from './rtc-pair.ts';

const dir = await mkdtemp(path.join(tmpdir(), 'zr-files-'));
afterAll(async () => {
  await releaseNodeWrtc();
  await rm(dir, { recursive: true, force: true });
});

async function hashFile(h: FileHandle, size: number): Promise<Uint8Array> {
  const sha = createHash('sha256');
  const buf = new Uint8Array(1024 * 1024);
  for (let at = 0; at < size; at += buf.length) {
    const { bytesRead } = await h.read(buf, 0, Math.min(buf.length, size - at), at);
    sha.update(buf.subarray(0, bytesRead));
  }
  return new Uint8Array(sha.digest());
}

async function offerFor(src: FileHandle, size: number): Promise<FileOffer> {
  return {
    file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
    name: 'big.bin',
    size,
    mime: '',
    chunk: FILE_CHUNK,
    hash: await hashFile(src, size),
    fkey: generateAeadKey(),
    ts: 0,
  };
}

/** Sender end on `p.a` reading `src`; receiver end on `p.b` writing `dst`. */
function ends(
  link: { p: RtcPair; live: boolean },
  src: FileHandle,
  dst: FileHandle,
  events: Events,
  errors: unknown[],
): { sender: FileTransfers; receiver: FileTransfers } {
  const sender = new FileTransfers({
    aead: nodeAead,
    // A frame for a session that has just closed is lost; the receiver's resume asks for it again.
    sendFrame: (f) => link.live && link.p.files[0].send(f as Uint8Array<ArrayBuffer>),
    channelBuffered: () => link.p.files[0].bufferedAmount,
    sendControl: (m) => link.live && link.p.ctl[0].send(m as Uint8Array<ArrayBuffer>),
    read: async (o, i) => {
      const buf = new Uint8Array(chunkPlainLength(o.size, i));
      await src.read(buf, 0, buf.length, i * FILE_CHUNK);
      return buf;
    },
    store: () => Promise.reject(new Error('sender stores nothing')),
    verify: () => Promise.resolve(false),
    event: (e) => events.push(e),
    fail: (e) => errors.push(e),
  });
  const receiver = new FileTransfers({
    aead: nodeAead,
    sendFrame: () => errors.push(new Error('receiver sends no chunks')),
    channelBuffered: () => 0,
    sendControl: (m) => link.live && link.p.ctl[1].send(m as Uint8Array<ArrayBuffer>),
    read: () => Promise.reject(new Error('receiver reads nothing')),
    store: async (_o, i, plain) => void (await dst.write(plain, 0, plain.length, i * FILE_CHUNK)),
    verify: async (o) => Buffer.from(await hashFile(dst, o.size)).equals(Buffer.from(o.hash)),
    event: (e) => events.push(e),
    fail: (e) => errors.push(e),
  });
  wire(link.p, sender, receiver, errors);
  return { sender, receiver };
}

function wire(p: RtcPair, sender: FileTransfers, receiver: FileTransfers, errors: unknown[]): void {
  const guard = (f: () => unknown): void => {
    try {
      const r = f();
      if (r instanceof Promise) r.catch((e: unknown) => errors.push(e));
    } catch (e) {
      errors.push(e);
    }
  };
  p.ctl[0].onmessage = (e: MessageEvent<ArrayBuffer>) => guard(() => sender.control(new Uint8Array(e.data)));
  p.ctl[1].onmessage = (e: MessageEvent<ArrayBuffer>) => guard(() => receiver.control(new Uint8Array(e.data)));
  p.files[1].onmessage = (e: MessageEvent<ArrayBuffer>) => guard(() => receiver.frame(new Uint8Array(e.data)));
  p.files[0].onbufferedamountlow = () => sender.pump();
}

/** The transfer events of a test, and promises for the ones it waits for. */
class Events {
  readonly all: FileEvent[] = [];
  private waiters: { pred: (e: FileEvent) => boolean; resolve: (e: FileEvent) => void }[] = [];
  push(e: FileEvent): void {
    this.all.push(e);
    this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
  }
  until(pred: (e: FileEvent) => boolean): Promise<FileEvent> {
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
}

/**
 * The transfer ends (`received` or `failed`). A watchdog fails the test with the receiver's resume
 * point if no chunk arrives for `stallMs`, so a stall shows where it stopped instead of a timeout.
 */
const received = async (events: Events, where: () => string = () => '', stallMs = 30_000): Promise<void> => {
  let last = events.all.length;
  let watchdog: ReturnType<typeof setInterval> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    watchdog = setInterval(() => {
      if (events.all.length === last) reject(new Error(`transfer stalled for ${stallMs} ms: ${where()}`));
      last = events.all.length;
    }, stallMs);
  });
  try {
    const end = await Promise.race([events.until((e) => e.kind === 'received' || e.kind === 'failed'), stalled]);
    if (end.kind === 'failed') throw new Error(`transfer failed: ${end.code}`);
  } finally {
    clearInterval(watchdog);
  }
};

describe('file path over real WebRTC', () => {
  it('resumes from the last verified chunk after the peer connection is cut mid-file; the hash matches', async () => {
    const size = 40 * FILE_CHUNK + 1234;
    const src = await open(path.join(dir, 'src.bin'), 'w+');
    const dst = await open(path.join(dir, 'dst.bin'), 'w+');
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
    await src.write(data, 0, size, 0);
    const offer = await offerFor(src, size);
    const events = new Events();
    const errors: unknown[] = [];
    const p1 = await connectPair();
    const link = { p: p1, live: true };
    const first = ends(link, src, dst, events, errors);
    first.sender.serve(offer);
    // Cut the connection once 10 chunks are stored.
    const cut = events
      .until((e) => e.kind === 'progress' && e.done >= 10)
      .then(() => {
        link.live = false; // the host learns that the session ended
        // Close outside the data channel's message callback (libdatachannel may stall otherwise).
        return new Promise<void>((r) =>
          setImmediate(() => {
            p1.close();
            r();
          }),
        );
      });
    first.receiver.accept(offer);
    await cut;
    const stoppedAt = first.receiver.nextOf(offer) ?? 0;
    expect(stoppedAt).toBeGreaterThanOrEqual(10);
    expect(stoppedAt).toBeLessThan(41);
    // A new session: new peer connection, the same transfer objects (a restart would build new
    // ones from the stored resume point: the machines test covers that).
    const p2 = await connectPair();
    link.p = p2;
    link.live = true;
    wire(p2, first.sender, first.receiver, errors);
    first.receiver.resume();
    await received(events);
    expect(Buffer.from(await hashFile(dst, size)).equals(Buffer.from(offer.hash))).toBe(true);
    expect(errors).toEqual([]);
    p2.close();
    await src.close();
    await dst.close();
  }, 60_000);

  it('a 256 MiB sparse file goes through with memory bounded below half its size (peak RSS printed)', async () => {
    const size = 256 * 1024 * 1024;
    const src = await open(path.join(dir, 'sparse.bin'), 'w+');
    await src.truncate(size);
    const dst = await open(path.join(dir, 'sparse-out.bin'), 'w+');
    const offer = await offerFor(src, size);
    const events = new Events();
    const errors: unknown[] = [];
    const p = await connectPair();
    const { sender, receiver } = ends({ p, live: true }, src, dst, events, errors);
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
    const t0 = performance.now();
    sender.serve(offer);
    receiver.accept(offer);
    await received(
      events,
      () => `receiver at chunk ${receiver.nextOf(offer) ?? '?'} of ${size / FILE_CHUNK}, channel buffered ${p.files[0].bufferedAmount}`,
    );
    clearInterval(sampler);
    const s = (performance.now() - t0) / 1000;
    console.log(
      `256 MiB through the file path: ${s.toFixed(1)} s (${(size / s / 1e6).toFixed(1)} MB/s incl. hashing the received file), RSS before ${(rss0 / 1e6).toFixed(0)} MB, peak ${(peak / 1e6).toFixed(0)} MB`,
    );
    expect(errors).toEqual([]);
    // Both ends are in this process; a buffered file would cost its size at least once.
    expect(peak - rss0).toBeLessThan(size / 2);
    p.close();
    await src.close();
    await dst.close();
  }, 240_000);
});
