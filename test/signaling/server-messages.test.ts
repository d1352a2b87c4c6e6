/** Strict codecs for the client-to-server messages: one test per rule each decoder enforces. */
import msgpack from 'msgpack-lite';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../protocol/errors.ts';
import * as sm from '../../protocol/saltyrtc/server-messages.ts';
import { mp, type Wire } from './mp.ts';

const key = new Uint8Array(32).fill(7);
const cookie = new Uint8Array(16).fill(3);
const T = (t: string): [string, Wire] => ['type', mp.str(t)];
const bad = (f: () => unknown, pattern?: RegExp): void => {
  expect(f).toThrow(DecodeError);
  if (pattern !== undefined) expect(f).toThrow(pattern);
};

describe('server-hello / client-hello', () => {
  for (const [name, decode, encode] of [
    ['server-hello', sm.decodeServerHello, sm.encodeServerHello],
    ['client-hello', sm.decodeClientHello, sm.encodeClientHello],
  ] as const) {
    describe(name, () => {
      it('round-trips and reads msgpack-lite bytes', () => {
        expect(decode(encode({ key }))).toEqual({ type: name, key });
        expect(decode(new Uint8Array(msgpack.encode({ type: name, key: Buffer.from(key) }))).key).toEqual(key);
      });
      it('key as str (hex) instead of bin', () => bad(() => decode(mp.map([T(name), ['key', mp.str('07'.repeat(32))]])), /must be bin/));
      it('key of 31 bytes', () => bad(() => decode(mp.map([T(name), ['key', mp.bin(key.subarray(1))]])), /32 bytes/));
      it('key of 33 bytes', () => bad(() => decode(mp.map([T(name), ['key', mp.bin(new Uint8Array(33))]]))));
      it('missing key', () => bad(() => decode(mp.map([T(name)])), /missing field "key"/));
      it('nil key', () => bad(() => decode(mp.map([T(name), ['key', mp.nil()]]))));
      it('unknown extra field', () => bad(() => decode(mp.map([T(name), ['key', mp.bin(key)], ['x', mp.int(1)]])), /unexpected field/));
      it('wrong type', () => bad(() => decode(mp.map([T('client-auth'), ['key', mp.bin(key)]])), /type must be/));
      it('type as bin', () =>
        bad(() =>
          decode(
            mp.map([
              ['type', mp.bin(new TextEncoder().encode(name))],
              ['key', mp.bin(key)],
            ]),
          ),
        ));
      it('trailing bytes', () => bad(() => decode(mp.cat([encode({ key }), new Uint8Array([0])])), /trailing/));
      it('truncated', () => bad(() => decode(encode({ key }).subarray(0, 20)), /truncated/));
      it('not a map', () => bad(() => decode(mp.arr([mp.str(name), mp.bin(key)])), /expected a map/));
      it('duplicate key field', () => bad(() => decode(mp.map([T(name), ['key', mp.bin(key)], ['key', mp.bin(key)]])), /duplicate/));
      it('encoder refuses a short key', () => expect(() => encode({ key: key.subarray(1) })).toThrow(RangeError));
    });
  }
});

