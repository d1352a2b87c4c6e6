/**
 * Several `zeroroom serve --redis` nodes with the official @saltyrtc/client (docs/PROTOCOL.md 3.8):
 * node A is a child process (so it can be SIGKILLed), node B runs in this process; both use the same
 * server key file, so clients pinning it succeed on either. Covers: handshakes and relay with the
 * initiator on one node and responders on the other, a node killed mid-session (its peers are told
 * within 1.2 x lease, the survivor keeps working), and Redis restarted (every session closes with
 * 1012, upgrades get 503 while Redis is away, nodes register again and new sessions work on fresh
 * state).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateKeyFile } from '../../signaling/keyfile.ts';
import { type ServeRun, killAll, startServe } from '../cli/spawn-cli.ts';
import { type SaltyClient, type SaltyEvent, loadOfficialClient } from '../interop/official-client.ts';
import { startServer, type TestServer } from './harness.ts';
import { RawSocket, SaltyTestClient } from './raw-client.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

const LEASE_MS = 3000;
/** docs/PROTOCOL.md 3.8.4: peers are told at most 1.2 x lease after the last renewal. */
const BOUND_MS = 1.2 * LEASE_MS;
/** Scheduling slack on a loaded 2-core machine (delivery, event loops of three processes). */
const SLACK_MS = 6000;

const salty = loadOfficialClient();
let redis: RedisServer;
let dir: string;
let keyFile: string;
let serverPublicKey: Uint8Array;
let a: ServeRun | undefined;
let b: TestServer | undefined;
const clients: SaltyClient[] = [];
const raws: SaltyTestClient[] = [];

const limits = { maxConnectionsPerIp: 1000, newConnectionsPerSecondPerIp: 100_000 };

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(path.join(os.tmpdir(), 'zr-cluster-'));
  keyFile = path.join(dir, 'server.key');
  serverPublicKey = loadOrCreateKeyFile(keyFile).publicKey;
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(raws.splice(0).map((r) => r.sock.close()));
  await b?.stop();
  await killAll([a]);
  a = b = undefined;
});

async function startNodes(): Promise<{ a: ServeRun; b: TestServer }> {
  a = await startServe([
    '--port',
    '0',
    '--key-file',
    keyFile,
    '--redis',
    redis.url,
    '--redis-lease-ms',
    String(LEASE_MS),
    '--max-connections-per-ip',
    '1000',
    '--connections-per-second-per-ip',
    '100000',
  ]);
  b = await startServer({
    keys: [loadOrCreateKeyFile(keyFile)],
    limits,
    redis: { url: redis.url, timing: { leaseMs: LEASE_MS, heartbeatMs: LEASE_MS / 5, reapIntervalMs: LEASE_MS / 5 } },
  });
  return { a, b };
}

const portOf = (url: string): number => Number(new URL(url).port);

function official(port: number) {
  return salty
    .newBuilder()
    .connectTo('127.0.0.1', port)
    .withKeyStore(salty.newKeyStore())
    .withServerKey(serverPublicKey)
    .withPingInterval(0)
    .withLoggingLevel('none');
}

function track(c: SaltyClient): SaltyClient {
  c.signaling.protocol = 'ws';
  clients.push(c);
  return c;
}

function reach(client: SaltyClient, state: string, who: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.on('state-change', (ev: SaltyEvent) => {
      if (ev.data === state) resolve();
    });
    client.on('connection-closed', (ev: SaltyEvent) => reject(new Error(`${who}: closed (${String(ev.data)}) before ${state}`)));
  });
}

function nextData(client: SaltyClient): Promise<unknown> {
  return new Promise((resolve) =>
    client.getTask().on('data', (ev: SaltyEvent) => {
      resolve(ev.data);
      return false;
    }),
  );
}

