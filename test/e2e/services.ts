/**
 * Extra services for browser tests: a real coturn on 127.0.0.1 with TURN REST auth, and a WebSocket
 * proxy in front of the signaling server that records every frame (to prove the server never sees
 * message texts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { buildApp, launchChromium, newContext, startServer, type ServerHandle } from './harness.ts';

export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface Coturn {
  readonly port: number;
  readonly secret: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * coturn with --use-auth-secret on 127.0.0.1 (flags from shared/notes/platform.md). `port`: listen
 * there instead of a free port (a restarted coturn in the same place, with no allocations).
 */
export async function startCoturn(opts: { port?: number } = {}): Promise<Coturn> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zr-coturn-'));
  const port = opts.port ?? (await freePort());
  const secret = 'e2e-turn-secret-0123456789';
  // A relay port range per run, away from the ephemeral range's busiest part.
  const minPort = 50_000 + (process.pid % 100) * 100;
  const child = spawn(
    'turnserver',
    [
      '-n',
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${port}`,
      `--min-port=${minPort}`,
      `--max-port=${minPort + 99}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      '--realm=zeroroom.test',
      '--fingerprint',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--allow-loopback-peers',
      '--no-multicast-peers',
      `--pidfile=${path.join(dir, 'turnserver.pid')}`,
      `--userdb=${path.join(dir, 'turndb')}`,
      '--log-file=stdout',
      '--simple-log',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      // coturn has no readiness signal; this line follows the creation of its listener threads, and
      // Chromium retransmits TURN requests if one arrives a moment early.
      if (/Total General servers/.test(out)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`turnserver exited with ${code}:\n${out}`)));
  });
  return {
    port,
    secret,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface FrameRecorder {
  /** ws:// URL to use as the signaling URL (the app appends the path). */
  readonly url: string;
  readonly origin: string;
  /** Every frame in either direction, as received. */
  readonly frames: Buffer[];
  /** Where to forward (ws://host:port); set once the signaling server runs. */
  setTarget(url: string): void;
  close(): Promise<void>;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** A transparent WebSocket proxy to the target (ws://host:port) that keeps a copy of every frame. */
export async function startFrameRecorder(): Promise<FrameRecorder> {
  let target = '';
  const http = createHttpServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const frames: Buffer[] = [];
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({
    server: http,
    handleProtocols: (protocols) => (protocols.has('v1.saltyrtc.org') ? 'v1.saltyrtc.org' : false),
  });
  wss.on('connection', (client, req) => {
    const upstream = new WebSocket(target + (req.url ?? '/'), 'v1.saltyrtc.org');
    sockets.add(client);
    sockets.add(upstream);
    const queue: Buffer[] = [];
    upstream.on('open', () => {
      for (const f of queue.splice(0)) upstream.send(f);
    });
    client.on('message', (data) => {
      const b = toBuffer(data);
      frames.push(b);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(b);
      else queue.push(b);
    });
    upstream.on('message', (data) => {
      const b = toBuffer(data);
      frames.push(b);
      if (client.readyState === WebSocket.OPEN) client.send(b);
    });
    const closeBoth = (code: number): void => {
      const c = code >= 3000 && code < 5000 ? code : 1000;
      if (client.readyState === WebSocket.OPEN) client.close(c);
      if (upstream.readyState === WebSocket.OPEN) upstream.close(c);
      if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
    };
    client.on('close', (code) => closeBoth(code));
    upstream.on('close', (code) => closeBoth(code));
    client.on('error', () => closeBoth(1011));
    upstream.on('error', () => closeBoth(1011));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    origin: `ws://127.0.0.1:${port}`,
    frames,
    setTarget(url) {
      target = url;
    },
    async close() {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** The relay-only tests' world: a coturn, `zeroroom serve` handing out its TURN credentials, Chromium. */
export interface TurnWorld {
  /** Replaceable: a test may stop it and start another on the same port (same secret). */
  coturn: Coturn | undefined;
  readonly server: ServerHandle;
  readonly browser: Browser;
  /** A page in a new browser context (a device of its own). */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function startTurnWorld(): Promise<TurnWorld> {
  const webDir = await buildApp();
  const coturn = await startCoturn();
  const server = await startServer(webDir, ['--turn-url', `turn:127.0.0.1:${coturn.port}?transport=udp`, '--turn-secret', coturn.secret]);
  const browser = await launchChromium();
  const contexts: BrowserContext[] = [];
  const world: TurnWorld = {
    coturn,
    server,
    browser,
    async newPage() {
      const context = await newContext(browser);
      contexts.push(context);
      return context.newPage();
    },
    async close() {
      for (const c of contexts) await c.close();
      await browser.close();
      await server.stop();
      await world.coturn?.stop();
    },
  };
  return world;
}
