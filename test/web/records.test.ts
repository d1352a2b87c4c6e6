/**
 * Decoders the web app runs on data it did not produce in this process: the server's /config.json
 * (network), the sealed storage records (disk), ICE server text (user), scanned QR text (camera).
 */
import { describe, expect, it } from 'vitest';
import { encode } from '../../protocol/msgpack.ts';
import { RecordError } from '../../protocol/room/records.ts';
import { decodeSettings, DEFAULT_FILE_LIMIT_MIB, encodeSettings, seqKey } from '../../web/session/records.ts';
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
  fileLimitMiB: 250,
};

// History, outbox, room and identity records are the shared codecs: test/room/records.test.ts.
describe('settings record codec', () => {
  const good = () => encodeSettings(settings);

  it('round-trips, with and without ICE credentials', () => {
    expect(decodeSettings(good())).toEqual(settings);
    const plain = { ...settings, iceServers: [{ urls: ['stun:127.0.0.1:3478'] }] };
    expect(decodeSettings(encodeSettings(plain))).toEqual(plain);
  });

  it('refuses unknown and missing fields, wrong types, unknown versions and trailing bytes with RecordError', () => {
    const fields = {
      v: 1,
      displayName: '',
      signalingUrl: '',
      serverKey: '',
      iceServers: [],
      relayOnly: false,
      customIce: false,
      everyMessages: 0,
      everyMinutes: 0,
    };
    for (const [bad, why] of [
      [{ ...fields, extra: 1 }, /extra/],
      [{ v: 1, displayName: 'x' }, /missing/],
      [{ ...fields, relayOnly: 1 }, /relayOnly/],
      [{ ...fields, everyMessages: -1 }, /everyMessages/],
      [{ ...fields, everyMinutes: 1.5 }, /everyMinutes/],
      [{ ...fields, v: 2 }, /version 2/],
      [{ ...fields, iceServers: [{ urls: ['stun:a'], password: 'x' }] }, /password/],
      [{ ...fields, iceServers: [{ urls: [1] }] }, /urls/],
      [{ ...fields, iceServers: Array.from({ length: 33 }, () => ({ urls: ['stun:a'] })) }, /iceServers/],
      [{ ...fields, displayName: 'x'.repeat(257) }, /displayName/],
      [{ ...fields, fileLimitMiB: 0 }, /fileLimitMiB/],
      [{ ...fields, fileLimitMiB: 1024 * 1024 + 1 }, /fileLimitMiB/],
      [{ ...fields, fileLimitMiB: '100' }, /fileLimitMiB/],
    ] as const) {
      expect(() => decodeSettings(encode(bad))).toThrow(RecordError);
      expect(() => decodeSettings(encode(bad))).toThrow(why);
    }
    expect(() => decodeSettings(new Uint8Array([...good(), 0]))).toThrow(RecordError);
  });

  it('a record written before files (no fileLimitMiB) decodes with the 100 MiB default', () => {
    const { fileLimitMiB, ...old } = settings;
    expect(fileLimitMiB).toBe(250);
    const bytes = encode({
      v: 1,
      displayName: old.displayName,
      signalingUrl: old.signalingUrl,
      serverKey: old.serverKey,
      iceServers: old.iceServers.map((i) => ({ ...i, urls: [...i.urls] })),
      relayOnly: old.relayOnly,
      customIce: old.customIce,
      everyMessages: old.rotation.everyMessages,
      everyMinutes: old.rotation.everyMinutes,
    });
    expect(decodeSettings(bytes)).toEqual({ ...old, fileLimitMiB: DEFAULT_FILE_LIMIT_MIB });
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
