/**
 * What the web app decides about files (web/session/files.ts) over a fake driver API and the real
 * chunk store on an in-memory IndexedDB: pictures under the limit are fetched without a click, other
 * files wait for one, an offer above the limit is declined and shown as too large, a file is sent only
 * after one pass stored and hashed it, progress becomes a rate and a time left, and a complete file
 * is sniffed (never trusted by mime) before anything is shown.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { generateAeadKey, sha256, toHex } from '../../crypto/index.ts';
import { FILE_CHUNK, type FileId, type FileOffer } from '../../protocol/files/index.ts';
import * as dbm from '../../web/storage/db.ts';
import { IdbFileStore } from '../../web/storage/file-store.ts';
import { FilesModel, type FilesApi } from '../../web/session/files.ts';

const ROOM = 'ab'.repeat(16);
const SELF = 'self';

beforeEach(async () => {
  await dbm.closeDb();
  vi.stubGlobal('indexedDB', new IDBFactory());
});

function offer(over: Partial<FileOffer> & { data?: Uint8Array } = {}): FileOffer {
  const data = over.data ?? new Uint8Array(10);
  return {
    file: (over.file ?? new Uint8Array(16).fill(3)) as FileId,
    name: over.name ?? 'a.bin',
    size: over.size ?? data.length,
    mime: over.mime ?? 'application/octet-stream',
    chunk: FILE_CHUNK,
    hash: sha256(data),
    fkey: generateAeadKey(),
    ts: 1,
  };
}

interface Calls {
  accept: string[];
  decline: string[];
  cancel: string[];
  sent: Array<{ name: string; size: number; mime: string; hash: string; id: string }>;
}

async function setup(
  limit = 1000,
): Promise<{ files: FilesModel; calls: Calls; store: IdbFileStore; clock: { t: number }; changed: () => number }> {
  const store = new IdbFileStore(await dbm.openDb(), generateAeadKey(), ROOM);
  const calls: Calls = { accept: [], decline: [], cancel: [], sent: [] };
  const clock = { t: 0 };
  let n = 0;
  let api: FilesApi | null = null;
  const files = new FilesModel({
    store: async () => store,
    limit: () => limit,
    changed: () => void n++,
    report: () => undefined,
    selfId: () => SELF,
    api: () => api,
    now: () => clock.t,
  });
  api = {
    accept: (f) => void calls.accept.push(toHex(f)),
    decline: (f) => void calls.decline.push(toHex(f)),
    cancel: (f) => void calls.cancel.push(toHex(f)),
    send: async (f) => {
      calls.sent.push({ name: f.name, size: f.size, mime: f.mime, hash: toHex(f.hash), id: toHex(f.id!) });
      return { ...offer({ size: f.size }), file: f.id!, name: f.name, hash: f.hash };
    },
  };
  return { files, calls, store, clock, changed: () => n };
}

describe('RoomFiles: what is accepted', () => {
  it('fetches a picture (by mime) under the limit without a click; SVG is not a picture here', async () => {
    const { files, calls } = await setup();
    const png = offer({ mime: 'image/png', file: new Uint8Array(16).fill(1) as FileId });
    const svg = offer({ mime: 'image/svg+xml', name: 'x.svg', file: new Uint8Array(16).fill(2) as FileId });
    await files.offered(png, 'ann', 'Ann', 5);
    await files.offered(svg, 'ann', 'Ann', 6);
    expect(calls.accept).toEqual([toHex(png.file)]);
    expect(files.view(toHex(png.file))?.state).toBe('receiving');
    expect(files.view(toHex(svg.file))?.state).toBe('offered');
    files.accept(toHex(svg.file));
    expect(calls.accept).toEqual([toHex(png.file), toHex(svg.file)]);
  });

  it('declines an offer above the limit and says it is too large; a click cannot accept it', async () => {
    const { files, calls } = await setup(1000);
    const big = offer({ size: 1001, mime: 'image/png' });
    await files.offered(big, 'ann', 'Ann', 5);
    expect(calls.decline).toEqual([toHex(big.file)]);
    expect(calls.accept).toEqual([]);
    expect(files.view(toHex(big.file))).toMatchObject({ state: 'too-large', code: 'file.too-large' });
    files.accept(toHex(big.file));
    expect(calls.accept).toEqual([]);
  });

  it('resumes without a click a file half stored before a reload; a complete one is shown', async () => {
    const { files, calls, store } = await setup(10 * FILE_CHUNK);
    const data = new Uint8Array(3 * FILE_CHUNK).fill(9);
    const half = offer({ data, file: new Uint8Array(16).fill(4) as FileId });
    await store.store(half, 0, data.subarray(0, FILE_CHUNK));
    await files.offered(half, 'ann', 'Ann', 7);
    expect(calls.accept).toEqual([toHex(half.file)]);
    expect(files.view(toHex(half.file))?.done).toBe(FILE_CHUNK);
    const whole = offer({ data: new Uint8Array([1, 2, 3]), file: new Uint8Array(16).fill(5) as FileId });
    await store.store(whole, 0, new Uint8Array([1, 2, 3]));
    await files.offered(whole, 'ann', 'Ann', 8);
    expect(files.view(toHex(whole.file))?.state).toBe('done');
  });
});

describe('RoomFiles: sending', () => {
  it('refuses a file above the limit before reading it', async () => {
    const { files, calls } = await setup(10);
    const blob = new Blob([new Uint8Array(11)]);
    await expect(files.send(blob, 'big.bin', '')).rejects.toMatchObject({ code: 'file.too-large' });
    expect(calls.sent).toEqual([]);
    expect(files.messages('me')).toEqual([]);
  });

  it('stores and hashes in one pass, then offers with that hash and the same file id; the card waits for the room', async () => {
    const { files, calls, store } = await setup(10 * FILE_CHUNK);
    const data = new Uint8Array(FILE_CHUNK + 7).map((_, i) => i & 0xff);
    await files.send(new Blob([data]), '../x.txt', 'text/plain');
    expect(calls.sent).toHaveLength(1);
    const s = calls.sent[0]!;
    expect(s.hash).toBe(createHash('sha256').update(data).digest('hex'));
    expect(s.name).toBe('../x.txt'); // the label as picked; receivers reduce it
    const v = files.view(s.id)!;
    expect(v).toMatchObject({ own: true, state: 'waiting', name: 'x.txt', size: data.length });
    const o = { ...offer({ size: data.length }), file: Buffer.from(s.id, 'hex') as unknown as FileId };
    expect(await store.next(o)).toBe(2);
    const [m] = files.messages('me');
    expect(m).toMatchObject({ key: `file/${s.id}`, own: true, pending: true, idx: null, senderName: 'me' });
    // The offer comes back in the room order.
    await files.offered({ ...o, hash: Buffer.from(s.hash, 'hex') }, SELF, 'Me', 12);
    expect(files.messages('me')[0]).toMatchObject({ idx: 12, pending: false });
    files.cancel(s.id);
    expect(calls.cancel).toEqual([s.id]);
  });
});

describe('RoomFiles: progress and endings', () => {
  it('turns chunk progress into bytes, a rate and a time left', async () => {
    const { files, clock } = await setup(100 * FILE_CHUNK);
    const o = offer({ size: 10 * FILE_CHUNK, mime: 'image/gif' });
    await files.offered(o, 'ann', 'Ann', 1);
    clock.t = 1000;
    files.onEvent({ kind: 'file-progress', file: o.file, direction: 'in', done: 1, count: 10 } as never);
    clock.t = 2000;
    files.onEvent({ kind: 'file-progress', file: o.file, direction: 'in', done: 3, count: 10 } as never);
    const v = files.view(toHex(o.file))!;
    expect(v.done).toBe(3 * FILE_CHUNK);
    expect(v.rate).toBe(2 * FILE_CHUNK);
    expect(v.secondsLeft).toBe(3.5);
  });

  it('a received file that is not a picture (by its bytes, whatever the mime) is a download', async () => {
    const { files, store } = await setup(100);
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
    const o = offer({ data: svg, mime: 'image/png', name: 'x.png' });
    await files.offered(o, 'ann', 'Ann', 1);
    await store.store(o, 0, svg);
    files.onEvent({ kind: 'file-received', offer: o } as never);
    await vi.waitFor(() => expect(files.view(toHex(o.file))?.download).toBe(true));
    expect(files.view(toHex(o.file))).toMatchObject({ state: 'done', thumb: null });
  });

  it('an ended transfer says why; a finished one stays finished', async () => {
    const { files } = await setup();
    const a = offer({ file: new Uint8Array(16).fill(7) as FileId });
    await files.offered(a, 'ann', 'Ann', 1);
    files.onEvent({ kind: 'file-ended', file: a.file, code: 'file.removed' } as never);
    expect(files.view(toHex(a.file))).toMatchObject({ state: 'failed', code: 'file.removed' });
    expect(files.onEvent({ kind: 'delivery' })).toBe(false);
  });
});
