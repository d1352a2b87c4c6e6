/**
 * FileTransfers (the driver over the machines) between two ends joined by in-memory ports: a files
 * "channel" the test can cut or tamper with, control messages through the wire codec, storage in
 * arrays. Checks resume after a cut, re-request after tampering, cancel on removal, relay limits.
 */
import { describe, expect, it } from 'vitest';
import { generateAeadKey, sha256 } from '../../crypto/index.ts';
import { asFileId, chunkPlainLength, FILE_CHUNK, FileTransfers, type FileEvent, type FileOffer } from '../../protocol/files/index.ts';
import { nodeAead } from '../../signaling/aead-node.ts';

const SIZE = 12 * FILE_CHUNK + 777;

function file(): { bytes: Uint8Array; offer: FileOffer } {
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(SIZE, i + 65536)));
  const offer: FileOffer = {
    file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
    name: 'f.bin',
    size: SIZE,
    mime: '',
    chunk: FILE_CHUNK,
    hash: sha256(bytes),
    fkey: generateAeadKey(),
    ts: 0,
  };
  return { bytes, offer };
}

interface End {
  t: FileTransfers;
  events: FileEvent[];
  stored: Uint8Array[];
  errors: unknown[];
}

/** Two ends; `wire(frame)` decides what reaches the receiver (return null to drop). */
function pair(
  bytes: Uint8Array,
  wire: (f: Uint8Array) => Uint8Array | null,
  available?: () => number,
): { a: End; b: End; settled: () => Promise<void> } {
  const pending: Promise<unknown>[] = [];
  const mk = (other: () => End, readable: boolean): End => {
    const end: End = { t: null as unknown as FileTransfers, events: [], stored: [], errors: [] };
    end.t = new FileTransfers(
      {
        aead: nodeAead,
        sendFrame: (f) => {
          const g = wire(f);
          if (g !== null)
            pending.push(
              other()
                .t.frame(g)
                .catch((e: unknown) => other().errors.push(e)),
            );
        },
        channelBuffered: () => 0,
        sendControl: (m) =>
          queueMicrotask(() => {
            try {
              other().t.control(m);
            } catch (e) {
              other().errors.push(e); // a host refuses the message (and reports it)
            }
          }),
        read: (o, i) =>
          readable
            ? Promise.resolve(bytes.subarray(i * FILE_CHUNK, i * FILE_CHUNK + chunkPlainLength(o.size, i)))
            : Promise.reject(new Error('no')),
        available: available === undefined ? undefined : () => available(),
        store: (_o, i, p) => {
          end.stored[i] = p;
          return Promise.resolve();
        },
        verify: (o) => {
          const all = new Uint8Array(o.size);
          end.stored.forEach((c, i) => all.set(c, i * FILE_CHUNK));
          return Promise.resolve(sha256(all).every((x, i) => x === o.hash[i]));
        },
        event: (e) => end.events.push(e),
        fail: (e) => end.errors.push(e),
      },
      4,
    );
    return end;
  };
  let b: End;
  const a = mk(() => b, true);
  b = mk(() => a, false);
  const settled = async (): Promise<void> => {
    for (let i = 0; i < 10_000; i++) {
      await new Promise((r) => setImmediate(r));
      if (pending.length === 0) continue;
      await Promise.all(pending.splice(0));
    }
  };
  return { a, b, settled };
}

const kinds = (e: End): string[] =>
  e.events
    .map((x) => (x.kind === 'refused' ? `refused:${x.error.code}` : x.kind === 'failed' ? `failed:${x.code}` : x.kind))
    .filter((k) => k !== 'progress');

describe('FileTransfers', () => {
  it('moves a file whole, and resumes from the last verified chunk after the link is cut mid-file', async () => {
    const { bytes, offer } = file();
    let cut = false;
    let passed = 0;
    const { a, b, settled } = pair(bytes, (f) => (cut ? null : (passed++ === 6 && (cut = true), cut ? null : f)));
    a.t.serve(offer);
    b.t.accept(offer);
    await settled();
    expect(b.t.nextOf(offer)).toBe(6);
    expect(kinds(b)).toEqual([]);
    cut = false; // a new session
    b.t.resume();
    await settled();
    expect(kinds(b)).toEqual(['received']);
    expect(b.stored.length).toBe(13);
    expect([a.errors, b.errors]).toEqual([[], []]);
  });

  it('a tampered chunk is refused with file.auth, asked for again, and the file still arrives', async () => {
    const { bytes, offer } = file();
    let n = 0;
    const { a, b, settled } = pair(bytes, (f) => {
      if (n++ !== 3) return f;
      const t = f.slice();
      t[50] = (t[50] as number) ^ 1;
      return t;
    });
    a.t.serve(offer);
    b.t.accept(offer);
    await settled();
    expect(kinds(b)).toEqual(['refused:file.auth', 'received']);
  });

  it('a member removed mid-transfer: the sender stops at once and the receiver is told', async () => {
    const { bytes, offer } = file();
    let n = 0;
    let removed = (): void => undefined;
    const { a, b, settled } = pair(bytes, (f) => {
      if (++n === 3) removed();
      return f;
    });
    removed = () => a.t.cancel(offer, 'file.removed');
    a.t.serve(offer);
    b.t.accept(offer);
    await settled();
    expect(kinds(b)).toEqual(['failed:file.removed']);
    expect(b.stored.length).toBeLessThan(13);
  });

  it('a relaying owner sends only what it has verified itself, and continues when more arrives', async () => {
    const { bytes, offer } = file();
    let have = 5;
    const { a, b, settled } = pair(
      bytes,
      (f) => f,
      () => have,
    );
    a.t.serve(offer);
    b.t.accept(offer);
    await settled();
    expect(b.t.nextOf(offer)).toBe(5);
    have = 13;
    a.t.pump();
    await settled();
    expect(kinds(b)).toEqual(['received']);
  });

  it('refuses control messages for files it does not serve and chunks of files not in transfer', async () => {
    const { bytes, offer } = file();
    const { a, b, settled } = pair(bytes, (f) => f);
    b.t.accept(offer); // a does not serve it: its control() throws file.unknown
    await expect(settled()).resolves.toBeUndefined();
    expect(a.errors).toEqual([expect.objectContaining({ code: 'file.unknown' })]);
    expect(() => a.t.control(new Uint8Array([0xc1]))).toThrow();
    await expect(a.t.frame(new Uint8Array(40).fill(0x46))).rejects.toMatchObject({ code: 'file.unknown' });
    expect(b.events).toEqual([]);
  });
});
