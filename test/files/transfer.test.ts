/**
 * One file through the two machines and real AES-256-GCM (node:crypto and WebCrypto), over an
 * in-memory channel that the test can cut, tamper with and reorder: the receiver refuses bad chunks
 * with typed errors, asks again, resumes from its last verified chunk, and ends with the offer's hash.
 */
import { describe, expect, it } from 'vitest';
import { generateAeadKey, sha256, webCryptoAead, type AeadBackend } from '../../crypto/index.ts';
import {
  asFileId,
  chunkArrived,
  chunkCount,
  chunkOpened,
  chunkPlainLength,
  chunkRefused,
  chunkSent,
  decodeFileControl,
  encodeFileControl,
  FILE_CHUNK,
  FileError,
  nextToSend,
  onControl,
  openChunk,
  parseChunkFrame,
  resumeReceive,
  sealChunk,
  startReceive,
  startSend,
  senderCancelled,
  cancelSend,
  verified,
  type FileControl,
  type FileOffer,
  type ReceiveEffect,
  type ReceiveState,
  type SendState,
} from '../../protocol/files/index.ts';
import { nodeAead } from '../../signaling/aead-node.ts';

const SIZE = 20 * FILE_CHUNK + 12_345;

function makeFile(): { bytes: Uint8Array; offer: FileOffer } {
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(SIZE, i + 65536)));
  const offer: FileOffer = {
    file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
    name: 'data.bin',
    size: SIZE,
    mime: 'application/octet-stream',
    chunk: FILE_CHUNK,
    hash: sha256(bytes),
    fkey: generateAeadKey(),
    ts: 0,
  };
  return { bytes, offer };
}

/** The receiving side as a driver would run it: stored chunks ("disk"), its machine, refusals seen. */
class Receiver {
  state: ReceiveState;
  readonly disk: Uint8Array[] = [];
  readonly refused: string[] = [];
  readonly outbox: FileControl[] = [];
  finished: boolean | null = null;
  constructor(
    readonly backend: AeadBackend,
    readonly offer: FileOffer,
    next = 0,
    readonly window = 8,
  ) {
    const s = startReceive(offer, next, window);
    this.state = s.state;
    this.apply(s.effects);
  }
  apply(effects: readonly ReceiveEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'send') this.outbox.push(decodeFileControl(encodeFileControl(e.msg))); // through the wire codec
      if (e.kind === 'store') this.disk[e.index] = e.plaintext;
      if (e.kind === 'refused') this.refused.push(e.error.code);
      if (e.kind === 'verify') {
        const all = new Uint8Array(this.disk.reduce((a, c) => a + c.length, 0));
        let at = 0;
        for (const c of this.disk) {
          all.set(c, at);
          at += c.length;
        }
        const ok = sha256(all).every((b, i) => b === this.offer.hash[i]);
        const v = verified(this.state, ok);
        this.state = v.state;
        this.apply(v.effects);
      }
      if (e.kind === 'finished') this.finished = e.ok;
    }
  }
  async frame(frame: Uint8Array): Promise<void> {
    const c = parseChunkFrame(frame);
    const a = chunkArrived(this.state, c.index, this.window);
    this.state = a.state;
    this.apply(a.effects);
    if (!a.open) return;
    try {
      const plain = await openChunk(this.backend, this.offer, c);
      const s = chunkOpened(this.state, c.index, plain, this.window);
      this.state = s.state;
      this.apply(s.effects);
    } catch (e) {
      if (!(e instanceof FileError)) throw e;
      const s = chunkRefused(this.state, e, this.window);
      this.state = s.state;
      this.apply(s.effects);
    }
  }
}