describe('client-auth', () => {
  const valid = (extra: [string, Wire][] = [], drop: string[] = []): Wire =>
    mp.map(
      (
        [
          T('client-auth'),
          ['your_cookie', mp.bin(cookie)],
          ['subprotocols', mp.arr([mp.str('v1.saltyrtc.org')])],
          ['ping_interval', mp.int(0)],
          ...extra,
        ] as [string, Wire][]
      ).filter(([k]) => !drop.includes(k)),
    );

  it('round-trips with and without optional fields', () => {
    const full = { yourCookie: cookie, subprotocols: ['v1.saltyrtc.org', 'x'], pingInterval: 30, yourKey: key };
    expect(sm.decodeClientAuth(sm.encodeClientAuth(full))).toEqual({ type: 'client-auth', ...full });
    expect(sm.decodeClientAuth(sm.encodeClientAuth({ yourCookie: cookie, subprotocols: [] }))).toEqual({
      type: 'client-auth',
      yourCookie: cookie,
      subprotocols: [],
    });
  });
  it('reads the official client form (msgpack-lite)', () => {
    const bytes = new Uint8Array(
      msgpack.encode({ type: 'client-auth', your_cookie: Buffer.from(cookie), subprotocols: ['v1.saltyrtc.org'], ping_interval: 0 }),
    );
    expect(sm.decodeClientAuth(bytes).pingInterval).toBe(0);
  });
  it('missing your_cookie', () => bad(() => sm.decodeClientAuth(valid([], ['your_cookie'])), /your_cookie/));
  it('your_cookie as str', () =>
    bad(
      () => sm.decodeClientAuth(mp.map([T('client-auth'), ['your_cookie', mp.str('a'.repeat(16))], ['subprotocols', mp.arr([])]])),
      /must be bin/,
    ));
  it('your_cookie of 15 bytes', () =>
    bad(
      () => sm.decodeClientAuth(mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie.subarray(1))], ['subprotocols', mp.arr([])]])),
      /16 bytes/,
    ));
  it('missing subprotocols', () => bad(() => sm.decodeClientAuth(valid([], ['subprotocols'])), /subprotocols/));
  it('subprotocols as str', () =>
    bad(() =>
      sm.decodeClientAuth(mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.str('v1.saltyrtc.org')]])),
    ));
  it('subprotocol item as bin', () =>
    bad(
      () =>
        sm.decodeClientAuth(
          mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([mp.bin(new Uint8Array(3))])]]),
        ),
      /item must be str/,
    ));
  it('too many subprotocols', () => {
    const many = Array.from({ length: sm.MAX_SUBPROTOCOLS + 1 }, (_, i) => `p${i}`);
    bad(
      () =>
        sm.decodeClientAuth(new Uint8Array(msgpack.encode({ type: 'client-auth', your_cookie: Buffer.from(cookie), subprotocols: many }))),
      /more than/,
    );
  });
  it('subprotocol name too long', () =>
    bad(
      () =>
        sm.decodeClientAuth(
          mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([mp.str('x'.repeat(257))])]]),
        ),
      /too long/,
    ));
  it('ping_interval as float (2.0)', () =>
    bad(
      () =>
        sm.decodeClientAuth(
          mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([])], ['ping_interval', mp.f64(2)]]),
        ),
      /must be int/,
    ));
  it('ping_interval negative', () =>
    bad(
      () =>
        sm.decodeClientAuth(
          mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([])], ['ping_interval', mp.int(-1)]]),
        ),
      /out of range/,
    ));
  it('ping_interval above 2^31-1', () =>
    bad(
      () =>
        sm.decodeClientAuth(
          mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([])], ['ping_interval', mp.u32(2 ** 31)]]),
        ),
      /out of range/,
    ));
  it('ping_interval nil', () =>
    bad(() =>
      sm.decodeClientAuth(
        mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([])], ['ping_interval', mp.nil()]]),
      ),
    ));
  it('ping_interval as bool', () =>
    bad(() =>
      sm.decodeClientAuth(
        mp.map([T('client-auth'), ['your_cookie', mp.bin(cookie)], ['subprotocols', mp.arr([])], ['ping_interval', mp.bool(true)]]),
      ),
    ));
  it('your_key nil', () => bad(() => sm.decodeClientAuth(valid([['your_key', mp.nil()]]))));
  it('your_key of 16 bytes', () => bad(() => sm.decodeClientAuth(valid([['your_key', mp.bin(cookie)]])), /32 bytes/));
  it('your_key as str', () => bad(() => sm.decodeClientAuth(valid([['your_key', mp.str('k'.repeat(32))]]))));
  it('unknown field', () => bad(() => sm.decodeClientAuth(valid([['my_cookie', mp.bin(cookie)]])), /unexpected field/));
  it('trailing bytes', () => bad(() => sm.decodeClientAuth(mp.cat([valid(), mp.nil()]))));
  it('encoder refuses a 15-byte cookie and a negative ping interval', () => {
    expect(() => sm.encodeClientAuth({ yourCookie: cookie.subarray(1), subprotocols: [] })).toThrow(RangeError);
    expect(() => sm.encodeClientAuth({ yourCookie: cookie, subprotocols: [], pingInterval: -1 })).toThrow(RangeError);
  });
});

