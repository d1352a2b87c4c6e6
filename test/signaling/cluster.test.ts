/**
 * Two nodes sharing paths through a real redis-server (docs/PROTOCOL.md 3.8), driven with
 * hand-built frames: a client on node A and clients on node B see what they would on one node
 * (section 3.3): new-responder, new-initiator, drop-responder, send-error, disconnected, relayed
 * frames verbatim and in order, the lowest free responder address, 3000 on a full path, and 3004
 * for a replaced initiator. Every step awaits a frame or a close; nothing sleeps.
 */
import { createClient } from '@redis/client';
import nacl from 'tweetnacl';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeNodeMessage } from '../../signaling/cluster/messages.ts';
import { startServer, type TestServer } from './harness.ts';
import { RawSocket, SaltyTestClient, bin, pack, parseNonce } from './raw-client.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

let redis: RedisServer;
let a: TestServer;
let b: TestServer;
const clients: SaltyTestClient[] = [];

const limits = { maxConnectionsPerIp: 1000, newConnectionsPerSecondPerIp: 100_000 };

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

async function startNodes(): Promise<void> {
  a = await startServer({ limits, redis: { url: redis.url } });
  b = await startServer({ limits, redis: { url: redis.url } });
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.sock.close()));
  await a.stop();
  await b.stop();
});

async function initiatorOn(srv: TestServer, keys = nacl.box.keyPair()): Promise<SaltyTestClient> {
  const c = await SaltyTestClient.connect(srv.url, { role: 'initiator', keys });
  clients.push(c);
  return c;
}
async function responderOn(srv: TestServer, path: Uint8Array): Promise<SaltyTestClient> {
  const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: path });
  clients.push(c);
  return c;
}

