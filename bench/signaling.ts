// npm run bench:signaling — the signaling server on loopback, in one run (< ~60 s):
//   1. completed server handshakes per second (many concurrent clients);
//   2. relay throughput initiator -> responder (frames/s, MB/s), ratio to a bare `ws` relay;
//   3. memory per idle connection at 5,000 connections, ratio to bare `ws`.
// The server (ours or the bare ws baseline) runs in a child process, so client work and client memory
// do not count; the child is started with --expose-gc and reports process.memoryUsage() after gc.
// Targets (issue 3): relay >= 0.8x bare ws; memory/conn <= 1.5x bare ws; no errors at 5,000 connections.
//
// npm run bench:signaling -- --nodes 2 — several nodes (issue 12): a real redis-server on 127.0.0.1
// (free port, temp dir) and two server children sharing it, against one node without Redis:
//   handshakes/s, relay frames/s with the initiator on node 1 and the responder on node 2, and the
//   latency Redis adds per relayed frame (one frame in flight at a time; median and p99).
import { type ChildProcess, fork } from 'node:child_process';
import { type KeyObject, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import msgpack from 'msgpack-lite';
import nacl from 'tweetnacl';
import WebSocket, { WebSocketServer } from 'ws';

const SUBPROTOCOL = 'v1.saltyrtc.org';
const IDLE_CONNECTIONS = 5000;
/** Alternating memory rounds per server (a fresh child process each); the report uses the medians. */
const MEMORY_ROUNDS = 3;
const HANDSHAKE_SECONDS = 3;
const HANDSHAKE_CONCURRENCY = 64;
const RELAY_SECONDS = 1.5;
/** Ours and bare alternate this many times per frame size; the best run of each counts (the machine is shared). */
const RELAY_ROUNDS = 3;
const RELAY_FRAME_SIZES = [1024, 16 * 1024];
/** Bytes in flight from initiator to responder: a real sender waits for its peer too. Staying under the
 * server's per-connection buffer limit keeps it from refusing frames (send-error) in both servers. */
const RELAY_WINDOW_BYTES = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Child process: the server under test.
// ---------------------------------------------------------------------------------------------

type ChildRequest = { cmd: 'memory' } | { cmd: 'cpu' } | { cmd: 'stop' };
type ChildReport =
  | { kind: 'ready'; port: number; serverKeyHex: string }
  | { kind: 'cpu'; cpuMs: number }
  | {
      kind: 'memory';
      rss: number;
      heapUsed: number;
      external: number;
      arrayBuffers: number;
      connections: number;
      rejects: number;
      cpuMs: number;
    };

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function runChild(kind: 'ours' | 'bare', redisUrl: string | undefined): Promise<void> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  let connections: () => number;
  let rejects: () => number = () => 0;
  let close: () => Promise<void>;
  let serverKeyHex = '';
  if (kind === 'ours') {
    const { generateBoxKeyPair } = await import('../crypto/index.ts');
    const { attachSignalingServer } = await import('../signaling/server.ts');
    const { SignalingMetrics } = await import('../signaling/metrics.ts');
    const keys = generateBoxKeyPair();
    serverKeyHex = Buffer.from(keys.publicKey).toString('hex');
    const metrics = new SignalingMetrics();
    // --redis URL: a cluster node (the code path of `zeroroom serve --redis`).
    let node: { close(): Promise<void> } | undefined;
    let registry: Parameters<typeof attachSignalingServer>[0]['registry'];
    if (redisUrl !== undefined) {
      const { ClusterNode, clusterRegistry } = await import('../signaling/cluster/node.ts');
      const started = await ClusterNode.start({ url: redisUrl, maxPayload: 1024 * 1024 });
      node = started;
      registry = clusterRegistry(started);
    }
    const signaling = attachSignalingServer({
      ...(registry !== undefined ? { registry } : {}),
      server,
      permanentKeys: [keys],
      observer: metrics,
      // Everything comes from 127.0.0.1 here: lift the per-IP limits, keep the code paths.
      limits: { maxConnections: 50_000, maxConnectionsPerIp: 50_000, newConnectionsPerSecondPerIp: 1_000_000, handshakeTimeoutMs: 60_000 },
    });
    connections = () => signaling.connectionCount;
    rejects = () => [...metrics.rejectsByReason.values()].reduce((a, b) => a + b, 0);
    close = async () => {
      await signaling.close();
      await node?.close();
    };
  } else {
    // The baseline: only the WebSocket part. Same path pairing, verbatim forwarding, no parsing, no crypto.
    const wss = new WebSocketServer({
      server,
      perMessageDeflate: false,
      handleProtocols: (p) => (p.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    const paths = new Map<string, Set<WebSocket>>();
    wss.on('connection', (ws, req) => {
      const path = req.url ?? '/';
      let peers = paths.get(path);
      if (peers === undefined) paths.set(path, (peers = new Set()));
      peers.add(ws);
      ws.on('message', (data, isBinary) => {
        for (const other of peers) if (other !== ws) other.send(data, { binary: isBinary });
      });
      ws.on('close', () => {
        peers.delete(ws);
        if (peers.size === 0) paths.delete(path);
      });
    });
    connections = () => wss.clients.size;
    close = async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    };
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const send = (r: ChildReport) => process.send?.(r);
  process.on('message', (m: ChildRequest) => {
    if (m.cmd === 'cpu') {
      send({ kind: 'cpu', cpuMs: cpuMs() });
    } else if (m.cmd === 'memory') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      const u = process.memoryUsage();
      // BENCH_HEAP_DIR=dir: a heap snapshot of each server child at the memory reading (DevTools).
      const heapDir = process.env.BENCH_HEAP_DIR;
      if (heapDir !== undefined && heapDir !== '') v8.writeHeapSnapshot(path.join(heapDir, `${kind}-${process.pid}.heapsnapshot`));
      send({
        kind: 'memory',
        rss: u.rss,
        heapUsed: u.heapUsed,
        external: u.external,
        arrayBuffers: u.arrayBuffers,
        connections: connections(),
        rejects: rejects(),
        cpuMs: cpuMs(),
      });
    } else {
      void close().then(() => {
        server.close();
        server.closeAllConnections();
        process.exit(0);
      });
    }
  });
  send({ kind: 'ready', port: (server.address() as AddressInfo).port, serverKeyHex });
}

// ---------------------------------------------------------------------------------------------
// Parent: clients and measurements.
// ---------------------------------------------------------------------------------------------

interface ServerChild {
  readonly child: ChildProcess;
  readonly url: string;
  readonly serverKey: Buffer;
  memory(): Promise<Extract<ChildReport, { kind: 'memory' }>>;
  /** CPU time the server process has used so far (no gc, unlike memory()). */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

/** Rejects if `p` has not settled within `ms` (a stuck child must fail the run, not hang it). */
function withDeadline<T>(p: Promise<T>, what: string, ms: number = STEP_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

function startChild(kind: 'ours' | 'bare', redisUrl?: string): Promise<ServerChild> {
  const child = fork(fileURLToPath(import.meta.url), ['--child', kind, ...(redisUrl !== undefined ? ['--redis', redisUrl] : [])], {
    // BENCH_PROFILE_DIR=dir writes a V8 CPU profile of each server child (open it in Chrome DevTools).
    execArgv: [
      '--expose-gc',
      '--import',
      'tsx',
      ...(process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return withDeadline(
    new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code} before it was ready`)));
      child.once('message', (m: ChildReport) => {
        if (m.kind !== 'ready') return reject(new Error('unexpected first message'));
        resolve({
          child,
          url: `ws://127.0.0.1:${m.port}`,
          serverKey: Buffer.from(m.serverKeyHex, 'hex'),
          memory: () =>
            withDeadline(
              new Promise((res) => {
                child.once('message', (r: ChildReport) => {
                  if (r.kind === 'memory') res(r);
                });
                child.send({ cmd: 'memory' } satisfies ChildRequest);
              }),
              `${kind} server memory report`,
            ),
          cpuMs: () =>
            new Promise((res) => {
              child.once('message', (r: ChildReport) => {
                if (r.kind === 'cpu') res(r.cpuMs);
              });
              child.send({ cmd: 'cpu' } satisfies ChildRequest);
            }),
          stop: async () => {
            child.send({ cmd: 'stop' } satisfies ChildRequest);
            await exited;
          },
        });
      });
    }),
    `${kind} server start`,
    // Compiling and loading the server through tsx takes seconds on a loaded machine.
    START_DEADLINE_MS,
  );
}

// --- NaCl box with native X25519: box.before = HSalsa20(X25519(sk, pk)); verified against tweetnacl below.
// Keys go in and out as JWK: Node's DER (PKCS#8/SPKI) import costs ~575/150 us per key here, JWK ~55/15 us.
const SIGMA = new Uint8Array(Buffer.from('expand 32-byte k', 'latin1'));
const ZERO16 = new Uint8Array(16);

interface ClientKeys {
  readonly publicKey: Buffer;
  readonly secretKey: Buffer;
  readonly privateKeyObject: KeyObject;
}

function newClientKeys(): ClientKeys {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
    secretKey: Buffer.from(jwk.d as string, 'base64url'),
    privateKeyObject: privateKey,
  };
}