describe('server-auth', () => {
  const signed = new Uint8Array(80).fill(9);
  it('round-trips for each role', () => {
    const i = sm.encodeServerAuth({ yourCookie: cookie, signedKeys: signed, responders: [2, 5] });
    expect(sm.decodeServerAuth(i, 'initiator')).toEqual({
      type: 'server-auth',
      yourCookie: cookie,
      signedKeys: signed,
      responders: [2, 5],
    });
    const r = sm.encodeServerAuth({ yourCookie: cookie, initiatorConnected: false });
    expect(sm.decodeServerAuth(r, 'responder')).toEqual({ type: 'server-auth', yourCookie: cookie, initiatorConnected: false });
  });
  const base = (extra: [string, Wire][]): Wire => mp.map([T('server-auth'), ['your_cookie', mp.bin(cookie)], ...extra]);
  it('initiator: responders missing', () => bad(() => sm.decodeServerAuth(base([]), 'initiator'), /responders/));
  it('initiator: responders nil', () => bad(() => sm.decodeServerAuth(base([['responders', mp.nil()]]), 'initiator')));
  it('initiator: initiator_connected present', () =>
    bad(
      () =>
        sm.decodeServerAuth(
          base([
            ['responders', mp.arr([])],
            ['initiator_connected', mp.bool(true)],
          ]),
          'initiator',
        ),
      /unexpected field/,
    ));
  it('initiator: responder id 1', () =>
    bad(() => sm.decodeServerAuth(base([['responders', mp.arr([mp.int(1)])]]), 'initiator'), /out of range/));
  it('initiator: responder id 256', () => bad(() => sm.decodeServerAuth(base([['responders', mp.arr([mp.int(256)])]]), 'initiator')));
  it('initiator: responder id as float', () =>
    bad(() => sm.decodeServerAuth(base([['responders', mp.arr([mp.f64(2)])]]), 'initiator'), /must be int/));
  it('initiator: repeated responder', () =>
    bad(() => sm.decodeServerAuth(base([['responders', mp.arr([mp.int(2), mp.int(2)])]]), 'initiator'), /twice/));
  it('responder: initiator_connected missing', () => bad(() => sm.decodeServerAuth(base([]), 'responder'), /initiator_connected/));
  it('responder: initiator_connected as int 1', () =>
    bad(() => sm.decodeServerAuth(base([['initiator_connected', mp.int(1)]]), 'responder'), /must be bool/));
  it('responder: responders present', () =>
    bad(
      () =>
        sm.decodeServerAuth(
          base([
            ['initiator_connected', mp.bool(true)],
            ['responders', mp.arr([])],
          ]),
          'responder',
        ),
      /unexpected field/,
    ));
  it('signed_keys of 79 bytes', () =>
    bad(
      () =>
        sm.decodeServerAuth(
          base([
            ['responders', mp.arr([])],
            ['signed_keys', mp.bin(signed.subarray(1))],
          ]),
          'initiator',
        ),
      /80 bytes/,
    ));
  it('signed_keys as str', () =>
    bad(() =>
      sm.decodeServerAuth(
        base([
          ['responders', mp.arr([])],
          ['signed_keys', mp.str('x'.repeat(80))],
        ]),
        'initiator',
      ),
    ));
  it('your_cookie missing', () =>
    bad(() => sm.decodeServerAuth(mp.map([T('server-auth'), ['responders', mp.arr([])]]), 'initiator'), /your_cookie/));
  it('encoder wants exactly one role field', () => {
    expect(() => sm.encodeServerAuth({ yourCookie: cookie })).toThrow(RangeError);
    expect(() => sm.encodeServerAuth({ yourCookie: cookie, responders: [], initiatorConnected: true })).toThrow(RangeError);
  });
});

