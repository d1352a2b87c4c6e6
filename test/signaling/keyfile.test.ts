import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyFileError, loadOrCreateKeyFile } from '../../signaling/keyfile.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'zr-keyfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (content?: string, mode = 0o600): string => {
  const p = path.join(dir, `k${n++}`);
  if (content !== undefined) {
    writeFileSync(p, content, { mode });
    chmodSync(p, mode);
  }
  return p;
};

describe('key file', () => {
  it('creates a 0600 file of 64 hex chars + newline, and loads the same key back', () => {
    const p = file();
    const created = loadOrCreateKeyFile(p);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    const text = readFileSync(p, 'utf8');
    expect(text).toMatch(/^[0-9a-f]{64}\n$/);
    const loaded = loadOrCreateKeyFile(p);
    expect(loaded.publicKey).toEqual(created.publicKey);
    expect(loaded.publicKey).toEqual(nacl.box.keyPair.fromSecretKey(Buffer.from(text.trim(), 'hex')).publicKey);
  });
  it('accepts a file without the trailing newline', () => {
    expect(loadOrCreateKeyFile(file('ab'.repeat(32))).secretKey).toEqual(new Uint8Array(32).fill(0xab));
  });
  it.each([
    ['too short', 'ab'.repeat(31) + '\n'],
    ['too long', 'ab'.repeat(33) + '\n'],
    ['uppercase', 'AB'.repeat(32) + '\n'],
    ['not hex', 'zz'.repeat(32) + '\n'],
    ['two newlines', 'ab'.repeat(32) + '\n\n'],
    ['leading space', ' ' + 'ab'.repeat(32) + '\n'],
    ['empty', ''],
  ])('refuses a file that is %s', (_what, content) => {
    expect(() => loadOrCreateKeyFile(file(content))).toThrow(KeyFileError);
    expect(() => loadOrCreateKeyFile(file(content))).toThrow(/64 lowercase hex/);
  });
  it.each([0o644, 0o640, 0o604, 0o660])('refuses mode %o (too open)', (mode) => {
    expect(() => loadOrCreateKeyFile(file('ab'.repeat(32) + '\n', mode))).toThrow(/too open/);
  });
  it('refuses a directory and a symlink', () => {
    const d = path.join(dir, 'sub');
    mkdirSync(d, { mode: 0o700 });
    expect(() => loadOrCreateKeyFile(d)).toThrow(KeyFileError);
    const target = file('ab'.repeat(32) + '\n');
    const link = path.join(dir, 'link');
    symlinkSync(target, link);
    expect(() => loadOrCreateKeyFile(link)).toThrow(KeyFileError);
  });
  it('has a stable error code', () => {
    try {
      loadOrCreateKeyFile(file('x'));
    } catch (e) {
      expect((e as KeyFileError).code).toBe('signaling.key-file');
    }
    expect.assertions(1);
  });
});
