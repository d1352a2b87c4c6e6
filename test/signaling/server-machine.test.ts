/** The server machine without sockets: events in, effects out, inputs never mutated. */
import msgpack from 'msgpack-lite';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { KeyError, type BoxKeyPair, type BoxPublicKey, type BoxSecretKey, type SharedKey } from '../../crypto/index.ts';
import { CloseCode } from '../../protocol/saltyrtc/close-codes.ts';
import { CSN_LIMIT, decodeNonce, encodeNonce } from '../../protocol/saltyrtc/nonce.ts';
import {
  emptyPath,
  lowestFreeResponder,
  step,
  type ClientRecord,
  type PathState,
  type ServerContext,
  type ServerEffect,
  type ServerEvent,
} from '../../protocol/saltyrtc/server-machine.ts';

function seededRandom(seed: number): (n: number) => Uint8Array {
  let x = seed;
  return (n) =>
    Uint8Array.from({ length: n }, () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x & 0xff;
    });
}
const pair = (): BoxKeyPair => {
  const k = nacl.box.keyPair();
  return { publicKey: k.publicKey as BoxPublicKey, secretKey: k.secretKey as BoxSecretKey };
};

function context(initiator: BoxKeyPair, serverKeys: BoxKeyPair[] = [pair()]): ServerContext {
  return {
    initiatorKey: initiator.publicKey,
    permanentKeys: serverKeys,
    random: seededRandom(42),
    generateSessionKey: pair,
    sharedKey: (pub, sec) => nacl.box.before(pub, sec) as SharedKey,
  };
}

