import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateAeadKey, sha256 } from '../../crypto/index.ts';
import { encode } from '../../protocol/msgpack.ts';
import { DecodeError } from '../../protocol/errors.ts';
import {
  asFileId,
  checkOfferSize,
  chunkCount,
  chunkPlainLength,
  decodeFileControl,
  decodeFileOffer,
  encodeFileControl,
  encodeFileOffer,
  evictForBudget,
  FILE_CHUNK,
  FILE_ERROR_CODES,
  FileError,
  MAX_FILE_SIZE,
  safeFileName,
  transfersToStop,
  type FileOffer,
} from '../../protocol/files/index.ts';
import { expectThrows } from '../crypto/expect-error.ts';

const offer = (size = 1000): FileOffer => ({
  file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
  name: 'photo.png',
  size,
  mime: 'image/png',
  chunk: FILE_CHUNK,
  hash: sha256(new Uint8Array(0)),
  fkey: generateAeadKey(),
  ts: 1_700_000_000_000,
});

const fields = (o: FileOffer): Record<string, unknown> => ({
  type: 'file',
  file: o.file,
  name: o.name,
  size: o.size,
  mime: o.mime,
  chunk: o.chunk,
  hash: o.hash,
  fkey: o.fkey,
  ts: o.ts,
});
// Test-only: build a body with one field changed (values are msgpack-encodable).
const withField = (o: FileOffer, k: string, v: unknown): Uint8Array => encode({ ...fields(o), [k]: v } as Parameters<typeof encode>[0]);

describe('file offer (PROTOCOL 5.17.1)', () => {
  it('round-trips', () => {
    const o = offer(5 * FILE_CHUNK + 3);
    expect(decodeFileOffer(encodeFileOffer(o))).toEqual(o);
  });
  it('refuses malformed, oversized and unknown input with DecodeError', () => {
    const o = offer();
    const bad: [string, Uint8Array][] = [
      ['file id of 15 bytes', withField(o, 'file', new Uint8Array(15))],
      ['negative size', withField(o, 'size', -1)],
      ['size above 2^40', withField(o, 'size', MAX_FILE_SIZE + 1)],
      ['float size', withField(o, 'size', 1.5)],
      ['other chunk size', withField(o, 'chunk', 262144)],
      ['hash of 31 bytes', withField(o, 'hash', new Uint8Array(31))],
      ['key of 16 bytes', withField(o, 'fkey', new Uint8Array(16))],
      ['empty name', withField(o, 'name', '')],
      ['name of 256 characters', withField(o, 'name', 'a'.repeat(256))],
      ['mime of 128 characters', withField(o, 'mime', 'a'.repeat(128))],
      ['unknown field', withField(o, 'extra', 1)],
      ['wrong type', withField(o, 'type', 'text')],
      ['name as bytes', withField(o, 'name', new Uint8Array(3))],
      ['oversized body', new Uint8Array(1025)],
      ['trailing bytes', new Uint8Array([...encodeFileOffer(o), 0])],
      ['not a map', encode([1, 2])],
    ];
    for (const [what, bytes] of bad) expect(() => decodeFileOffer(bytes), what).toThrow();
    for (const [, bytes] of bad.slice(0, 13)) expect(() => decodeFileOffer(bytes)).toThrow(DecodeError);
  });
  it('chunk geometry: 256 KiB chunks, the last shorter, an empty file is one empty chunk', () => {
    expect(chunkCount(0)).toBe(1);
    expect(chunkPlainLength(0, 0)).toBe(0);
    expect(chunkCount(FILE_CHUNK)).toBe(1);
    expect(chunkCount(FILE_CHUNK + 1)).toBe(2);
    expect(chunkPlainLength(FILE_CHUNK + 1, 1)).toBe(1);
    expect(chunkCount(2 ** 30)).toBe(16384);
    expect(() => chunkPlainLength(10, 1)).toThrow(RangeError);
  });
  it('a receiver limit refuses larger offers with file.too-large', () => {
    expectThrows(() => checkOfferSize(offer(101 * 1024 * 1024), 100 * 1024 * 1024), FileError, 'file.too-large');
    expect(() => checkOfferSize(offer(1000), 100 * 1024 * 1024)).not.toThrow();
  });
});