/** The sending side: answers wants, produces sealed frames from the file. */
class Sender {
  state: SendState;
  constructor(
    readonly backend: AeadBackend,
    readonly offer: FileOffer,
    readonly bytes: Uint8Array,
  ) {
    this.state = startSend(offer);
  }
  control(m: FileControl): void {
    this.state = onControl(this.state, m);
  }
  /** Frames it may send now (a "channel" with room for `room` frames). */
  async drain(room = Infinity): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let i = nextToSend(this.state); i !== null && out.length < room; i = nextToSend(this.state)) {
      const start = i * FILE_CHUNK;
      out.push(await sealChunk(this.backend, this.offer, i, this.bytes.subarray(start, start + chunkPlainLength(this.offer.size, i))));
      this.state = chunkSent(this.state, i);
    }
    return out;
  }
}

/** Run until quiet; `tamper` may rewrite, drop or swap frames in flight. */
async function run(
  s: Sender,
  r: Receiver,
  tamper: (frames: Uint8Array[]) => Uint8Array[] = (f) => f,
  rounds = 1000,
  room = Infinity,
): Promise<void> {
  for (let round = 0; round < rounds && r.finished === null; round++) {
    for (const m of r.outbox.splice(0)) s.control(m);
    const frames = tamper(await s.drain(room));
    if (frames.length === 0 && r.outbox.length === 0) return;
    for (const f of frames) await r.frame(f);
  }
}

/** Byte equality without vitest's element-wise deep diff (slow on megabytes). */
const same = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

const joined = (chunks: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
};

