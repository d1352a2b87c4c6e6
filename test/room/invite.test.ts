// Invite links (docs/PROTOCOL.md section 5.3): version 2 (positional bytes, owner-key
// commitment, room and server left out when derivable) round trips, one test per rule its decoder
// enforces, version-1 links from before still decoding, and the measured link length and QR code
// version for a typical LAN app URL.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import QRCode from 'qrcode';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromHex, generateIdentity, initCrypto, toBase64url, type BoxPublicKey, type EcPublicKey } from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../../protocol/errors.ts';
import {
  decodeInvite,
  decodeInviteUrl,
  defaultServerFor,
  encodeInviteV2,
  inviteUrl,
  ownerKeyCommit,
  roomIdOf,
  type InviteParams,
} from '../../protocol/room/index.ts';
import { Net, device } from './harness.ts';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/state-v1.json', import.meta.url), 'utf8')) as {
  inviteUrlV1: string;
  owner: { ipub: string };
};

let opub: EcPublicKey;
beforeAll(async () => {
  await initCrypto();
  opub = generateIdentity().publicKey;
});

const LAN_APP = 'https://192.168.1.20:8765/';
const npub = new Uint8Array(32).fill(0x42) as BoxPublicKey;

function params(over: Partial<InviteParams> = {}): InviteParams {
  return {
    room: roomIdOf(npub),
    token: new Uint8Array(32).fill(1),
    opub,
    npub,
    server: 'wss://192.168.1.20:8765',
    exp: 1_900_000_000_123,
    ...over,
  };
}

const malformed = (u: string) => expect(() => decodeInviteUrl(u)).toThrow(expect.objectContaining({ code: 'room.invite-malformed' }));
const link = (bytes: Uint8Array, app = LAN_APP) => `${app}#join=${toBase64url(bytes)}`;