describe('official SaltyRTC clients across two nodes', () => {
  it('initiator on A, two responders on B: handshakes, task messages both ways, drop of the second (3004)', async () => {
    const nodes = await startNodes();
    const initiator = track(official(portOf(nodes.a.url)).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const responder = () =>
      track(
        official(nodes.b.port)
          .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
          .usingTasks([salty.newRelayedDataTask()])
          .asResponder(),
      );
    const first = responder();
    const done = Promise.all([reach(initiator, 'task', 'initiator'), reach(first, 'task', 'responder')]);
    initiator.connect();
    first.connect();
    await done;
    const atResponder = nextData(first);
    initiator.getTask().sendMessage({ text: 'across nodes', n: 1 });
    expect(await atResponder).toEqual({ text: 'across nodes', n: 1 });
    const atInitiator = nextData(initiator);
    first.getTask().sendMessage('and back');
    expect(await atInitiator).toBe('and back');
    // A second responder after the initiator chose: the initiator drops it through node A.
    const second = responder();
    const closed = new Promise<unknown>((resolve) => second.on('connection-closed', (ev: SaltyEvent) => resolve(ev.data)));
    second.connect();
    expect(await closed).toBe(3004);
    const again = nextData(first);
    initiator.getTask().sendMessage('still here');
    expect(await again).toBe('still here');
  });

  it('responder on A before the initiator on B (new-initiator across nodes)', async () => {
    const nodes = await startNodes();
    const initiator = track(official(nodes.b.port).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const responder = track(
      official(portOf(nodes.a.url))
        .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
        .usingTasks([salty.newRelayedDataTask()])
        .asResponder(),
    );
    const waiting = reach(responder, 'peer-handshake', 'responder');
    const responderDone = reach(responder, 'task', 'responder');
    responder.connect();
    await waiting;
    const initiatorDone = reach(initiator, 'task', 'initiator');
    initiator.connect();
    await Promise.all([initiatorDone, responderDone]);
    const atInitiator = nextData(initiator);
    responder.getTask().sendMessage([1, 2, 3]);
    expect(await atInitiator).toEqual([1, 2, 3]);
  });
});

describe('a node killed mid-session', () => {
  it('initiator on the killed node: the responder on the survivor is told (disconnected) within the bound, then a new initiator works there', async () => {
    const nodes = await startNodes();
    const initiator = track(official(portOf(nodes.a.url)).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const responder = track(
      official(nodes.b.port)
        .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
        .usingTasks([salty.newRelayedDataTask()])
        .asResponder(),
    );
    const done = Promise.all([reach(initiator, 'task', 'initiator'), reach(responder, 'task', 'responder')]);
    initiator.connect();
    responder.connect();
    await done;
    const told = new Promise<unknown>((resolve) => responder.on('peer-disconnected', (ev: SaltyEvent) => resolve(ev.data)));
    const killedAt = performance.now();
    nodes.a.child.kill('SIGKILL');
    await nodes.a.exited;
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no disconnected within ${BOUND_MS + SLACK_MS} ms`)), BOUND_MS + SLACK_MS),
    );
    expect(await Promise.race([told, deadline])).toBe(1);
    console.log(
      `cluster: initiator's node SIGKILLed, responder told after ${Math.round(performance.now() - killedAt)} ms (bound ${BOUND_MS} ms)`,
    );

    // The survivor keeps working: raw clients on B, on a new path and on the dead initiator's path.
    const i2 = await SaltyTestClient.connect(nodes.b.url, { role: 'initiator' });
    raws.push(i2);
    const r2 = await SaltyTestClient.connect(nodes.b.url, { role: 'responder', initiatorKey: i2.keys.publicKey });
    raws.push(r2);
    expect(r2.address).toBe(2);
    expect((await i2.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const f = Buffer.from(i2.relayFrame(2, nacl.randomBytes(100)));
    expect(await r2.nextFrame()).toEqual(f);
  });

  it('responder on the killed node: the initiator on the survivor is told disconnected(its address) and its address is free again', async () => {
    const nodes = await startNodes();
    const i = await SaltyTestClient.connect(nodes.b.url, { role: 'initiator' });
    raws.push(i);
    const onA = await SaltyTestClient.connect(nodes.a.wsUrl, { role: 'responder', initiatorKey: i.keys.publicKey });
    expect(onA.address).toBe(2);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const killedAt = performance.now();
    nodes.a.child.kill('SIGKILL');
    await nodes.a.exited;
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 2 });
    const tookMs = performance.now() - killedAt;
    console.log(`cluster: responder's node SIGKILLed, initiator told after ${Math.round(tookMs)} ms (bound ${BOUND_MS} ms)`);
    expect(tookMs).toBeLessThan(BOUND_MS + SLACK_MS);
    const r = await SaltyTestClient.connect(nodes.b.url, { role: 'responder', initiatorKey: i.keys.publicKey });
    raws.push(r);
    expect(r.address).toBe(2);
  });
});

describe('Redis restarted', () => {
  it('closes every session with 1012, refuses upgrades with 503 while Redis is away, then works on fresh state', async () => {
    b = await startServer({ limits, redis: { url: redis.url } });
    const other = await startServer({ limits, redis: { url: redis.url } });
    try {
      const path = nacl.box.keyPair();
      const i = await SaltyTestClient.connect(b.url, { role: 'initiator', keys: path });
      const r = await SaltyTestClient.connect(other.url, { role: 'responder', initiatorKey: path.publicKey });
      expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });

      await redis.kill();
      expect((await i.sock.closed).code).toBe(1012);
      expect((await r.sock.closed).code).toBe(1012);
      // Nothing else reached either client after its last notice.
      expect(i.sock.pending + r.sock.pending).toBe(0);
      let status = 0;
      try {
        await RawSocket.open(`${b.url}/${Buffer.from(path.publicKey).toString('hex')}`);
      } catch (e) {
        status = (e as { status?: number }).status ?? -1;
      }
      expect(status).toBe(503);

      const registered = Promise.all([b.nextLog('cluster-registered'), other.nextLog('cluster-registered')]);
      await redis.start();
      await registered;
      // Fresh state: the same path starts empty (address 2 again, no initiator), and relaying works.
      const r2 = await SaltyTestClient.connect(other.url, { role: 'responder', initiatorKey: path.publicKey });
      raws.push(r2);
      expect(r2.address).toBe(2);
      expect(r2.serverAuth.initiator_connected).toBe(false);
      const i2 = await SaltyTestClient.connect(b.url, { role: 'initiator', keys: path });
      raws.push(i2);
      expect(i2.serverAuth.responders).toEqual([2]);
      expect((await r2.nextServerMessage()).msg).toEqual({ type: 'new-initiator' });
      const f = Buffer.from(r2.relayFrame(1, nacl.randomBytes(50)));
      expect(await i2.nextFrame()).toEqual(f);
      expect(b.observer.closes.filter((c) => c === 1012).length).toBe(1);
      expect(other.observer.closes.filter((c) => c === 1012).length).toBe(1);
    } finally {
      await Promise.all(raws.splice(0).map((c) => c.sock.close()));
      await other.stop();
    }
  });
});