function boxBeforeNative(theirPublic: Uint8Array, mine: KeyObject): Uint8Array {
  const dh = diffieHellman({
    privateKey: mine,
    publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(theirPublic).toString('base64url') }, format: 'jwk' }),
  });
  const k = new Uint8Array(32);
  (
    nacl as unknown as { lowlevel: { crypto_core_hsalsa20(o: Uint8Array, i: Uint8Array, k: Uint8Array, c: Uint8Array): void } }
  ).lowlevel.crypto_core_hsalsa20(k, ZERO16, new Uint8Array(dh), SIGMA);
  return k;
}

function checkNativeBox(): void {
  const a = newClientKeys();
  const b = nacl.box.keyPair();
  const ours = boxBeforeNative(b.publicKey, a.privateKeyObject);
  const theirs = nacl.box.before(b.publicKey, new Uint8Array(a.secretKey));
  if (Buffer.compare(Buffer.from(ours), Buffer.from(theirs)) !== 0) throw new Error('native box.before differs from tweetnacl');
}

// --- a minimal SaltyRTC client: only the client-to-server handshake (Protocol.md), then raw frames.

function nonce(cookie: Buffer, source: number, destination: number, seq: number): Buffer {
  const n = Buffer.alloc(24);
  cookie.copy(n, 0);
  n[16] = source;
  n[17] = destination;
  n.writeUInt32BE(seq >>> 0, 20);
  return n;
}

