/**
 * Decoders the web app runs on data it did not produce in this process: the server's /config.json
 * (network), the sealed storage records (disk), ICE server text (user), scanned QR text (camera).
 */
import { describe, expect, it } from 'vitest';
import { encode } from '../../protocol/msgpack.ts';
import {
  decodeHistory,
  decodeOutbox,
  decodeSettings,
  encodeHistory,
  encodeOutbox,
  encodeSettings,
  seqKey,
} from '../../web/session/records.ts';
import { parseServerConfig } from '../../web/session/server-config.ts';
import type { Settings } from '../../web/session/types.ts';
import { looksLikeInvite } from '../../web/views/scanner.ts';
import { parseIceText } from '../../web/views/settings.ts';
import { UiError } from '../../web/strings.ts';

const settings: Settings = {
  displayName: 'Ada <b>',
  signalingUrl: 'ws://127.0.0.1:8765',
  serverKey: 'ab'.repeat(32),
  iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'p' }, { urls: ['stun:127.0.0.1:3478'] }],
  relayOnly: true,
  customIce: true,
  rotation: { everyMessages: 100, everyMinutes: 60 },
};

describe('storage record codecs', () => {
  it('round-trip settings, history and outbox records', () => {
    expect(decodeSettings(encodeSettings(settings))).toEqual(settings);
    const h = { idx: 4, senderId: 'abc', senderName: 'n', seq: 7, text: '<script>x</script>', at: 1700000000000, system: false };
    expect(decodeHistory(encodeHistory(h))).toEqual(h);
    const owned = { ...h, epoch: 2, env: new Uint8Array([9, 9, 9]) };
    expect(decodeHistory(encodeHistory(owned))).toEqual(owned);
    const o = { seq: 3, text: 'pending', at: 5, wire: new Uint8Array([1, 2]) };
    expect(decodeOutbox(encodeOutbox(o))).toEqual(o);
  });

  it('refuse wrong field types, missing fields, unknown versions and trailing bytes', () => {
    const good = { v: 1, seq: 3, text: 'x', at: 5, wire: new Uint8Array([1]) };
    expect(() => decodeOutbox(encode({ ...good, seq: '3' }))).toThrow(/seq/);
    expect(() => decodeOutbox(encode({ ...good, seq: 1.5 }))).toThrow(/seq/);
    expect(() => decodeOutbox(encode({ ...good, seq: -1 }))).toThrow(/seq/);
    expect(() => decodeOutbox(encode({ v: 1, seq: 3, at: 5, wire: new Uint8Array([1]) }))).toThrow(/text/);
    expect(() => decodeOutbox(encode({ ...good, v: 2 }))).toThrow(/v/);
    expect(() => decodeOutbox(new Uint8Array([...encode(good), 0]))).toThrow();
    expect(() => decodeHistory(encode({ v: 1, idx: 1, senderId: 'a', senderName: 'b', seq: 1, text: 't', at: 1, system: 1 }))).toThrow(
      /system/,
    );
    expect(() => decodeSettings(encode({ v: 1, displayName: 'x' }))).toThrow(/missing/);
  });

  it('refuse oversized texts and lists', () => {
    expect(() => decodeOutbox(encode({ v: 1, seq: 1, text: 'x'.repeat(64 * 1024 + 1), at: 1, wire: new Uint8Array([1]) }))).toThrow(/text/);
    const many = Array.from({ length: 33 }, () => ({ urls: ['stun:a'] }));
    const raw = encode({
      v: 1,
      displayName: '',
      signalingUrl: '',
      serverKey: '',
      iceServers: many,
      relayOnly: false,
      customIce: false,
      everyMessages: 0,
      everyMinutes: 0,
    });
    expect(() => decodeSettings(raw)).toThrow(/iceServers/);
  });

  it('sequence keys sort numerically as strings', () => {
    const keys = [10, 9, 100, 1].map((n) => seqKey('room', n)).sort();
    expect(keys).toEqual([1, 9, 10, 100].map((n) => seqKey('room', n)));
  });
});

describe('/config.json decoder', () => {
  const good = {
    iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }, { urls: 'stun:127.0.0.1' }],
    appUrl: 'http://127.0.0.1:8765/',
    signalingUrl: 'ws://127.0.0.1:8765',
    serverKey: 'ab'.repeat(32),
  };

  it('accepts the server format and normalises urls', () => {
    const c = parseServerConfig(good);
    expect(c.appUrl).toBe('http://127.0.0.1:8765');
    expect(c.iceServers[1]?.urls).toEqual(['stun:127.0.0.1']);
  });

  it('refuses wrong shapes instead of casting them', () => {
    expect(() => parseServerConfig(null)).toThrow();
    expect(() => parseServerConfig([])).toThrow();
    expect(() => parseServerConfig({ ...good, appUrl: 5 })).toThrow(/appUrl/);
    expect(() => parseServerConfig({ ...good, iceServers: {} })).toThrow(/iceServers/);
    expect(() => parseServerConfig({ ...good, iceServers: [{ urls: [1] }] })).toThrow(/urls/);
    expect(() => parseServerConfig({ ...good, iceServers: [{ urls: ['turn:x'], username: 7 }] })).toThrow(/username/);
    expect(() => parseServerConfig({ ...good, iceServers: Array.from({ length: 33 }, () => ({ urls: 'stun:x' })) })).toThrow(/iceServers/);
    expect(() => parseServerConfig({ ...good, signalingUrl: 'x'.repeat(3000) })).toThrow(/signalingUrl/);
  });
});

describe('user and camera input', () => {
  it('ICE server lines: url list, optional username and credential; non-STUN/TURN urls refused', () => {
    expect(parseIceText('turn:127.0.0.1:3478?transport=udp alice s3cret\n\n stun:a,stun:b ')).toEqual([
      { urls: ['turn:127.0.0.1:3478?transport=udp'], username: 'alice', credential: 's3cret' },
      { urls: ['stun:a', 'stun:b'] },
    ]);
    expect(() => parseIceText('http://evil.example')).toThrow(UiError);
  });

  it('the scanner only accepts http(s) links with a #join= fragment', () => {
    expect(looksLikeInvite('https://zeroroom.example/#join=abc')).toBe(true);
    expect(looksLikeInvite('javascript:alert(1)//#join=')).toBe(false);
    expect(looksLikeInvite('https://zeroroom.example/')).toBe(false);
    expect(looksLikeInvite('not a url')).toBe(false);
  });
});