describe.each([nodeAead, webCryptoAead])('file transfer through the machines ($name)', (backend) => {
  it('arrives whole with the offer hash, within the granted window', async () => {
    const { bytes, offer } = makeFile();
    const s = new Sender(backend, offer, bytes);
    const r = new Receiver(backend, offer);
    let maxBurst = 0;
    await run(s, r, (f) => {
      maxBurst = Math.max(maxBurst, f.length);
      return f;
    });
    expect(r.finished).toBe(true);
    expect(r.state.status).toBe('done');
    expect(same(joined(r.disk), bytes)).toBe(true);
    expect(r.refused).toEqual([]);
    expect(maxBurst).toBeLessThanOrEqual(8); // never more in flight than granted
  });

  it('a grant extension that arrives while the sender is behind does not skip chunks', async () => {
    const { bytes, offer } = makeFile();
    const s = new Sender(backend, offer, bytes);
    const r = new Receiver(backend, offer);
    await run(s, r, (f) => f, 1000, 3); // the channel takes 3 frames per round; the window is 8
    expect(r.refused).toEqual([]);
    expect(r.finished).toBe(true);
    expect(same(joined(r.disk), bytes)).toBe(true);
  });

  it('resumes from the last verified chunk after the link is cut mid-file (and after a restart)', async () => {
    const { bytes, offer } = makeFile();
    const s = new Sender(backend, offer, bytes);
    const r = new Receiver(backend, offer);
    // Cut: only the first 5 frames of the first burst arrive, the rest die with the session.
    let cut = true;
    await run(s, r, (f) => (cut ? f.slice(0, 5) : f), 1);
    cut = false;
    expect(r.state.next).toBe(5);
    // New session: the receiver asks from 5; the sender restarts there.
    const resumed = resumeReceive(r.state, 8);
    r.state = resumed.state;
    r.apply(resumed.effects);
    expect(r.outbox.at(-1)).toMatchObject({ type: 'file-want', from: 5 });
    await run(s, r);
    expect(r.finished).toBe(true);
    expect(sha256(joined(r.disk))).toEqual(offer.hash);

    // Restart: a fresh receiver built from what was stored (next = 12) and a fresh sender.
    const r2 = new Receiver(backend, offer, 12);
    for (let i = 0; i < 12; i++) r2.disk[i] = r.disk[i] as Uint8Array;
    expect(r2.outbox[0]).toMatchObject({ type: 'file-want', from: 12 });
    await run(new Sender(backend, offer, bytes), r2);
    expect(r2.finished).toBe(true);
    expect(same(joined(r2.disk), bytes)).toBe(true);
  });

  it('a tampered chunk is refused (file.auth) and requested again; the file still arrives whole', async () => {
    const { bytes, offer } = makeFile();
    const s = new Sender(backend, offer, bytes);
    const r = new Receiver(backend, offer);
    let tampered = false;
    await run(s, r, (frames) => {
      if (!tampered && frames.length > 3) {
        tampered = true;
        const f = (frames[2] as Uint8Array).slice();
        f[100] = (f[100] as number) ^ 0xff;
        frames[2] = f;
      }
      return frames;
    });
    expect(r.refused).toEqual(['file.auth']);
    expect(r.finished).toBe(true);
    expect(same(joined(r.disk), bytes)).toBe(true);
  });

  it('a reordered chunk is refused (file.order) before decryption and requested again', async () => {
    const { bytes, offer } = makeFile();
    const s = new Sender(backend, offer, bytes);
    const r = new Receiver(backend, offer);
    let swapped = false;
    await run(s, r, (frames) => {
      if (!swapped && frames.length > 4) {
        swapped = true;
        [frames[1], frames[3]] = [frames[3] as Uint8Array, frames[1] as Uint8Array];
      }
      return frames;
    });
    // The swapped chunk is refused, and so may be the rest of that burst once the re-request starts.
    expect(r.refused.length).toBeGreaterThan(0);
    expect(new Set(r.refused)).toEqual(new Set(['file.order']));
    expect(r.finished).toBe(true);
    expect(same(joined(r.disk), bytes)).toBe(true);
  });

  it('a chunk relabelled with another index, or of another file, does not authenticate', async () => {
    const { bytes, offer } = makeFile();
    const other = makeFile();
    const c0 = await sealChunk(backend, offer, 0, bytes.subarray(0, FILE_CHUNK));
    const moved = c0.slice();
    new DataView(moved.buffer).setUint32(17, 1); // claims to be chunk 1
    await expect(openChunk(backend, offer, parseChunkFrame(moved))).rejects.toMatchObject({ code: 'file.auth' });
    const foreign = await sealChunk(backend, other.offer, 0, other.bytes.subarray(0, FILE_CHUNK));
    await expect(openChunk(backend, offer, parseChunkFrame(foreign))).rejects.toMatchObject({ code: 'file.unknown' });
    const relabelled = foreign.slice();
    relabelled.set(offer.file, 1); // same bytes, our file id: the id is bound in the associated data
    await expect(openChunk(backend, offer, parseChunkFrame(relabelled))).rejects.toMatchObject({ code: 'file.auth' });
  });

  it('a chunk that keeps failing gives up after 3 refusals with file.corrupt', async () => {
    const { bytes, offer } = makeFile();
    const s = new Sender(backend, offer, bytes);
    const r = new Receiver(backend, offer);
    await run(s, r, (frames) =>
      frames.map((f) => {
        if (new DataView(f.buffer, f.byteOffset).getUint32(17) !== 4) return f;
        const t = f.slice();
        t[t.length - 1] = (t[t.length - 1] as number) ^ 1;
        return t;
      }),
    );
    expect(r.refused).toEqual(['file.auth', 'file.auth', 'file.auth']);
    expect(r.finished).toBe(false);
    expect(r.state.status).toBe('cancelled');
    expect(r.state.next).toBe(4);
    expect(r.outbox.at(-1)).toMatchObject({ type: 'file-cancel', code: 'file.corrupt' });
    s.control(r.outbox.at(-1) as FileControl);
    expect(nextToSend(s.state)).toBeNull();
  });

  it('a file whose bytes do not match the offer hash is refused at the end (file.hash)', async () => {
    const { bytes, offer } = makeFile();
    const liar = { ...offer, hash: sha256(new Uint8Array(1)) };
    const r = new Receiver(backend, liar);
    await run(new Sender(backend, liar, bytes), r);
    expect(r.refused).toEqual(['file.hash']);
    expect(r.finished).toBe(false);
    expect(r.outbox.at(-1)).toMatchObject({ type: 'file-cancel', code: 'file.hash' });
  });
});