describe('invite v2', () => {
  it('round-trips, leaving out the room (derived from npub) and the server (the app origin)', () => {
    const url = inviteUrl(LAN_APP, params());
    expect(decodeInviteUrl(url)).toEqual({
      v: 2,
      room: roomIdOf(npub),
      token: new Uint8Array(32).fill(1),
      opub: null,
      ocommit: ownerKeyCommit(opub),
      npub,
      server: 'wss://192.168.1.20:8765/',
      exp: 1_900_000_000_000, // whole seconds
    });
    expect(encodeInviteV2(params(), LAN_APP)).toHaveLength(86);
  });

  it('carries the room of an older room, a pinned server key, and a server elsewhere', () => {
    const room = new Uint8Array(16).fill(9);
    const spub = new Uint8Array(32).fill(7);
    const inv = decodeInviteUrl(inviteUrl(LAN_APP, params({ room, spub, server: 'wss://signal.example.org/salty' })));
    expect(inv).toMatchObject({ v: 2, room, spub, server: 'wss://signal.example.org/salty' });
    expect(encodeInviteV2(params({ room, spub, server: 'wss://signal.example.org/salty' }), LAN_APP)).toHaveLength(
      86 + 16 + 32 + 'wss://signal.example.org/salty'.length,
    );
  });

  it('names the server in the invite unless it is exactly the app origin in ws(s) form, path /', () => {
    expect(defaultServerFor('http://127.0.0.1:8765/app/')).toBe('ws://127.0.0.1:8765/');
    expect(defaultServerFor(LAN_APP)).toBe('wss://192.168.1.20:8765/');
    const size = (server: string, app = LAN_APP) => encodeInviteV2(params({ server }), app).length;
    expect(size('wss://192.168.1.20:8765/')).toBe(86);
    expect(size('wss://192.168.1.20:8765//')).toBe(86);
    expect(size('ws://192.168.1.20:8765')).toBeGreaterThan(86); // another scheme
    expect(size('wss://192.168.1.20:8766')).toBeGreaterThan(86); // another port
    expect(size('wss://192.168.1.20:8765/signal')).toBeGreaterThan(86); // a path
    expect(size('wss://192.168.1.20:8765/?x=1')).toBeGreaterThan(86); // a query
    expect(size('ws://127.0.0.1:8765', 'http://127.0.0.1:8765/')).toBe(86);
    // The decoder fills the server in from the link it came in.
    expect(decodeInviteUrl(link(encodeInviteV2(params(), LAN_APP), 'http://10.0.0.2:9000/zr/')).server).toBe('ws://10.0.0.2:9000/');
  });

  it('round-trips arbitrary invites', () => {
    fc.assert(
      fc.property(
        fc.record({
          room: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: undefined }),
          token: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          spub: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
          server: fc.constantFrom('wss://192.168.1.20:8765', 'ws://[::1]:9/', 'wss://a.example/x/y?z=1', `wss://h/${'p'.repeat(400)}`),
          exp: fc.nat({ max: 0xffffffff * 1000 }),
        }),
        (r) => {
          const p = params({
            token: r.token,
            server: r.server,
            exp: r.exp,
            ...(r.room ? { room: r.room } : {}),
            ...(r.spub ? { spub: r.spub } : {}),
          });
          const inv = decodeInviteUrl(inviteUrl(LAN_APP, p));
          expect(inv.room).toEqual(p.room);
          expect(inv.token).toEqual(p.token);
          expect(inv.spub).toEqual(p.spub);
          expect(new URL(inv.server).toString()).toBe(new URL(p.server).toString());
          expect(inv.exp).toBe(Math.floor(p.exp / 1000) * 1000);
          expect(inv.ocommit).toEqual(ownerKeyCommit(opub));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses another version byte, unknown flags, and any length that does not match the flags', () => {
    const good = encodeInviteV2(params(), LAN_APP);
    expect(() => decodeInviteUrl(link(good))).not.toThrow();
    malformed(link(Uint8Array.from([3, ...good.subarray(1)])));
    for (const flag of [8, 16, 128]) malformed(link(Uint8Array.from([2, good[1]! | flag, ...good.subarray(2)])));
    malformed(link(good.subarray(0, 85)));
    malformed(link(Uint8Array.from([...good, 0])));
    // Flags that promise fields which are not there.
    for (const flag of [1, 2, 4]) malformed(link(Uint8Array.from([2, flag, ...good.subarray(2)])));
    const withServer = encodeInviteV2(params({ server: 'wss://elsewhere.example/' }), LAN_APP);
    malformed(link(withServer.subarray(0, 86))); // server flagged, no server bytes
  });

  it('refuses a server that is not UTF-8, not a URL, not ws(s), or longer than 512 bytes', () => {
    const head = encodeInviteV2(params(), LAN_APP).slice();
    head[1] = 2;
    const withServer = (s: Uint8Array) => link(Uint8Array.from([...head, ...s]));
    malformed(withServer(Uint8Array.from([0xff, 0xfe])));
    malformed(withServer(new TextEncoder().encode('not a url')));
    malformed(withServer(new TextEncoder().encode('https://192.168.1.20:8765/')));
    malformed(withServer(new TextEncoder().encode(`wss://h/${'p'.repeat(505)}`)));
    expect(() => decodeInviteUrl(withServer(new TextEncoder().encode(`wss://h/${'p'.repeat(504)}`)))).not.toThrow();
    expect(() => encodeInviteV2(params({ server: `wss://h/${'p'.repeat(505)}` }), LAN_APP)).toThrow(RangeError);
  });

  it('without the app URL (decodeInvite on bytes alone) a left-out server cannot be filled in', () => {
    expect(() => decodeInvite(encodeInviteV2(params(), LAN_APP))).toThrow(DecodeError);
    expect(decodeInvite(encodeInviteV2(params(), LAN_APP), LAN_APP).server).toBe('wss://192.168.1.20:8765/');
  });

  it('turns arbitrary v2-looking bytes into a typed error or an invite, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 700 }), fc.nat({ max: 255 }), (rest, flags) => {
        try {
          decodeInviteUrl(link(Uint8Array.from([2, flags & 7, ...rest])));
        } catch (e) {
          expect(e).toBeInstanceOf(ZeroRoomError);
          expect((e as ZeroRoomError).code).toBe('room.invite-malformed');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a v1 link written before this version still decodes (with the full owner key)', () => {
    const inv = decodeInviteUrl(fixture.inviteUrlV1);
    expect(inv.v).toBe(1);
    expect(inv.opub).toEqual(fromHex(fixture.owner.ipub));
    expect(inv.ocommit).toEqual(ownerKeyCommit(inv.opub!));
    expect(inv.name).toBe('fixture room');
    expect(inv.server).toBe('wss://192.168.1.20:8765/');
  });

  it('the machines issue v2 links, and a v2 joiner gets in through the owner-key round trip', () => {
    const net = new Net(device('owner-v2'));
    const url = net.invite();
    expect(decodeInviteUrl(url).v).toBe(2);
    const x = net.join('x', url);
    expect(x.state!.ownerIpub).toBeNull();
    net.run();
    expect(x.state!.phase).toBe('member');
    expect(x.state!.ownerIpub).toEqual(net.ownerDev.identity.publicKey);
    expect(x.state!.roomName).toBe('test room'); // learned from join-accept, not from the link
  });
});

describe('measured: link length and QR code version (error correction M, as the web app draws it)', () => {
  const qrVersion = (text: string) => QRCode.create(text, { errorCorrectionLevel: 'M' }).version;

  it(`a typical link for ${LAN_APP} is at most 200 characters, QR version 10 or lower`, () => {
    const pinned = inviteUrl(LAN_APP, params({ spub: new Uint8Array(32).fill(7) }));
    const plain = inviteUrl(LAN_APP, params());
    const figures = {
      v2Pinned: { chars: pinned.length, qr: qrVersion(pinned) },
      v2: { chars: plain.length, qr: qrVersion(plain) },
      v1: { chars: fixture.inviteUrlV1.length, qr: qrVersion(fixture.inviteUrlV1) },
    };
    console.log(`invite link figures: ${JSON.stringify(figures)}`);
    expect(figures.v2Pinned.chars).toBeLessThanOrEqual(200);
    expect(figures.v2Pinned.qr).toBeLessThanOrEqual(10);
    expect(figures.v2.chars).toBeLessThanOrEqual(figures.v2Pinned.chars);
    expect(figures.v1.qr).toBeGreaterThan(figures.v2Pinned.qr);
    // The token stays 32 bytes and the owner's key is committed to with 128 bits.
    const inv = decodeInviteUrl(pinned);
    expect(inv.token).toHaveLength(32);
    expect(inv.ocommit).toHaveLength(16);
  });
});