interface SaltyConn {
  readonly ws: WebSocket;
  readonly id: number;
  readonly cookie: Buffer;
  seq: number;
}

/** Every connect and handshake step gets this deadline, so a stuck server fails the run loudly instead of hanging it. */
const STEP_DEADLINE_MS = 15_000;
const START_DEADLINE_MS = 60_000;

/** Resolves with `event`'s first argument; rejects on close, error, or after STEP_DEADLINE_MS (terminating the socket). */
function awaitSocket<T>(ws: WebSocket, event: 'message' | 'open', what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      ws.off(event, onEvent);
      ws.off('close', onClose);
      ws.off('error', onError);
    };
    const onEvent = (data: T) => {
      done();
      resolve(data);
    };
    const onClose = (code: number) => {
      done();
      reject(new Error(`closed with ${code} during ${what}`));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const timer = setTimeout(() => {
      done();
      ws.terminate();
      reject(new Error(`no ${what} within ${STEP_DEADLINE_MS} ms`));
    }, STEP_DEADLINE_MS);
    ws.once(event, onEvent);
    ws.once('close', onClose);
    ws.once('error', onError);
  });
}

const firstMessage = (ws: WebSocket): Promise<Buffer> => awaitSocket<Buffer>(ws, 'message', 'the handshake');

