/**
 * A real redis-server (Debian package `redis-server`, installed by .ci/run) for the cluster tests:
 * 127.0.0.1 only, a free port, a temp dir, no persistence. `restart()` kills it and starts an empty
 * one on the same port (what a Redis restart without persistence looks like to the nodes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGKILL, then a new empty server on the same port. */
  restart(): Promise<void>;
  /** SIGKILL and wait for the exit (nothing listens on the port afterwards). */
  kill(): Promise<void>;
  /** Start again after kill() on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'yes',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      '--logfile',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      // With loglevel warning the ready line is not printed: probe the port instead (below).
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${output}`)));
    const probe = (): void => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.write('PING\r\n');
        sock.once('data', (d) => {
          sock.destroy();
          if (d.toString().startsWith('+PONG')) {
            child.removeAllListeners('exit');
            resolve(child);
          } else setTimeout(probe, 20);
        });
      });
      sock.once('error', () => {
        sock.destroy();
        if (child.exitCode === null) setTimeout(probe, 20);
      });
    };
    probe();
  });
}

function killChild(child: ChildProcess | null): Promise<void> {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zr-redis-'));
  let port = 0;
  let child: ChildProcess | null = null;
  // A port found free may be taken before redis binds it: try a few.
  for (let attempt = 0; child === null; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir);
    } catch (e) {
      if (attempt >= 4) throw e;
    }
  }
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      await killChild(child);
      child = null;
    },
    async start() {
      child = await launch(port, dir);
    },
    async restart() {
      await server.kill();
      await server.start();
    },
    async stop() {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