describe('two nodes, one path', () => {
  it('initiator on A, responder on B: new-responder, server-auth, relay both ways verbatim and in order', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    expect(i.serverAuth.responders).toEqual([]);
    const r = await responderOn(b, i.keys.publicKey);
    expect(r.address).toBe(2);
    expect(r.serverAuth.initiator_connected).toBe(true);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });

    const sent: Buffer[] = [];
    for (let n = 0; n < 200; n++) sent.push(Buffer.from(i.relayFrame(2, nacl.randomBytes(1 + (n % 300)))));
    for (const frame of sent) expect(await r.nextFrame()).toEqual(frame);
    const back = Buffer.from(r.relayFrame(1, nacl.randomBytes(5000)));
    expect(await i.nextFrame()).toEqual(back);
    expect(b.observer.relayedFrames).toBe(200);
    expect(a.observer.relayedFrames).toBe(1);
    expect(a.observer.handshakes).toEqual(['initiator']);
    expect(b.observer.handshakes).toEqual(['responder']);
  });

  it('responder first on B, initiator on A: new-initiator, and the initiator learns the responder', async () => {
    await startNodes();
    const path = nacl.box.keyPair();
    const r = await responderOn(b, path.publicKey);
    expect(r.serverAuth.initiator_connected).toBe(false);
    const i = await initiatorOn(a, path);
    expect(i.serverAuth.responders).toEqual([2]);
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'new-initiator' });
    const f = Buffer.from(r.relayFrame(1, nacl.randomBytes(40)));
    expect(await i.nextFrame()).toEqual(f);
  });

  it('assigns the lowest free address across nodes and reuses a freed one; disconnected goes across', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const r2 = await responderOn(a, i.keys.publicKey);
    const r3 = await responderOn(b, i.keys.publicKey);
    const r4 = await responderOn(a, i.keys.publicKey);
    expect([r2.address, r3.address, r4.address]).toEqual([2, 3, 4]);
    for (const id of [2, 3, 4]) expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id });
    await r3.sock.close();
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 3 });
    const again = await responderOn(b, i.keys.publicKey);
    expect(again.address).toBe(3);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 3 });
    // The initiator leaves: every responder, on both nodes, is told.
    await i.sock.close();
    for (const r of [r2, again, r4]) expect((await r.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 1 });
  });

  it('a new initiator on B replaces the one on A (3004, no disconnected); responders get new-initiator', async () => {
    await startNodes();
    const path = nacl.box.keyPair();
    const first = await initiatorOn(a, path);
    const r = await responderOn(b, path.publicKey);
    expect((await first.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const second = await initiatorOn(b, path);
    expect(second.serverAuth.responders).toEqual([2]);
    expect((await first.sock.closed).code).toBe(3004);
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'new-initiator' });
    // The responder's next frame reaches the new initiator, and nothing else arrived before it.
    const f = Buffer.from(r.relayFrame(1, nacl.randomBytes(64)));
    expect(await second.nextFrame()).toEqual(f);
    expect(r.sock.pending).toBe(0);
  });

  it('drop-responder across nodes closes the responder with the reason and sends no disconnected', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const r = await responderOn(b, i.keys.publicKey);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    i.sendToServer(pack({ type: 'drop-responder', id: 2, reason: 3005 }), true);
    expect((await r.sock.closed).code).toBe(3005);
    // The path still works for the initiator, and the next message it gets is not 'disconnected'.
    const r2 = await responderOn(b, i.keys.publicKey);
    expect(r2.address).toBe(2);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
  });

  it('send-error for a destination nobody holds, with the frame id; relaying to a closed peer too', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const frame = i.relayFrame(7, nacl.randomBytes(10));
    const { msg } = await i.nextServerMessage();
    expect(msg.type).toBe('send-error');
    expect(Buffer.from(msg.id as Uint8Array)).toEqual(Buffer.from(frame.subarray(16, 24)));
    const r = await responderOn(b, i.keys.publicKey);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    await r.sock.close();
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 2 });
    const late = i.relayFrame(2, nacl.randomBytes(10));
    const err = (await i.nextServerMessage()).msg;
    expect(err.type).toBe('send-error');
    expect(Buffer.from(err.id as Uint8Array)).toEqual(Buffer.from(late.subarray(16, 24)));
  });

  it('path full across two nodes: 254 responders split between A and B, the 255th gets 3000 and no server-auth', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const addresses: number[] = [];
    for (let n = 0; n < 254; n += 2) {
      const pair = await Promise.all([responderOn(a, i.keys.publicKey), responderOn(b, i.keys.publicKey)]);
      addresses.push(...pair.map((r) => r.address));
    }
    expect(addresses.sort((x, y) => x - y)).toEqual(Array.from({ length: 254 }, (_, k) => k + 2));
    const sock = await RawSocket.open(`${b.url}/${Buffer.from(i.keys.publicKey).toString('hex')}`);
    const extra = new SaltyTestClient(sock, nacl.box.keyPair(), 'responder');
    await extra.readServerHello();
    extra.sendToServer(pack({ type: 'client-hello', key: bin(extra.keys.publicKey) }), false);
    extra.sendToServer(pack(extra.clientAuth({})), true);
    expect((await sock.closed).code).toBe(3000);
    expect(extra.sock.pending).toBe(0);
    expect(b.observer.rejects).toContain('path-full');
    // 254 new-responder notices reached the initiator, in the order the addresses were given.
    const notices: number[] = [];
    for (let n = 0; n < 254; n++) notices.push((await i.nextServerMessage()).msg.id as number);
    expect(new Set(notices).size).toBe(254);
  }, 60_000);

  it('frames a client pipelines right after client-auth wait for its server-auth and are then relayed', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const sock = await RawSocket.open(`${b.url}/${Buffer.from(i.keys.publicKey).toString('hex')}`);
    const r = new SaltyTestClient(sock, nacl.box.keyPair(), 'responder');
    await r.readServerHello();
    r.sendToServer(pack({ type: 'client-hello', key: bin(r.keys.publicKey) }), false);
    r.sendToServer(pack(r.clientAuth({})), true);
    // It guesses its address (2) and sends before server-auth arrives.
    r.address = 2;
    const early = Buffer.from(r.relayFrame(1, nacl.randomBytes(30)));
    r.address = 0;
    await r.readServerAuth();
    expect(r.address).toBe(2);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    expect(await i.nextFrame()).toEqual(early);
    await sock.close();
  });
});