/** Connects as initiator (path = own key) or responder and completes the server handshake. */
async function saltyConnect(
  url: string,
  serverKey: Buffer,
  role: 'initiator' | 'responder',
  path: string,
  keys: ClientKeys,
): Promise<SaltyConn> {
  const ws = new WebSocket(`${url}/${path}`, SUBPROTOCOL, { perMessageDeflate: false });
  const helloBytes = await firstMessage(ws);
  const serverCookie = helloBytes.subarray(0, 16);
  const hello = msgpack.decode(helloBytes.subarray(24)) as { type: string; key: Buffer };
  if (hello.type !== 'server-hello') throw new Error(`expected server-hello, got ${hello.type}`);
  const shared = boxBeforeNative(hello.key, keys.privateKeyObject);
  let cookie = randomBytes(16);
  while (cookie.equals(serverCookie)) cookie = randomBytes(16);
  let seq = randomBytes(4).readUInt32BE(0) >>> 1;
  if (role === 'responder') {
    ws.send(Buffer.concat([nonce(cookie, 0, 0, seq++), msgpack.encode({ type: 'client-hello', key: keys.publicKey })]));
  }
  const authNonce = nonce(cookie, 0, 0, seq++);
  const auth = msgpack.encode({
    type: 'client-auth',
    your_cookie: serverCookie,
    subprotocols: [SUBPROTOCOL],
    ping_interval: 0,
    your_key: serverKey,
  });
  const reply = firstMessage(ws);
  ws.send(Buffer.concat([authNonce, nacl.box.after(auth, authNonce, shared)]));
  const serverAuth = await reply;
  const opened = nacl.box.open.after(serverAuth.subarray(24), serverAuth.subarray(0, 24), shared);
  if (opened === null) throw new Error('server-auth does not decrypt');
  const msg = msgpack.decode(opened) as { type: string };
  if (msg.type !== 'server-auth') throw new Error(`expected server-auth, got ${msg.type}`);
  return { ws, id: serverAuth[17] as number, cookie, seq };
}

async function openBare(url: string, path: string): Promise<SaltyConn> {
  const ws = new WebSocket(`${url}/${path}`, SUBPROTOCOL, { perMessageDeflate: false });
  await awaitSocket<void>(ws, 'open', 'the WebSocket open');
  return { ws, id: 0, cookie: randomBytes(16), seq: 0 };
}

function closeAll(conns: readonly SaltyConn[]): Promise<void> {
  return Promise.all(
    conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          c.ws.once('close', () => resolve());
          c.ws.terminate();
        }),
    ),
  ).then(() => undefined);
}

// --- 1. handshakes per second

async function benchHandshakes(
  server: ServerChild,
  /** Several nodes: worker w connects to servers[w % n] (a load balancer's round robin). */
  servers: readonly ServerChild[] = [server],
): Promise<{ perSecond: number; errors: number; total: number; serverCpuMsEach: number; clientCpuMsEach: number }> {
  const cpuOf = async () => (await Promise.all(servers.map((x) => x.memory()))).reduce((n, m) => n + m.cpuMs, 0);
  const serverCpuBefore = await cpuOf();
  const clientCpuBefore = cpuMs();
  let done = 0;
  let errors = 0;
  let firstError = '';
  const deadline = performance.now() + HANDSHAKE_SECONDS * 1000;
  const start = performance.now();
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const keys = newClientKeys();
      const role = (w + i) % 2 === 0 ? 'initiator' : 'responder';
      try {
        const target = servers[w % servers.length]!;
        const conn = await saltyConnect(
          target.url,
          target.serverKey,
          role,
          role === 'initiator' ? keys.publicKey.toString('hex') : randomBytes(32).toString('hex'),
          keys,
        );
        done++;
        await closeAll([conn]);
      } catch (e) {
        errors++;
        firstError ||= String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: HANDSHAKE_CONCURRENCY }, (_, w) => worker(w)));
  const elapsed = (performance.now() - start) / 1000;
  if (errors > 0) console.log(`  handshake errors: ${errors} (first: ${firstError})`);
  const serverCpu = (await cpuOf()) - serverCpuBefore;
  return {
    perSecond: done / elapsed,
    errors,
    total: done,
    serverCpuMsEach: serverCpu / done,
    clientCpuMsEach: (cpuMs() - clientCpuBefore) / done,
  };
}