describe('new-initiator, new-responder, drop-responder, send-error, disconnected', () => {
  it('new-initiator round-trips and refuses extra fields', () => {
    expect(sm.decodeNewInitiator(sm.encodeNewInitiator())).toEqual({ type: 'new-initiator' });
    bad(() => sm.decodeNewInitiator(mp.map([T('new-initiator'), ['id', mp.int(1)]])), /unexpected field/);
  });
  it('new-responder round-trips; id 1, 256, float and missing are refused', () => {
    expect(sm.decodeNewResponder(sm.encodeNewResponder({ id: 255 }))).toEqual({ type: 'new-responder', id: 255 });
    bad(() => sm.decodeNewResponder(mp.map([T('new-responder'), ['id', mp.int(1)]])));
    bad(() => sm.decodeNewResponder(mp.map([T('new-responder'), ['id', mp.int(256)]])));
    bad(() => sm.decodeNewResponder(mp.map([T('new-responder'), ['id', mp.f64(3)]])), /must be int/);
    bad(() => sm.decodeNewResponder(mp.map([T('new-responder')])), /missing/);
  });
  it('drop-responder: reason optional, defaults to 3004', () => {
    const d = sm.decodeDropResponder(sm.encodeDropResponder({ id: 2 }));
    expect(d).toEqual({ type: 'drop-responder', id: 2 });
    expect(sm.dropReasonOf(d)).toBe(3004);
    expect(sm.dropReasonOf(sm.decodeDropResponder(sm.encodeDropResponder({ id: 2, reason: 3005 })))).toBe(3005);
  });
  it.each([3001, 3002, 3004, 3005])('drop-responder reason %i is valid', (reason) => {
    expect(sm.decodeDropResponder(mp.map([T('drop-responder'), ['id', mp.int(2)], ['reason', mp.int(reason)]])).reason).toBe(reason);
  });
  it.each([1001, 3000, 3003, 3006, 3007, 3008, 0])('drop-responder reason %i is refused', (reason) => {
    bad(() => sm.decodeDropResponder(mp.map([T('drop-responder'), ['id', mp.int(2)], ['reason', mp.int(reason)]])));
  });
  it('drop-responder: reason as float, reason nil, id 1, id as str', () => {
    bad(() => sm.decodeDropResponder(mp.map([T('drop-responder'), ['id', mp.int(2)], ['reason', mp.f64(3004)]])), /must be int/);
    bad(() => sm.decodeDropResponder(mp.map([T('drop-responder'), ['id', mp.int(2)], ['reason', mp.nil()]])));
    bad(() => sm.decodeDropResponder(mp.map([T('drop-responder'), ['id', mp.int(1)]])));
    bad(() => sm.decodeDropResponder(mp.map([T('drop-responder'), ['id', mp.str('2')]])));
  });
  it('send-error: id exactly 8 bytes of bin', () => {
    const id = new Uint8Array([1, 2, 0, 0, 0, 0, 0, 15]);
    expect(sm.decodeSendError(sm.encodeSendError({ id }))).toEqual({ type: 'send-error', id });
    bad(() => sm.decodeSendError(mp.map([T('send-error'), ['id', mp.bin(id.subarray(1))]])), /8 bytes/);
    bad(() => sm.decodeSendError(mp.map([T('send-error'), ['id', mp.bin(new Uint8Array(9))]])));
    bad(() => sm.decodeSendError(mp.map([T('send-error'), ['id', mp.str('01020000')]])));
  });
  it('disconnected: id range depends on the receiver role', () => {
    expect(sm.decodeDisconnected(sm.encodeDisconnected({ id: 1 }), 'responder').id).toBe(1);
    expect(sm.decodeDisconnected(sm.encodeDisconnected({ id: 7 }), 'initiator').id).toBe(7);
    bad(() => sm.decodeDisconnected(sm.encodeDisconnected({ id: 7 }), 'responder'));
    bad(() => sm.decodeDisconnected(sm.encodeDisconnected({ id: 1 }), 'initiator'));
    bad(() => sm.decodeDisconnected(mp.map([T('disconnected'), ['id', mp.int(0)]])));
  });
  it('decodeServerToClient dispatches by type and role', () => {
    expect(sm.decodeServerToClient(sm.encodeNewInitiator(), 'responder').type).toBe('new-initiator');
    bad(() => sm.decodeServerToClient(sm.encodeNewInitiator(), 'initiator'), /unexpected type/);
    bad(() => sm.decodeServerToClient(sm.encodeNewResponder({ id: 2 }), 'responder'), /unexpected type/);
    bad(() => sm.decodeServerToClient(mp.map([T('server-hello'), ['key', mp.bin(key)]]), 'initiator'));
    bad(() => sm.decodeServerToClient(mp.map([['type', mp.int(1)]]), 'initiator'));
  });
});