describe('order and identity under concurrency', () => {
  it('many responders racing on both nodes never share an address', async () => {
    await startNodes();
    const i = await initiatorOn(b);
    const rs = await Promise.all(Array.from({ length: 40 }, (_, n) => responderOn(n % 2 === 0 ? a : b, i.keys.publicKey)));
    const addrs = rs.map((r) => r.address);
    expect(new Set(addrs).size).toBe(40);
    expect(Math.max(...addrs)).toBe(41);
    // Each responder's frame reaches the initiator with its own source address.
    for (const r of rs) r.relayFrame(1, Uint8Array.of(r.address));
    const seen = new Map<number, number>();
    for (let n = 0; n < 80; n++) {
      const f = await i.nextFrame();
      const nn = parseNonce(f);
      if (nn.source === 0) continue; // new-responder notices interleave
      seen.set(nn.source, f[24]!);
    }
    for (const r of rs) expect(seen.get(r.address)).toBe(r.address);
  });
});

describe('a node that can no longer trust its view', () => {
  async function publish(node: TestServer, bytes: Uint8Array): Promise<void> {
    const c = createClient({ url: redis.url });
    await c.connect();
    try {
      await c.sendCommand(['PUBLISH', `zr:to:${node.node!.nodeId!}`, Buffer.from(bytes)]);
    } finally {
      c.destroy();
    }
  }
  async function lastSeq(node: TestServer): Promise<number> {
    const c = createClient({ url: redis.url });
    await c.connect();
    try {
      return Number(await c.sendCommand(['GET', `zr:seq:${node.node!.nodeId!}`]));
    } finally {
      c.destroy();
    }
  }

  it('refuses a replayed or malformed inter-node message without effect (cluster.replay, cluster.message)', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const r = await responderOn(b, i.keys.publicKey);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const replayLogged = a.nextLog('cluster-message-refused');
    // A replay of message 1 (the initiator's grant), here as a forged 'disconnected'.
    await publish(a, encodeNodeMessage({ seq: 1, type: 'disconnected', conn: 1, id: 2 }));
    expect((await replayLogged).code).toBe('cluster.replay');
    const malformedLogged = a.nextLog('cluster-message-refused');
    await publish(a, Uint8Array.of(1, 5, 0, 0));
    expect((await malformedLogged).code).toBe('cluster.message');
    // Nothing reached the initiator: the next thing it gets is the responder's frame.
    const f = Buffer.from(r.relayFrame(1, nacl.randomBytes(20)));
    expect(await i.nextFrame()).toEqual(f);
    expect(i.sock.pending).toBe(0);
  });

  it('lost inter-node messages (a gap) close every client of that node with 1012; the node registers again', async () => {
    await startNodes();
    const i = await initiatorOn(a);
    const r = await responderOn(b, i.keys.publicKey);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const oldId = a.node!.nodeId;
    const registered = a.nextLog('cluster-registered');
    await publish(a, encodeNodeMessage({ seq: (await lastSeq(a)) + 2, type: 'new-initiator', conn: 1 }));
    expect((await i.sock.closed).code).toBe(1012);
    await registered;
    expect(a.node!.nodeId).not.toBe(oldId);
    // Retiring the old id freed the initiator slot: the responder on B was told.
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 1 });
    const again = await initiatorOn(a, i.keys);
    expect(again.serverAuth.responders).toEqual([2]);
  });

  it('a lease found gone (a stalled node that was swept) closes its clients with 1012 and it registers again', async () => {
    a = await startServer({ limits, redis: { url: redis.url, timing: { leaseMs: 1000, heartbeatMs: 100, reapIntervalMs: 100 } } });
    b = await startServer({ limits, redis: { url: redis.url } });
    const i = await initiatorOn(a);
    const r = await responderOn(b, i.keys.publicKey);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const registered = a.nextLog('cluster-registered');
    const c = createClient({ url: redis.url });
    await c.connect();
    await c.sendCommand(['DEL', `zr:node:${a.node!.nodeId!}`]);
    c.destroy();
    expect((await i.sock.closed).code).toBe(1012);
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 1 });
    await registered;
    expect(a.logs.some((l) => l.event === 'cluster-lost' && l.fields.reason === 'lease-lost')).toBe(true);
  });
});