// --- 2. relay throughput

async function relayPair(
  server: ServerChild,
  kind: 'ours' | 'bare',
  responderServer: ServerChild = server,
): Promise<{ initiator: SaltyConn; responder: SaltyConn }> {
  const keys = newClientKeys();
  const path = keys.publicKey.toString('hex');
  if (kind === 'bare') {
    const initiator = await openBare(server.url, path);
    return { initiator, responder: await openBare(server.url, path) };
  }
  const initiator = await saltyConnect(server.url, server.serverKey, 'initiator', path, keys);
  // The initiator's new-responder notice, taken off the socket so the relay counts only relayed frames
  // (listening before the responder connects: the notice comes before the responder's server-auth).
  const notice = firstMessage(initiator.ws);
  const responder = await saltyConnect(responderServer.url, responderServer.serverKey, 'responder', path, newClientKeys());
  await notice;
  return { initiator, responder };
}

interface RelayRun {
  readonly framesPerSecond: number;
  readonly mbPerSecond: number;
  /** Server CPU per relayed frame: robust against other load on the machine, unlike wall-clock rates. */
  readonly serverCpuUsPerFrame: number;
}

async function benchRelay(
  server: ServerChild,
  kind: 'ours' | 'bare',
  frameSize: number,
  responderServer: ServerChild = server,
): Promise<RelayRun> {
  const { initiator, responder } = await relayPair(server, kind, responderServer);
  const cpuBefore = (await server.cpuMs()) + (responderServer !== server ? await responderServer.cpuMs() : 0);
  const payload = randomBytes(frameSize - 24);
  let received = 0;
  let receivedBytes = 0;
  let lastReceived = 0;
  let sent = 0;
  let refused = 0;
  const start = performance.now();
  const sendUntil = start + RELAY_SECONDS * 1000;
  // Event-driven window: each arrival at the responder lets the initiator send more.
  const pump = () => {
    while (performance.now() < sendUntil && (sent - received) * frameSize < RELAY_WINDOW_BYTES) {
      // A fresh nonce per frame, as a real client would send (sequence number counts up).
      const n = nonce(initiator.cookie, 0x01, responder.id, initiator.seq++);
      initiator.ws.send(Buffer.concat([n, payload]));
      sent++;
    }
  };
  // From the server itself (source 0x00) the initiator gets send-error if a frame could not be relayed.
  initiator.ws.on('message', (data: Buffer) => {
    if (data[16] === 0x00 && kind === 'ours') refused++;
  });
  await new Promise<void>((resolve, reject) => {
    const drainDeadline = setTimeout(
      () => reject(new Error(`${kind}: ${sent - received} of ${sent} frames did not arrive (${refused} server messages to the sender)`)),
      RELAY_SECONDS * 1000 + 10_000,
    );
    responder.ws.on('message', (data: Buffer) => {
      // Frames from the server itself (source 0x00, e.g. new-initiator) are not relayed data.
      if (data[16] !== 0x01) return;
      received++;
      receivedBytes += data.length;
      lastReceived = performance.now();
      pump();
      if (received === sent && performance.now() >= sendUntil) {
        clearTimeout(drainDeadline);
        resolve();
      }
    });
    pump();
  });
  const seconds = (lastReceived - start) / 1000;
  const serverCpuMs = (await server.cpuMs()) + (responderServer !== server ? await responderServer.cpuMs() : 0) - cpuBefore;
  await closeAll([initiator, responder]);
  return {
    framesPerSecond: received / seconds,
    mbPerSecond: receivedBytes / seconds / 1e6,
    serverCpuUsPerFrame: (serverCpuMs * 1000) / received,
  };
}

// --- 3. memory per idle connection