/** Apply events in order, collecting effects. */
function run(ctx: ServerContext, state: PathState, events: ServerEvent[]): { state: PathState; effects: ServerEffect[] } {
  const effects: ServerEffect[] = [];
  for (const e of events) {
    const r = step(ctx, state, e);
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

const sends = (effects: readonly ServerEffect[], conn: number) =>
  effects.filter((e): e is Extract<ServerEffect, { type: 'send' }> => e.type === 'send' && e.conn === conn);
const closes = (effects: readonly ServerEffect[]) =>
  effects.filter((e): e is Extract<ServerEffect, { type: 'close' }> => e.type === 'close');

/** Client side of the handshake in plain tweetnacl, driven by the effects. */
class Peer {
  cookie = nacl.randomBytes(16);
  csn = 100;
  serverKey: Uint8Array = new Uint8Array(32);
  serverCookie: Uint8Array = new Uint8Array(16);
  address = 0;
  constructor(
    readonly conn: number,
    readonly keys: BoxKeyPair,
  ) {}
  hello(frame: Uint8Array): void {
    const n = decodeNonce(frame.subarray(0, 24));
    this.serverCookie = n.cookie;
    this.serverKey = new Uint8Array((msgpack.decode(frame.subarray(24)) as { key: Buffer }).key);
  }
  frame(plain: object, encrypt: boolean, over: Partial<{ csn: number; cookie: Uint8Array; destination: number }> = {}): ServerEvent {
    const nonce = encodeNonce({
      cookie: over.cookie ?? this.cookie,
      source: this.address,
      destination: over.destination ?? 0,
      csn: over.csn ?? this.csn++,
    });
    const data = msgpack.encode(plain);
    const body = encrypt ? nacl.box(data, nonce, this.serverKey, this.keys.secretKey) : data;
    return { type: 'frame', conn: this.conn, bytes: Uint8Array.from([...nonce, ...body]) };
  }
  auth(): object {
    return { type: 'client-auth', your_cookie: Buffer.from(this.serverCookie), subprotocols: ['v1.saltyrtc.org'], ping_interval: 5 };
  }
  open(frame: Uint8Array): Record<string, unknown> {
    const plain = nacl.box.open(frame.subarray(24), frame.subarray(0, 24), this.serverKey, this.keys.secretKey);
    if (plain === null) throw new Error('does not decrypt');
    return msgpack.decode(plain) as Record<string, unknown>;
  }
}

function connectInitiator(ctx: ServerContext, state: PathState, conn: number, keys: BoxKeyPair) {
  const p = new Peer(conn, keys);
  let r = step(ctx, state, { type: 'connected', conn });
  p.hello(sends(r.effects, conn)[0]!.bytes);
  r = step(ctx, r.state, p.frame(p.auth(), true));
  p.address = 1;
  return { peer: p, ...r };
}

function connectResponder(ctx: ServerContext, state: PathState, conn: number) {
  const p = new Peer(conn, pair());
  let r = step(ctx, state, { type: 'connected', conn });
  p.hello(sends(r.effects, conn)[0]!.bytes);
  const r2 = run(ctx, r.state, [p.frame({ type: 'client-hello', key: Buffer.from(p.keys.publicKey) }, false), p.frame(p.auth(), true)]);
  r = { state: r2.state, effects: r2.effects };
  const auth = sends(r.effects, conn).at(-1);
  if (auth !== undefined) p.address = decodeNonce(auth.bytes.subarray(0, 24)).destination;
  return { peer: p, ...r };
}

describe('server machine', () => {
  const ikeys = pair();

  it('connected: server-hello from 0x00 to 0x00 with a fresh session key, csn overflow 0', () => {
    const ctx = context(ikeys);
    const { state, effects } = step(ctx, emptyPath, { type: 'connected', conn: 1 });
    const [hello] = sends(effects, 1);
    const n = decodeNonce(hello!.bytes.subarray(0, 24));
    expect([n.source, n.destination, n.csn < 2 ** 32]).toEqual([0, 0, true]);
    expect(msgpack.decode(hello!.bytes.subarray(24))).toEqual({
      type: 'server-hello',
      key: Buffer.from(state.clients.get(1)!.sessionPublic!),
    });
    expect(emptyPath.clients.size).toBe(0);
  });

  it('initiator handshake: authenticated effect with the ping interval, server-auth to 0x01', () => {
    const ctx = context(ikeys);
    const { peer, state, effects } = connectInitiator(ctx, emptyPath, 1, ikeys);
    expect(effects).toContainEqual({ type: 'authenticated', conn: 1, role: 'initiator', address: 1, pingIntervalSeconds: 5 });
    const auth = sends(effects, 1)[0]!;
    expect(decodeNonce(auth.bytes.subarray(0, 24)).destination).toBe(1);
    expect(peer.open(auth.bytes).responders).toEqual([]);
    expect(state.initiator).toBe(1);
  });

  it('keeps no session secret once the shared key exists', () => {
    const ctx = context(ikeys);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    expect(a.state.clients.get(1)!.sessionSecret).toBeNull();
    const b = connectResponder(ctx, a.state, 2);
    expect(b.state.clients.get(2)!.sessionSecret).toBeNull();
    const c = step(ctx, b.state, { type: 'connected', conn: 3 });
    expect(c.state.clients.get(3)!.sessionSecret).not.toBeNull();
  });

  it('does not mutate the state it is given', () => {
    const ctx = context(ikeys);
    const { state } = connectInitiator(ctx, emptyPath, 1, ikeys);
    const snapshot = JSON.stringify([...state.clients.entries()].map(([k, v]) => [k, v.phase, v.ourCsn, v.theirCsn]));
    const frozen = { ...state };
    connectResponder(ctx, state, 2);
    step(ctx, state, { type: 'closed', conn: 1 });
    expect(JSON.stringify([...state.clients.entries()].map(([k, v]) => [k, v.phase, v.ourCsn, v.theirCsn]))).toBe(snapshot);
    expect(state.initiator).toBe(frozen.initiator);
    expect(state.responders.size).toBe(0);
  });

  it('a relayed frame returns the very same state object', () => {
    const ctx = context(ikeys);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    const b = connectResponder(ctx, a.state, 2);
    const frame = Uint8Array.from([...encodeNonce({ cookie: new Uint8Array(16), source: 1, destination: 2, csn: 5 }), 1, 2, 3]);
    const r = step(ctx, b.state, { type: 'frame', conn: 1, bytes: frame });
    expect(r.state).toBe(b.state);
    expect(r.effects).toEqual([{ type: 'relay', from: 1, to: 2, bytes: frame }]);
  });

  it('relay-failed turns into send-error for the sender', () => {
    const ctx = context(ikeys);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    const n = encodeNonce({ cookie: new Uint8Array(16), source: 1, destination: 2, csn: 0x10 });
    const r = step(ctx, a.state, { type: 'relay-failed', conn: 1, nonce: n });
    expect(a.peer.open(sends(r.effects, 1)[0]!.bytes)).toEqual({ type: 'send-error', id: Buffer.from('0102000000000010', 'hex') });
  });

  it('combined sequence number exhausted: the next message is refused with 3001', () => {
    const ctx = context(ikeys);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    const rec = a.state.clients.get(1)!;
    const atLimit: ClientRecord = { ...rec, theirCsn: CSN_LIMIT - 1 };
    const state: PathState = { ...a.state, clients: new Map([[1, atLimit]]) };
    // the last possible csn is accepted ...
    let r = step(ctx, state, a.peer.frame({ type: 'drop-responder', id: 9 }, true, { csn: CSN_LIMIT - 1 }));
    expect(closes(r.effects)).toEqual([]);
    expect(r.state.clients.get(1)!.theirCsn).toBe(CSN_LIMIT);
    // ... and nothing after it
    r = step(ctx, r.state, a.peer.frame({ type: 'drop-responder', id: 9 }, true, { csn: 0 }));
    expect(closes(r.effects)).toEqual([{ type: 'close', conn: 1, code: CloseCode.ProtocolError, reject: 'bad-message' }]);
  });

  it('handshake timeout closes only unauthenticated clients (3008)', () => {
    const ctx = context(ikeys);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    expect(step(ctx, a.state, { type: 'timeout', conn: 1, kind: 'handshake' }).effects).toEqual([]);
    const b = step(ctx, a.state, { type: 'connected', conn: 2 });
    expect(closes(step(ctx, b.state, { type: 'timeout', conn: 2, kind: 'handshake' }).effects)).toEqual([
      { type: 'close', conn: 2, code: 3008, reject: 'handshake-timeout' },
    ]);
  });

  it('ping timeout of the initiator: 3008 and disconnected to responders', () => {
    const ctx = context(ikeys);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    const b = connectResponder(ctx, a.state, 2);
    const r = step(ctx, b.state, { type: 'timeout', conn: 1, kind: 'ping' });
    expect(closes(r.effects)).toEqual([{ type: 'close', conn: 1, code: 3008 }]);
    expect(b.peer.open(sends(r.effects, 2)[0]!.bytes)).toEqual({ type: 'disconnected', id: 1 });
    expect(r.state.initiator).toBeNull();
  });

  it('invalid-frame (text) closes with 3001; events for unknown connections are ignored', () => {
    const ctx = context(ikeys);
    const a = step(ctx, emptyPath, { type: 'connected', conn: 1 });
    expect(closes(step(ctx, a.state, { type: 'invalid-frame', conn: 1, why: 'text' }).effects)[0]!.code).toBe(3001);
    for (const e of [
      { type: 'closed', conn: 9 },
      { type: 'timeout', conn: 9, kind: 'ping' },
      { type: 'invalid-frame', conn: 9, why: 'x' },
      { type: 'frame', conn: 9, bytes: new Uint8Array(40) },
    ] as ServerEvent[]) {
      const r = step(ctx, a.state, e);
      expect(r.effects).toEqual([]);
      expect(r.state).toBe(a.state);
    }
  });

  it('a key the DH refuses (KeyError, e.g. low-order) is a 3001 refusal, not a crash', () => {
    const ctx: ServerContext = {
      ...context(ikeys),
      sharedKey: () => {
        throw new KeyError('low-order point');
      },
    };
    const a = step(ctx, emptyPath, { type: 'connected', conn: 1 });
    const p = new Peer(1, pair());
    p.hello(sends(a.effects, 1)[0]!.bytes);
    expect(closes(step(ctx, a.state, p.frame(p.auth(), true)).effects)).toEqual([
      { type: 'close', conn: 1, code: 3001, reject: 'bad-message' },
    ]);
  });

  it('errors that are not ZeroRoomErrors propagate (bugs are not hidden behind close codes)', () => {
    const ctx: ServerContext = {
      ...context(ikeys),
      sharedKey: () => {
        throw new TypeError('bug');
      },
    };
    const a = step(ctx, emptyPath, { type: 'connected', conn: 1 });
    const p = new Peer(1, pair());
    p.hello(sends(a.effects, 1)[0]!.bytes);
    expect(() => step(ctx, a.state, p.frame(p.auth(), true))).toThrow('bug');
  });

  it('no permanent key: server-auth without signed_keys; a pinned key gets 3007', () => {
    const ctx = context(ikeys, []);
    const a = connectInitiator(ctx, emptyPath, 1, ikeys);
    expect('signed_keys' in a.peer.open(sends(a.effects, 1)[0]!.bytes)).toBe(false);
    const b = step(ctx, emptyPath, { type: 'connected', conn: 2 });
    const p = new Peer(2, ikeys);
    p.hello(sends(b.effects, 2)[0]!.bytes);
    const r = step(ctx, b.state, p.frame({ ...p.auth(), your_key: Buffer.alloc(32, 1) }, true));
    expect(closes(r.effects)).toEqual([{ type: 'close', conn: 2, code: 3007, reject: 'bad-auth' }]);
  });

  it('lowest free responder address', () => {
    expect(lowestFreeResponder(new Map())).toBe(2);
    expect(
      lowestFreeResponder(
        new Map([
          [2, 1],
          [4, 2],
        ]),
      ),
    ).toBe(3);
    const full = new Map(Array.from({ length: 254 }, (_, i) => [i + 2, i] as [number, number]));
    expect(lowestFreeResponder(full)).toBeNull();
    full.delete(255);
    expect(lowestFreeResponder(full)).toBe(255);
  });

  it('path full: a 255th responder is closed with 3000 and gets no server-auth', () => {
    const ctx = context(ikeys);
    let state = emptyPath;
    for (let c = 1; c <= 254; c++) state = connectResponder(ctx, state, c).state;
    expect(state.responders.size).toBe(254);
    const last = connectResponder(ctx, state, 255);
    expect(closes(last.effects)).toEqual([{ type: 'close', conn: 255, code: 3000, reject: 'path-full' }]);
    expect(sends(last.effects, 255)).toEqual([]); // no server-auth after hello + auth
    expect(last.state.clients.has(255)).toBe(false);
  });
});
