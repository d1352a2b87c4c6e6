// The CLI's disk FileStore (signaling/file-store.ts) and the file commands of the JSON-lines decoder:
// chunks written at their offset and read back, the resume point from the part file, export under a
// safe name that never overwrites, the sealed record's strict decoder, and bad commands refused.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAeadKey, initCrypto } from '../../crypto/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { asFileId, FILE_CHUNK, type FileOffer } from '../../protocol/files/index.ts';
import { encode } from '../../protocol/msgpack.ts';
import { decodeFilesRecord, DiskFileStore, encodeFilesRecord } from '../../signaling/file-store.ts';
import { CommandError, parseHostCommand, parseJoinCommand } from '../../signaling/json-lines.ts';

let tmp: string;
beforeAll(async () => {
  await initCrypto();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-file-store-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function offerOf(bytes: Uint8Array, name: string): FileOffer {
  return {
    file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
    name,
    size: bytes.length,
    mime: '',
    chunk: FILE_CHUNK,
    hash: new Uint8Array(createHash('sha256').update(bytes).digest()),
    fkey: generateAeadKey(),
    ts: 0,
  };
}

describe('DiskFileStore', () => {
  it('stores chunks at their offset, resumes from whole chunks, verifies, exports without overwriting', async () => {
    let record: Uint8Array | null = null;
    const port = { read: async () => record, write: async (b: Uint8Array) => void (record = b) };
    const store = await DiskFileStore.open(path.join(tmp, 'files'), port);
    const bytes = new Uint8Array(randomBytes(3 * FILE_CHUNK + 10));
    const offer = offerOf(bytes, '../../etc/passwd');
    expect(await store.next(offer)).toBe(0);
    await store.store(offer, 0, bytes.subarray(0, FILE_CHUNK));
    await store.store(offer, 1, bytes.subarray(FILE_CHUNK, 2 * FILE_CHUNK));
    expect(await store.next(offer)).toBe(2);
    expect(await store.verify(offer)).toBe(false);
    // A restarted process: a new store over the same directory.
    const again = await DiskFileStore.open(path.join(tmp, 'files'), port);
    expect(await again.next(offer)).toBe(2);
    await again.store(offer, 2, bytes.subarray(2 * FILE_CHUNK, 3 * FILE_CHUNK));
    await again.store(offer, 3, bytes.subarray(3 * FILE_CHUNK));
    expect(await again.next(offer)).toBe(4);
    expect(await again.verify(offer)).toBe(true);
    expect(await again.read(offer, 3)).toEqual(bytes.subarray(3 * FILE_CHUNK));
    const dl = path.join(tmp, 'dl');
    const first = await again.export(offer, dl);
    const second = await again.export(offer, dl);
    expect(path.basename(first)).toBe('passwd'); // the last segment only (safeFileName)
    expect(path.basename(second)).toBe('passwd (1)');
    expect(new Uint8Array(await readFile(second))).toEqual(bytes);
    await again.remove(offer.file);
    expect(await again.next(offer)).toBe(0);
    expect(new Uint8Array(await readFile(first))).toEqual(bytes); // the exported copy stays
    await again.close();
    await store.close();
  });

  it('reads an own file from its path; the path survives a restart through the record', async () => {
    let record: Uint8Array | null = null;
    const port = { read: async () => record, write: async (b: Uint8Array) => void (record = b) };
    const src = path.join(tmp, 'own.bin');
    const bytes = new Uint8Array(randomBytes(FILE_CHUNK + 5));
    await writeFile(src, bytes);
    const store = await DiskFileStore.open(path.join(tmp, 'files2'), port);
    const offer = offerOf(bytes, 'own.bin');
    await store.addSource(offer.file, src);
    await store.saveKnown([{ offer, from: 'a'.repeat(32) as never, idx: 3, mine: true, accepted: true, complete: true }]);
    const again = await DiskFileStore.open(path.join(tmp, 'files2'), port);
    expect((await again.loadKnown()).map((k) => k.offer.name)).toEqual(['own.bin']);
    expect(await again.read(offer, 1)).toEqual(bytes.subarray(FILE_CHUNK));
    expect(await again.verify(offer)).toBe(true);
    await again.remove(offer.file); // an own file is never deleted
    expect(new Uint8Array(await readFile(src))).toEqual(bytes);
    await again.close();
    await store.close();
  });

  it('the record decoder is strict', () => {
    const ok = encodeFilesRecord({ known: [], sources: new Map([['00'.repeat(16), '/x']]) });
    expect(decodeFilesRecord(ok).sources.get('00'.repeat(16))).toBe('/x');
    const known = encode({ v: 1, files: [] });
    const bad = [
      encode({ v: 2, known, sources: [] }),
      encode({ v: 1, known, sources: [], more: 1 }),
      encode({ v: 1, known, sources: [{ file: new Uint8Array(15), path: '/x' }] }),
      encode({ v: 1, known, sources: [{ file: new Uint8Array(16), path: 'relative' }] }),
      encode({
        v: 1,
        known,
        sources: [
          { file: new Uint8Array(16), path: '/x' },
          { file: new Uint8Array(16), path: '/y' },
        ],
      }),
    ];
    for (const b of bad) expect(() => decodeFilesRecord(b)).toThrow(DecodeError);
  });
});

describe('file commands (JSON lines)', () => {
  it('decodes the four file commands for host and join', () => {
    for (const parse of [parseHostCommand, parseJoinCommand]) {
      expect(parse('{"cmd":"send-file","path":"/tmp/a b.txt"}')).toEqual({ cmd: 'send-file', path: '/tmp/a b.txt' });
      for (const cmd of ['accept-file', 'decline-file', 'cancel-file'])
        expect(parse(JSON.stringify({ cmd, file: 'ab'.repeat(16) }))).toEqual({ cmd, file: 'ab'.repeat(16) });
    }
  });

  it('refuses bad paths, ids and extra fields', () => {
    const bad = [
      '{"cmd":"send-file"}',
      '{"cmd":"send-file","path":""}',
      '{"cmd":"send-file","path":5}',
      `{"cmd":"send-file","path":"${'x'.repeat(5000)}"}`,
      '{"cmd":"send-file","path":"a\\u0000b"}',
      '{"cmd":"send-file","path":"a","file":"x"}',
      '{"cmd":"accept-file","file":"AB"}',
      `{"cmd":"accept-file","file":"${'AB'.repeat(16)}"}`,
      `{"cmd":"cancel-file","file":"${'ab'.repeat(17)}"}`,
      `{"cmd":"decline-file","file":"${'ab'.repeat(16)}","path":"x"}`,
    ];
    for (const line of bad) expect(() => parseJoinCommand(line), line).toThrow(CommandError);
  });
});