async function benchMemory(
  kind: 'ours' | 'bare',
): Promise<{ perConnection: number; heapPerConnection: number; errors: number; serverConnections: number; rejects: number }> {
  const server = await startChild(kind);
  try {
    // Warm up the code paths (and JIT) so the baseline is not measured before the first connection.
    const warm = await relayPair(server, kind);
    await closeAll([warm.initiator, warm.responder]);
    const before = await server.memory();
    const conns: SaltyConn[] = [];
    let errors = 0;
    let firstError = '';
    const pairs = IDLE_CONNECTIONS / 2;
    let next = 0;
    const worker = async () => {
      while (next < pairs) {
        next++;
        try {
          const pair = await relayPair(server, kind);
          conns.push(pair.initiator, pair.responder);
        } catch (e) {
          errors++;
          firstError ||= String(e);
        }
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    let closedEarly = 0;
    const countEarlyClose = () => closedEarly++; // an idle connection must stay open
    for (const c of conns) c.ws.on('close', countEarlyClose);
    const after = await server.memory();
    for (const c of conns) c.ws.off('close', countEarlyClose);
    errors += closedEarly;
    if (errors > 0) console.log(`  ${kind}: ${errors} connection errors (first: ${firstError || 'closed while idle'})`);
    await closeAll(conns);
    return {
      perConnection: (after.rss - before.rss) / IDLE_CONNECTIONS,
      heapPerConnection: (after.heapUsed + after.external - before.heapUsed - before.external) / IDLE_CONNECTIONS,
      errors,
      serverConnections: after.connections,
      rejects: after.rejects,
    };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');

async function main(): Promise<void> {
  checkNativeBox();
  const t0 = performance.now();
  // The load average says how much the (shared) machine was doing besides this run.
  const load = () => os.loadavg()[0]?.toFixed(1) ?? '?';
  console.log(`bench:signaling  node ${process.version}, ${os.cpus().length} cores, load ${load()}, loopback, server in a child process`);

  const ours = await startChild('ours');
  const hs = await benchHandshakes(ours);
  console.log(
    `handshakes: ${fmt(hs.perSecond)}/s completed server handshakes (${HANDSHAKE_CONCURRENCY} concurrent clients, ${hs.total} in ${HANDSHAKE_SECONDS} s, ${hs.errors} errors; half initiators, half responders; new WebSocket each); CPU per handshake: server ${fmt(hs.serverCpuMsEach, 2)} ms, clients ${fmt(hs.clientCpuMsEach, 2)} ms`,
  );
  const bare = await startChild('bare');
  let relayOk = true;
  const best = (runs: RelayRun[]) => runs.reduce((x, y) => (y.mbPerSecond > x.mbPerSecond ? y : x));
  const leastCpu = (runs: RelayRun[]) => Math.min(...runs.map((r) => r.serverCpuUsPerFrame));
  for (const size of RELAY_FRAME_SIZES) {
    const oursRuns = [];
    const bareRuns = [];
    for (let round = 0; round < RELAY_ROUNDS; round++) {
      oursRuns.push(await benchRelay(ours, 'ours', size));
      bareRuns.push(await benchRelay(bare, 'bare', size));
    }
    const o = best(oursRuns);
    const b = best(bareRuns);
    const ratio = o.mbPerSecond / b.mbPerSecond;
    const cpuRatio = leastCpu(bareRuns) / leastCpu(oursRuns);
    relayOk &&= ratio >= 0.8;
    console.log(
      `relay ${fmt(size / 1024)} KiB frames: ours ${fmt(o.framesPerSecond)} frames/s ${fmt(o.mbPerSecond, 1)} MB/s | bare ws ${fmt(b.framesPerSecond)} frames/s ${fmt(b.mbPerSecond, 1)} MB/s | ratio ${fmt(ratio, 2)}x (target >= 0.8x) ${verdict(ratio >= 0.8)} (best of ${RELAY_ROUNDS} alternating ${RELAY_SECONDS} s runs); server CPU per frame ours ${fmt(leastCpu(oursRuns), 1)} us, bare ${fmt(leastCpu(bareRuns), 1)} us = capacity ratio ${fmt(cpuRatio, 2)}x`,
    );
  }
  await ours.stop();
  await bare.stop();

  // RSS per connection is noisy (allocator, page granularity): alternate fresh child processes of ours and
  // bare ws for MEMORY_ROUNDS rounds each and compare the medians.
  const oursMem = [];
  const bareMem = [];
  for (let round = 0; round < MEMORY_ROUNDS; round++) {
    oursMem.push(await benchMemory('ours'));
    bareMem.push(await benchMemory('bare'));
  }
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  };
  const kib = (xs: number[]) => xs.map((x) => fmt(x / 1024, 1)).join(' ');
  const oRss = median(oursMem.map((m) => m.perConnection));
  const bRss = median(bareMem.map((m) => m.perConnection));
  const oHeap = median(oursMem.map((m) => m.heapPerConnection));
  const bHeap = median(bareMem.map((m) => m.heapPerConnection));
  const memRatio = oRss / bRss;
  const mo = {
    errors: oursMem.reduce((n, m) => n + m.errors, 0),
    rejects: oursMem.reduce((n, m) => n + m.rejects, 0),
    serverConnections: Math.min(...oursMem.map((m) => m.serverConnections)),
  };
  const noErrors = mo.errors === 0 && mo.serverConnections === IDLE_CONNECTIONS && mo.rejects === 0;
  console.log(
    `memory at ${IDLE_CONNECTIONS} idle connections (${IDLE_CONNECTIONS / 2} paths, handshakes done; median of ${MEMORY_ROUNDS} alternating child processes each): ours ${fmt(oRss / 1024, 1)} KiB/conn RSS [${kib(oursMem.map((m) => m.perConnection))}] (${fmt(oHeap / 1024, 1)} KiB heap+external) | bare ws ${fmt(bRss / 1024, 1)} KiB/conn RSS [${kib(bareMem.map((m) => m.perConnection))}] (${fmt(bHeap / 1024, 1)} KiB heap+external) | ratio of medians ${fmt(memRatio, 2)}x RSS, ${fmt(oHeap / bHeap, 2)}x heap+external (target <= 1.5x) ${verdict(memRatio <= 1.5)}`,
  );
  console.log(
    `errors at ${IDLE_CONNECTIONS} connections: ${mo.errors} client errors, server holds ${mo.serverConnections} connections, ${mo.rejects} rejects ${verdict(noErrors)}`,
  );
  console.log(
    `summary (load ${load()}): relay ${verdict(relayOk)}, memory ${verdict(memRatio <= 1.5)}, 5k connections ${verdict(noErrors)}; ${fmt((performance.now() - t0) / 1000, 1)} s`,
  );
}

// --- several nodes (--nodes 2) ----------------------------------------------------------------

const LATENCY_FRAMES = 2000;

/** One frame in flight at a time, initiator -> responder: one-way times in ms (both ends in this process). */
async function relayLatencies(initiatorServer: ServerChild, responderServer: ServerChild): Promise<number[]> {
  const { initiator, responder } = await relayPair(initiatorServer, 'ours', responderServer);
  const payload = randomBytes(200);
  const times: number[] = [];
  for (let k = 0; k < LATENCY_FRAMES + 100; k++) {
    const arrived = new Promise<void>((resolve) => {
      const on = (data: Buffer) => {
        if (data[16] !== 0x01) return;
        responder.ws.off('message', on);
        resolve();
      };
      responder.ws.on('message', on);
    });
    const t0 = performance.now();
    initiator.ws.send(Buffer.concat([nonce(initiator.cookie, 0x01, responder.id, initiator.seq++), payload]));
    await withDeadline(arrived, 'a relayed frame');
    if (k >= 100) times.push(performance.now() - t0); // the first 100 warm up
  }
  await closeAll([initiator, responder]);
  return times;
}

function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function mainNodes(): Promise<void> {
  checkNativeBox();
  const t0 = performance.now();
  const load = () => os.loadavg()[0]?.toFixed(1) ?? '?';
  const { startRedis } = await import('../test/signaling/redis-server.ts');
  const redis = await startRedis();
  console.log(
    `bench:signaling --nodes 2  node ${process.version}, ${os.cpus().length} cores, load ${load()}, loopback; redis-server on 127.0.0.1:${redis.port}; every server in its own child process`,
  );
  try {
    const one = await startChild('ours');
    const n1 = await startChild('ours', redis.url);
    const n2 = await startChild('ours', redis.url);
    try {
      const hs1 = await benchHandshakes(one);
      const hs2 = await benchHandshakes(n1, [n1, n2]);
      console.log(
        `handshakes: 1 node ${fmt(hs1.perSecond)}/s (server CPU ${fmt(hs1.serverCpuMsEach, 2)} ms each) | 2 nodes + Redis ${fmt(hs2.perSecond)}/s (server CPU ${fmt(hs2.serverCpuMsEach, 2)} ms each, both nodes) | ratio ${fmt(hs2.perSecond / hs1.perSecond, 2)}x; errors ${hs1.errors}/${hs2.errors} (${HANDSHAKE_CONCURRENCY} concurrent clients, ${HANDSHAKE_SECONDS} s each)`,
      );
      for (const size of [1024]) {
        const oneRuns: RelayRun[] = [];
        const twoRuns: RelayRun[] = [];
        for (let round = 0; round < RELAY_ROUNDS; round++) {
          oneRuns.push(await benchRelay(one, 'ours', size));
          twoRuns.push(await benchRelay(n1, 'ours', size, n2));
        }
        const best = (runs: RelayRun[]) => runs.reduce((x, y) => (y.framesPerSecond > x.framesPerSecond ? y : x));
        const o = best(oneRuns);
        const t = best(twoRuns);
        console.log(
          `relay ${fmt(size / 1024)} KiB frames: 1 node ${fmt(o.framesPerSecond)} frames/s ${fmt(o.mbPerSecond, 1)} MB/s (server CPU ${fmt(o.serverCpuUsPerFrame, 1)} us/frame) | initiator on node 1, responder on node 2 ${fmt(t.framesPerSecond)} frames/s ${fmt(t.mbPerSecond, 1)} MB/s (both nodes' CPU ${fmt(t.serverCpuUsPerFrame, 1)} us/frame) | ratio ${fmt(t.framesPerSecond / o.framesPerSecond, 2)}x (best of ${RELAY_ROUNDS} alternating ${RELAY_SECONDS} s runs)`,
        );
      }
      const lat1 = await relayLatencies(one, one);
      const lat2 = await relayLatencies(n1, n2);
      const latSame = await relayLatencies(n1, n1);
      const m1 = quantile(lat1, 0.5);
      const p1 = quantile(lat1, 0.99);
      const m2 = quantile(lat2, 0.5);
      const p2 = quantile(lat2, 0.99);
      console.log(
        `relay latency (200 B frames, one in flight, ${LATENCY_FRAMES} frames): 1 node median ${fmt(m1 * 1000)} us p99 ${fmt(p1 * 1000)} us | 2 nodes median ${fmt(m2 * 1000)} us p99 ${fmt(p2 * 1000)} us | Redis adds median ${fmt((m2 - m1) * 1000)} us, p99 ${fmt((p2 - p1) * 1000)} us per frame (ratio ${fmt(m2 / m1, 2)}x median); both clients on one clustered node: median ${fmt(quantile(latSame, 0.5) * 1000)} us p99 ${fmt(quantile(latSame, 0.99) * 1000)} us`,
      );
    } finally {
      await one.stop();
      await n1.stop();
      await n2.stop();
    }
  } finally {
    await redis.stop();
  }
  console.log(`summary (load ${load()}): ${fmt((performance.now() - t0) / 1000, 1)} s`);
}

const childIndex = process.argv.indexOf('--child');
const redisIndex = process.argv.indexOf('--redis');
const nodesIndex = process.argv.indexOf('--nodes');
if (childIndex !== -1) {
  await runChild(process.argv[childIndex + 1] === 'ours' ? 'ours' : 'bare', redisIndex !== -1 ? process.argv[redisIndex + 1] : undefined);
} else if (nodesIndex !== -1) {
  const nodes = Number(process.argv[nodesIndex + 1]);
  if (nodes !== 2) throw new Error('--nodes: only 2 is measured (two nodes against one)');
  await mainNodes();
} else {
  await main();
}