describe('safeFileName', () => {
  it.each([
    ['../../etc/passwd', 'passwd'],
    ['C:\\Windows\\system32\\evil.exe', 'evil.exe'],
    ['.bashrc', 'bashrc'],
    ['...', 'file'],
    ['', 'file'],
    ['a\u0000b\nc.txt', 'a_b_c.txt'],
    ['report\u202egnp.exe', 'report_gnp.exe'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['name. ', 'name'],
    ['<script>.html', '_script_.html'],
  ])('%j -> %j', (label, safe) => expect(safeFileName(label)).toBe(safe));
  it('keeps the extension when it shortens a long name', () => {
    const s = safeFileName(`${'x'.repeat(300)}.jpeg`);
    expect(s.length).toBe(120);
    expect(s.endsWith('.jpeg')).toBe(true);
  });
});

describe('file control messages (PROTOCOL 5.17.3)', () => {
  const file = asFileId(new Uint8Array(16).fill(1));
  it('round-trip', () => {
    for (const m of [
      { type: 'file-want', file, from: 0, to: 256 },
      { type: 'file-decline', file },
      { type: 'file-cancel', file, code: 'file.removed' },
    ] as const)
      expect(decodeFileControl(encodeFileControl(m))).toEqual(m);
  });
  it('refuse malformed input', () => {
    const bad = [
      { type: 'file-want', file, from: 0, to: 257 }, // grant above 256 chunks
      { type: 'file-want', file, from: 5, to: 5 }, // empty grant
      { type: 'file-want', file, from: -1, to: 3 },
      { type: 'file-want', file, from: 0 },
      { type: 'file-want', file, from: 0, to: 1, extra: true },
      { type: 'file-decline', file: new Uint8Array(17) },
      { type: 'file-cancel', file, code: 'room.replay' },
      { type: 'file-cancel', file },
      { type: 'file-chunk', file },
    ];
    for (const m of bad) expect(() => decodeFileControl(encode(m as Parameters<typeof encode>[0])), JSON.stringify(m)).toThrow(DecodeError);
    expect(() => decodeFileControl(new Uint8Array(257))).toThrow(DecodeError);
  });
});

describe('owner history and removal (PROTOCOL 5.17.5)', () => {
  it('drops the oldest files until the new one fits', () => {
    const kept = [
      { id: 'c', size: 400, idx: 9 },
      { id: 'a', size: 400, idx: 1 },
      { id: 'b', size: 400, idx: 5 },
    ];
    expect(evictForBudget(kept, 100, 1000)).toEqual(['a']);
    expect(evictForBudget(kept, 900, 1000)).toEqual(['a', 'b', 'c']);
    expect(evictForBudget(kept, 0, 2000)).toEqual([]);
    expect(kept.map((k) => k.id)).toEqual(['c', 'a', 'b']); // input not mutated
  });
  it('a removed member stops what it sends and receives, and the relays of its incomplete files', () => {
    const t = [
      { file: 'f1', peer: 'eve', sender: 'eve', direction: 'in', complete: false },
      { file: 'f1', peer: 'bob', sender: 'eve', direction: 'out', complete: false },
      { file: 'f2', peer: 'eve', sender: 'bob', direction: 'out', complete: false },
      { file: 'f3', peer: 'bob', sender: 'eve', direction: 'out', complete: true },
      { file: 'f4', peer: 'bob', sender: 'carol', direction: 'out', complete: false },
    ] as const;
    const stop = transfersToStop(t, 'eve');
    expect(stop.map((s) => `${s.transfer.file}:${s.transfer.peer}`)).toEqual(['f1:eve', 'f1:bob', 'f2:eve']);
    expect(stop.every((s) => s.code === 'file.removed')).toBe(true);
  });
});

describe('error codes', () => {
  it('every file error code is in the table of PROTOCOL.md section 7', () => {
    const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    for (const code of FILE_ERROR_CODES) expect(doc, code).toContain(`| ${code} | files |`);
  });
});
