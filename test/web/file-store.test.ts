/**
 * The web app's file-chunk store (web/storage/file-store.ts, docs/PROTOCOL.md 6.7) on an in-memory
 * IndexedDB: chunks sealed one record each and opened again, the resume point, records that were
 * tampered with or moved are refused, the single hashing pass over a picked Blob, the size limit on
 * both sides; plus the image sniffing and the storage key derivation (HKDF, RFC 5869 vector).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { asAeadKey, fromHex, generateAeadKey, hkdfSha256, sha256, toHex } from '../../crypto/index.ts';
import { FILE_CHUNK, safeFileName, type FileId, type FileOffer } from '../../protocol/files/index.ts';
import * as dbm from '../../web/storage/db.ts';
import { sniffImage } from '../../web/files/sniff.ts';
import { chunkRecordKey, deriveFilesKey, DEFAULT_FILE_LIMIT, IdbFileStore, knownKey } from '../../web/storage/file-store.ts';

beforeEach(async () => {
  await dbm.closeDb();
  vi.stubGlobal('indexedDB', new IDBFactory());
});

const ROOM = 'ab'.repeat(16);
const fileId = (n: number): FileId => new Uint8Array(16).fill(n) as FileId;

function bytesOf(size: number, seed = 7): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function offerOf(data: Uint8Array, id = fileId(1)): FileOffer {
  return {
    file: id,
    name: 'a.bin',
    size: data.length,
    mime: 'application/octet-stream',
    chunk: FILE_CHUNK,
    hash: sha256(data),
    fkey: generateAeadKey(),
    ts: 1,
  };
}

const chunkOf = (data: Uint8Array, i: number): Uint8Array => data.slice(i * FILE_CHUNK, (i + 1) * FILE_CHUNK);

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).not.toBeNull();
  return (e as { code: string }).code;
}

async function store(roomId = ROOM): Promise<{ s: IdbFileStore; db: dbm.Db }> {
  const db = await dbm.openDb();
  return { s: new IdbFileStore(db, generateAeadKey(), roomId), db };
}

describe('IdbFileStore: sealed chunk records', () => {
  it('stores each chunk as its own sealed record and reads it back; nothing of the plaintext is in the record', async () => {
    const { s, db } = await store();
    const data = bytesOf(2 * FILE_CHUNK + 100);
    const offer = offerOf(data);
    for (let i = 0; i < 3; i++) await s.store(offer, i, chunkOf(data, i));
    const keys = await db.getAllKeys('files');
    expect(keys).toEqual([0, 1, 2].map((i) => chunkRecordKey(ROOM, offer.file, i)));
    const raw = (await db.get('files', keys[2]!))!;
    expect(raw.length).toBe(1 + 12 + 100 + 16);
    expect(toHex(raw)).not.toContain(toHex(chunkOf(data, 2).subarray(0, 16)));
    for (let i = 0; i < 3; i++) expect(await s.read(offer, i)).toEqual(chunkOf(data, i));
    expect(await s.verify(offer)).toBe(true);
  });

  it('next() is the first chunk not stored (the resume point), across a reopened database', async () => {
    const data = bytesOf(5 * FILE_CHUNK);
    const offer = offerOf(data);
    const key = generateAeadKey();
    let s = new IdbFileStore(await dbm.openDb(), key, ROOM);
    expect(await s.next(offer)).toBe(0);
    await s.store(offer, 0, chunkOf(data, 0));
    await s.store(offer, 1, chunkOf(data, 1));
    expect(await s.next(offer)).toBe(2);
    await dbm.closeDb(); // a reload: same IndexedDB, new connection
    s = new IdbFileStore(await dbm.openDb(), key, ROOM);
    expect(await s.next(offer)).toBe(2);
    expect(await s.read(offer, 1)).toEqual(chunkOf(data, 1));
    for (let i = 2; i < 5; i++) await s.store(offer, i, chunkOf(data, i));
    expect(await s.next(offer)).toBe(5);
    expect(await s.verify(offer)).toBe(true);
    // Another file and another room do not count.
    expect(await s.next(offerOf(data, fileId(2)))).toBe(0);
    expect(await new IdbFileStore(await dbm.openDb(), key, 'cd'.repeat(16)).next(offer)).toBe(0);
  });

  it('an empty file is one empty chunk', async () => {
    const { s } = await store();
    const offer = offerOf(new Uint8Array(0));
    await s.store(offer, 0, new Uint8Array(0));
    expect(await s.next(offer)).toBe(1);
    expect(await s.verify(offer)).toBe(true);
    expect((await s.blob(offer, DEFAULT_FILE_LIMIT)).size).toBe(0);
  });

  it('refuses a tampered record (crypto.auth), a record moved to another index or file, and a malformed one', async () => {
    const { s, db } = await store();
    const data = bytesOf(2 * FILE_CHUNK);
    const offer = offerOf(data);
    await s.store(offer, 0, chunkOf(data, 0));
    await s.store(offer, 1, chunkOf(data, 1));
    const k0 = chunkRecordKey(ROOM, offer.file, 0);
    const k1 = chunkRecordKey(ROOM, offer.file, 1);
    const r0 = (await db.get('files', k0))!;
    const r1 = (await db.get('files', k1))!;

    const flipped = r0.slice();
    flipped[40] = flipped[40]! ^ 1;
    await db.put('files', flipped, k0);
    expect(await code(s.read(offer, 0))).toBe('crypto.auth');
    expect(await s.verify(offer)).toBe(false);

    await db.put('files', r1, k0); // chunk 1's record at index 0 (same length: only the binding catches it)
    expect(await code(s.read(offer, 0))).toBe('crypto.auth');
    await db.put('files', r0, chunkRecordKey(ROOM, fileId(9), 0)); // to another file
    expect(await code(s.read(offerOf(data, fileId(9)), 0))).toBe('crypto.auth');
    await db.put('files', r0, chunkRecordKey('cd'.repeat(16), offer.file, 0)); // to another room
    const other = new IdbFileStore(db, (s as unknown as { key: ReturnType<typeof generateAeadKey> }).key, 'cd'.repeat(16));
    expect(await code(other.read(offer, 0))).toBe('crypto.auth');

    await db.put('files', r0.subarray(0, 20), k0);
    expect(await code(s.read(offer, 0))).toBe('storage.record');
    const badVersion = r0.slice();
    badVersion[0] = 2;
    await db.put('files', badVersion, k0);
    expect(await code(s.read(offer, 0))).toBe('storage.record');

    await db.put('files', r0, k0);
    expect(await s.read(offer, 0)).toEqual(chunkOf(data, 0));
    expect(await s.verify(offer)).toBe(true);
  });

  it('a record sealed under another key does not open', async () => {
    const { s, db } = await store();
    const data = bytesOf(10);
    const offer = offerOf(data);
    await s.store(offer, 0, data);
    const stranger = new IdbFileStore(db, generateAeadKey(), ROOM);
    expect(await code(stranger.read(offer, 0))).toBe('crypto.auth');
    expect(await stranger.verify(offer)).toBe(false);
  });

  it('verify() is false when a chunk is missing or the bytes do not hash to the offer', async () => {
    const { s } = await store();
    const data = bytesOf(FILE_CHUNK + 1);
    const offer = offerOf(data);
    await s.store(offer, 0, chunkOf(data, 0));
    expect(await s.verify(offer)).toBe(false);
    const wrong = chunkOf(data, 1).slice();
    wrong[0] = wrong[0]! ^ 0xff;
    await s.store(offer, 1, wrong);
    expect(await s.verify(offer)).toBe(false);
  });

  it('store() refuses a chunk of the wrong length; read() of a chunk never stored is file.gone', async () => {
    const { s } = await store();
    const data = bytesOf(FILE_CHUNK + 5);
    const offer = offerOf(data);
    expect(await code(s.store(offer, 1, new Uint8Array(6)))).toBe('file.chunk-size');
    expect(await code(s.read(offer, 0))).toBe('file.gone');
  });

  it('remove() deletes that file only', async () => {
    const { s, db } = await store();
    const a = offerOf(bytesOf(100), fileId(1));
    const b = offerOf(bytesOf(100), fileId(2));
    await s.store(a, 0, bytesOf(100));
    await s.store(b, 0, bytesOf(100));
    await s.remove(a.file);
    expect(await db.getAllKeys('files')).toEqual([chunkRecordKey(ROOM, b.file, 0)]);
  });
});

describe('IdbFileStore: the known-files list (it holds file keys)', () => {
  it('is sealed, survives a reopen, and a tampered copy is refused, never read as empty', async () => {
    const { s, db } = await store();
    const o = offerOf(bytesOf(10));
    expect(await s.loadKnown()).toEqual([]);
    const list = [{ offer: o, from: 'a'.repeat(32) as never, idx: 4, mine: false, accepted: true, complete: false }];
    await s.saveKnown(list);
    const raw = (await db.get('files', knownKey(ROOM)))!;
    expect(toHex(raw)).not.toContain(toHex(o.fkey));
    const again = new IdbFileStore(db, (s as unknown as { key: ReturnType<typeof generateAeadKey> }).key, ROOM);
    const back = await again.loadKnown();
    expect(back).toHaveLength(1);
    expect(toHex(back[0]!.offer.fkey)).toBe(toHex(o.fkey));
    expect(back[0]).toMatchObject({ idx: 4, accepted: true, complete: false });
    // Not part of any file's chunks; deleted with the room's range.
    expect(await s.next(o)).toBe(0);
    const bad = raw.slice();
    bad[20] = bad[20]! ^ 1;
    await db.put('files', bad, knownKey(ROOM));
    expect(await code(s.loadKnown())).toBe('crypto.auth');
  });
});

describe('IdbFileStore.prepare: a picked file, hashed streaming and copied', () => {
  it('hashes the Blob slice by slice (same as node:crypto), stores every chunk, and serves reads', async () => {
    const { s } = await store();
    const data = bytesOf(3 * FILE_CHUNK + 123, 3);
    const blob = new Blob([data as Uint8Array<ArrayBuffer>]);
    const seen: number[] = [];
    const hash = await s.prepare(blob, fileId(5), DEFAULT_FILE_LIMIT, (done) => seen.push(done));
    expect(toHex(hash)).toBe(createHash('sha256').update(data).digest('hex'));
    expect(seen).toEqual([1, 2, 3, 4]);
    const offer = { ...offerOf(data, fileId(5)), hash };
    expect(await s.next(offer)).toBe(4);
    expect(await s.read(offer, 3)).toEqual(chunkOf(data, 3));
    // After a reload the Blob is gone: reads come from the sealed records.
    const again = new IdbFileStore(await dbm.openDb(), (s as unknown as { key: ReturnType<typeof generateAeadKey> }).key, ROOM);
    expect(await again.read(offer, 3)).toEqual(chunkOf(data, 3));
    expect(await again.verify(offer)).toBe(true);
    const whole = await again.blob(offer, DEFAULT_FILE_LIMIT);
    expect(whole.type).toBe('application/octet-stream'); // a download, whatever the offer's mime said
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(data);
  });

  it('never reads the whole Blob at once: every slice is at most one chunk', async () => {
    const { s } = await store();
    const blob = new Blob([bytesOf(4 * FILE_CHUNK) as Uint8Array<ArrayBuffer>]);
    const sizes: number[] = [];
    const spy = {
      size: blob.size,
      slice: (a: number, b: number) => {
        sizes.push(b - a);
        return blob.slice(a, b);
      },
    } as unknown as Blob;
    await s.prepare(spy, fileId(6), DEFAULT_FILE_LIMIT);
    expect(sizes).toEqual([FILE_CHUNK, FILE_CHUNK, FILE_CHUNK, FILE_CHUNK]);
  });

  it('refuses a file above the limit before reading it (file.too-large), and the receiver refuses one too', async () => {
    const { s, db } = await store();
    const blob = new Blob([bytesOf(1000) as Uint8Array<ArrayBuffer>]);
    let sliced = false;
    const spy = { size: blob.size, slice: () => ((sliced = true), blob) } as unknown as Blob;
    expect(await code(s.prepare(spy, fileId(7), 999))).toBe('file.too-large');
    expect(sliced).toBe(false);
    expect(await db.getAllKeys('files')).toEqual([]);
    const offer = offerOf(bytesOf(1000));
    expect(await code(s.blob(offer, 999))).toBe('file.too-large');
  });
});

describe('deriveFilesKey / hkdfSha256', () => {
  it('matches RFC 5869 test case 2 (SHA-256, long inputs)', async () => {
    const range = (a: number, b: number): Uint8Array => Uint8Array.from({ length: b - a + 1 }, (_, i) => a + i);
    const okm = await hkdfSha256(range(0x00, 0x4f), range(0xb0, 0xff), 82, range(0x60, 0xaf));
    expect(toHex(okm)).toBe(
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
    );
  });

  it('refuses a short key and a bad length; the files key depends on the data key only', async () => {
    expect(await code(hkdfSha256(new Uint8Array(16), new Uint8Array(0)))).toBe('crypto.key');
    expect(await code(hkdfSha256(new Uint8Array(32), new Uint8Array(0), 0))).toBe('crypto.input');
    const d = fromHex('11'.repeat(32), 32);
    expect(toHex(await deriveFilesKey(d))).toBe(toHex(await deriveFilesKey(d)));
    expect(toHex(await deriveFilesKey(d))).not.toBe(toHex(await deriveFilesKey(fromHex('12'.repeat(32), 32))));
    expect(toHex(await deriveFilesKey(d))).not.toBe(toHex(d));
    asAeadKey(await deriveFilesKey(d));
  });
});

describe('sniffImage and safeFileName', () => {
  const head = (...parts: Array<number[] | string>): Uint8Array =>
    Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

  it('knows PNG, JPEG, GIF and WebP by their first bytes', () => {
    expect(sniffImage(head([0x89], 'PNG', [0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]))).toBe('png');
    expect(sniffImage(head([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImage(head('GIF89a'))).toBe('gif');
    expect(sniffImage(head('GIF87a'))).toBe('gif');
    expect(sniffImage(head('RIFF', [1, 2, 3, 4], 'WEBP'))).toBe('webp');
  });

  it('everything else is not an image, whatever its name or mime would say: SVG, HTML, truncated heads', () => {
    expect(sniffImage(head('<svg xmlns="http://www.w3.org/2000/svg" onload="x()">'))).toBeNull();
    expect(sniffImage(head('<?xml version="1.0"?><svg>'))).toBeNull();
    expect(sniffImage(head('<!DOCTYPE html><html>'))).toBeNull();
    expect(sniffImage(head('RIFF', [1, 2, 3, 4], 'WAVE'))).toBeNull();
    expect(sniffImage(head([0x89], 'PNG'))).toBeNull();
    expect(sniffImage(head('GIF8'))).toBeNull();
    expect(sniffImage(new Uint8Array(0))).toBeNull();
  });

  it('safeFileName: no paths, controls, leading dots or reserved names; bounded length', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('C:\\Users\\x\\evil.exe')).toBe('evil.exe');
    expect(safeFileName('.bashrc')).toBe('bashrc');
    expect(safeFileName('a\u202egnp.exe')).toBe('a_gnp.exe');
    expect(safeFileName('CON.txt')).toBe('_CON.txt');
    expect(safeFileName('...')).toBe('file');
    expect(safeFileName(`${'x'.repeat(300)}.png`)).toHaveLength(120);
    expect(safeFileName(`${'x'.repeat(300)}.png`).endsWith('.png')).toBe(true);
  });
});
