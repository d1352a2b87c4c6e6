/**
 * The server machine with ctx.clustered (docs/PROTOCOL.md 3.8): path-wide decisions leave as cluster
 * effects, the cluster's answers come in as events. Helpers as in server-machine.test.ts.
 */
import msgpack from 'msgpack-lite';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { type BoxKeyPair, type BoxPublicKey, type BoxSecretKey, type SharedKey } from '../../crypto/index.ts';
import { CloseCode } from '../../protocol/saltyrtc/close-codes.ts';
import { decodeNonce, encodeNonce } from '../../protocol/saltyrtc/nonce.ts';
import {
  emptyPath,
  MAX_HELD_FRAMES,
  step,
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
    clustered: true,
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

const cluster = (effects: readonly ServerEffect[]) =>
  effects.filter((e) => e.type === 'claim' || e.type === 'cluster-relay' || e.type === 'cluster-drop' || e.type === 'leave');

/** Handshake up to the claim (client-auth accepted); the cluster has not answered yet. */
function claimAs(ctx: ServerContext, state: PathState, conn: number, role: 'initiator' | 'responder', keys: BoxKeyPair = pair()) {
  const p = new Peer(conn, keys);
  const r = step(ctx, state, { type: 'connected', conn });
  p.hello(sends(r.effects, conn)[0]!.bytes);
  const events: ServerEvent[] =
    role === 'initiator'
      ? [p.frame(p.auth(), true)]
      : [p.frame({ type: 'client-hello', key: Buffer.from(p.keys.publicKey) }, false), p.frame(p.auth(), true)];
  const out = run(ctx, r.state, events);
  return { peer: p, ...out };
}

describe('server machine, several nodes (ctx.clustered)', () => {
  const ikeys = pair();

  it('client-auth becomes a claim, not a server-auth; the grant sends server-auth and starts pings', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 1, 'initiator', ikeys);
    expect(cluster(c.effects)).toEqual([{ type: 'claim', conn: 1, role: 'initiator' }]);
    expect(sends(c.effects, 1)).toEqual([]);
    expect(c.state.clients.get(1)!.phase).toBe('claiming');
    expect(c.state.initiator).toBeNull();
    const g = step(ctx, c.state, { type: 'granted-initiator', conn: 1, responders: [2, 7] });
    const auth = c.peer.open(sends(g.effects, 1)[0]!.bytes);
    expect(auth.type).toBe('server-auth');
    expect(auth.responders).toEqual([2, 7]);
    expect(g.effects).toContainEqual({ type: 'authenticated', conn: 1, role: 'initiator', address: 1, pingIntervalSeconds: 5 });
    expect(g.state.clients.get(1)!.phase).toBe('authenticated');
    expect(g.state.clients.get(1)!.claim).toBeUndefined();
    // The path-wide fields stay empty on a clustered node: Redis holds them.
    expect(g.state.initiator).toBeNull();
  });

  it('a responder grant carries the address the cluster chose and initiator_connected', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 4, 'responder');
    expect(cluster(c.effects)).toEqual([{ type: 'claim', conn: 4, role: 'responder' }]);
    const g = step(ctx, c.state, { type: 'granted-responder', conn: 4, address: 9, initiatorConnected: true });
    const frame = sends(g.effects, 4)[0]!.bytes;
    expect(decodeNonce(frame.subarray(0, 24)).destination).toBe(9);
    expect(c.peer.open(frame)).toMatchObject({ type: 'server-auth', initiator_connected: true });
  });

  it('path-full closes with 3000 and sends no leave (the cluster gave no slot)', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 4, 'responder');
    const r = step(ctx, c.state, { type: 'path-full', conn: 4 });
    expect(closes(r.effects)).toEqual([{ type: 'close', conn: 4, code: CloseCode.PathFull, reject: 'path-full' }]);
    expect(cluster(r.effects)).toEqual([]);
    expect(step(ctx, r.state, { type: 'closed', conn: 4 }).effects).toEqual([]);
  });

  it('relays, drop-responder and departures become cluster effects after the same checks as on one node', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 1, 'initiator', ikeys);
    const g = step(ctx, c.state, { type: 'granted-initiator', conn: 1, responders: [] });
    c.peer.address = 1;
    const frame = Uint8Array.from([...encodeNonce({ cookie: new Uint8Array(16), source: 1, destination: 3, csn: 5 }), 9]);
    const rel = step(ctx, g.state, { type: 'frame', conn: 1, bytes: frame });
    expect(rel.effects).toEqual([{ type: 'cluster-relay', conn: 1, source: 1, destination: 3, bytes: frame }]);
    expect(rel.state).toBe(g.state);
    // Same-role destination: refused here, nothing reaches the cluster but the leave.
    const bad = Uint8Array.from([...encodeNonce({ cookie: new Uint8Array(16), source: 1, destination: 1, csn: 6 }), 9]);
    const refused = step(ctx, g.state, { type: 'frame', conn: 1, bytes: bad });
    expect(closes(refused.effects)).toEqual([{ type: 'close', conn: 1, code: CloseCode.ProtocolError, reject: 'bad-message' }]);
    expect(cluster(refused.effects)).toEqual([{ type: 'leave', conn: 1 }]);
    const drop = step(ctx, g.state, c.peer.frame({ type: 'drop-responder', id: 5, reason: 3005 }, true));
    expect(cluster(drop.effects)).toEqual([{ type: 'cluster-drop', conn: 1, id: 5, code: 3005 }]);
    expect(cluster(step(ctx, g.state, { type: 'closed', conn: 1 }).effects)).toEqual([{ type: 'leave', conn: 1 }]);
  });

  it('a client closed while claiming leaves (its grant may still come) and a late grant changes nothing', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 4, 'responder');
    const closed = step(ctx, c.state, { type: 'closed', conn: 4 });
    expect(cluster(closed.effects)).toEqual([{ type: 'leave', conn: 4 }]);
    const late = step(ctx, closed.state, { type: 'granted-responder', conn: 4, address: 2, initiatorConnected: false });
    expect(late.effects).toEqual([]);
    expect(late.state).toBe(closed.state);
  });

  it('notices are encrypted to the client; notices that do not fit its phase or role change nothing', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 1, 'initiator', ikeys);
    for (const e of [
      { type: 'new-responder', conn: 1, id: 2 },
      { type: 'disconnected', conn: 1, id: 2 },
      { type: 'send-error', conn: 1, id: new Uint8Array(8) },
      { type: 'dropped', conn: 1, code: 3004 },
      { type: 'granted-responder', conn: 1, address: 2, initiatorConnected: false },
    ] as ServerEvent[]) {
      const r = step(ctx, c.state, e);
      expect(sends(r.effects, 1)).toEqual([]);
      expect(closes(r.effects)).toEqual([]);
      expect(r.state.clients.get(1)!.phase).toBe('claiming');
    }
    const g = step(ctx, c.state, { type: 'granted-initiator', conn: 1, responders: [] });
    expect(step(ctx, g.state, { type: 'new-initiator', conn: 1 }).effects.filter((e) => e.type === 'send')).toEqual([]);
    const n = step(ctx, g.state, { type: 'new-responder', conn: 1, id: 4 });
    expect(c.peer.open(sends(n.effects, 1)[0]!.bytes)).toEqual({ type: 'new-responder', id: 4 });
    const d = step(ctx, n.state, { type: 'disconnected', conn: 1, id: 4 });
    expect(c.peer.open(sends(d.effects, 1)[0]!.bytes)).toEqual({ type: 'disconnected', id: 4 });
    const se = step(ctx, d.state, { type: 'send-error', conn: 1, id: Uint8Array.from([1, 4, 0, 0, 0, 0, 0, 9]) });
    expect(c.peer.open(sends(se.effects, 1)[0]!.bytes)).toEqual({ type: 'send-error', id: Buffer.from('0104000000000009', 'hex') });
    const dropped = step(ctx, se.state, { type: 'dropped', conn: 1, code: 3004 });
    expect(closes(dropped.effects)).toEqual([{ type: 'close', conn: 1, code: 3004 }]);
    expect(cluster(dropped.effects)).toEqual([]); // the cluster took the slot itself: no leave, no disconnected
  });

  it(`holds up to ${MAX_HELD_FRAMES} frames sent before the grant, processes them in order after it, refuses more`, () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 4, 'responder');
    const frames = Array.from({ length: MAX_HELD_FRAMES }, (_, k) =>
      Uint8Array.from([...encodeNonce({ cookie: new Uint8Array(16), source: 2, destination: 1, csn: k }), k]),
    );
    const held = run(
      ctx,
      c.state,
      frames.map((bytes) => ({ type: 'frame', conn: 4, bytes })),
    );
    expect(held.effects).toEqual([]);
    const g = step(ctx, held.state, { type: 'granted-responder', conn: 4, address: 2, initiatorConnected: true });
    expect(g.effects.filter((e) => e.type === 'cluster-relay').map((e) => (e as { bytes: Uint8Array }).bytes)).toEqual(frames);
    const over = step(ctx, held.state, { type: 'frame', conn: 4, bytes: frames[0]! });
    expect(closes(over.effects)).toEqual([{ type: 'close', conn: 4, code: CloseCode.ProtocolError, reject: 'bad-message' }]);
    expect(cluster(over.effects)).toEqual([{ type: 'leave', conn: 4 }]);
  });

  it('does not mutate the state it is given', () => {
    const ctx = context(ikeys);
    const c = claimAs(ctx, emptyPath, 1, 'initiator', ikeys);
    const before = c.state.clients.get(1)!;
    const snapshot = JSON.stringify({ phase: before.phase, claim: before.claim, csn: before.ourCsn });
    step(ctx, c.state, { type: 'granted-initiator', conn: 1, responders: [3] });
    step(ctx, c.state, { type: 'frame', conn: 1, bytes: new Uint8Array(40) });
    expect(c.state.clients.get(1)).toBe(before);
    expect(JSON.stringify({ phase: before.phase, claim: before.claim, csn: before.ourCsn })).toBe(snapshot);
  });
});