describe('frame and machine rules', () => {
  it('parseChunkFrame refuses short, long and unknown frames with file.frame', () => {
    for (const f of [new Uint8Array(36), new Uint8Array(21 + FILE_CHUNK + 17), new Uint8Array(40).fill(0x47)])
      expect(() => parseChunkFrame(f)).toThrow(expect.objectContaining({ code: 'file.frame' }));
  });

  it('openChunk refuses a wrong length and an index beyond the file before decrypting', async () => {
    const { bytes, offer } = makeFile();
    const f = await sealChunk(nodeAead, offer, 20, bytes.subarray(20 * FILE_CHUNK));
    await expect(openChunk(nodeAead, offer, parseChunkFrame(f.subarray(0, f.length - 1)))).rejects.toMatchObject({
      code: 'file.chunk-size',
    });
    const beyond = f.slice();
    new DataView(beyond.buffer).setUint32(17, chunkCount(SIZE));
    await expect(openChunk(nodeAead, offer, parseChunkFrame(beyond))).rejects.toMatchObject({ code: 'file.frame' });
    await expect(sealChunk(nodeAead, offer, 0, new Uint8Array(5))).rejects.toMatchObject({ code: 'file.chunk-size' });
  });

  it('duplicates are dropped, chunks outside the grant refused, and no input state is mutated', () => {
    const { offer } = makeFile();
    const start = startReceive(offer, 0, 4);
    const s0 = start.state;
    const frozen = JSON.stringify(s0);
    const after = chunkOpened(s0, 0, new Uint8Array(FILE_CHUNK), 4).state;
    expect(JSON.stringify(s0)).toBe(frozen);
    expect(chunkArrived(after, 0, 4)).toMatchObject({ open: false, effects: [] }); // replayed chunk 0: dropped
    const beyond = chunkArrived(after, 9, 4); // not next, not granted
    expect(beyond.open).toBe(false);
    expect(beyond.effects[0]).toMatchObject({ kind: 'refused', error: { code: 'file.order' } });
    expect(beyond.effects[1]).toMatchObject({ kind: 'send', msg: { type: 'file-want', from: 1 } });
    // Frames already in flight after the re-request are dropped quietly until chunk 1 comes.
    expect(chunkArrived(beyond.state, 2, 4)).toMatchObject({ open: false, effects: [] });
    expect(JSON.stringify(after)).toBe(JSON.stringify({ ...after }));
  });

  it('the sender refuses a grant beyond the file and control messages of another file; decline and cancel stop it', () => {
    const { offer } = makeFile();
    const s = startSend(offer);
    expect(() => onControl(s, { type: 'file-want', file: offer.file, from: 0, to: chunkCount(SIZE) + 1 })).toThrow(
      expect.objectContaining({ code: 'file.frame' }),
    );
    expect(() => onControl(s, { type: 'file-want', file: asFileId(new Uint8Array(16)), from: 0, to: 1 })).toThrow(
      expect.objectContaining({ code: 'file.unknown' }),
    );
    const sending = onControl(s, { type: 'file-want', file: offer.file, from: 0, to: 4 });
    expect(nextToSend(sending)).toBe(0);
    expect(nextToSend(sending, 0)).toBeNull(); // a relaying owner that has verified nothing yet waits
    expect(nextToSend(onControl(sending, { type: 'file-decline', file: offer.file }))).toBeNull();
    const c = cancelSend(sending, 'file.removed');
    expect(c.msg).toMatchObject({ type: 'file-cancel', code: 'file.removed' });
    expect(nextToSend(c.state)).toBeNull();
    expect(s.status).toBe('offered'); // not mutated
    const r = startReceive(offer).state;
    expect(senderCancelled(r, 'file.removed').effects).toEqual([{ kind: 'finished', ok: false, code: 'file.removed' }]);
  });
});
