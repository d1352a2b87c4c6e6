// `zeroroom host` / `zeroroom join` as child processes: JSON commands in, JSON events out, and a
// helper that awaits an event matching a predicate (with a deadline) instead of sleeping.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { BIN, REPO_ROOT, cleanEnv, killAll, startServe, type ServeRun } from '../cli/spawn-cli.ts';

export type Ev = { event: string } & Record<string, unknown>;

export class Client {
  readonly events: Ev[] = [];
  readonly child: ChildProcess;
  private stderrText = '';
  private waiters: { pred: (e: Ev) => boolean; resolve: (e: Ev) => void; from: number }[] = [];
  readonly exited: Promise<number | string>;

  /**
   * `others`: the other clients of the same test, whose stderr a timeout report also shows (a mesh
   * link that never came up is explained by the peer that should have answered).
   */
  constructor(
    readonly label: string,
    args: readonly string[],
    env: Record<string, string> = {},
    private readonly others: readonly Client[] = [],
  ) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env: cleanEnv({ ZEROROOM_LOOPBACK: '1', ...env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.push(line);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderrText += s));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  }

  private push(line: string): void {
    let ev: Ev;
    try {
      ev = JSON.parse(line) as Ev;
    } catch (e) {
      throw new Error(`${this.label}: stdout line is not JSON: ${line}`, { cause: e });
    }
    const index = this.events.length;
    this.events.push(ev);
    this.waiters = this.waiters.filter((w) => {
      if (index < w.from || !w.pred(ev)) return true;
      w.resolve(ev);
      return false;
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  send(cmd: object | string): void {
    this.child.stdin!.write((typeof cmd === 'string' ? cmd : JSON.stringify(cmd)) + '\n');
  }

  /** The first event at position >= `from` matching `pred`, waiting up to `ms`. */
  waitFor(pred: (e: Ev) => boolean, what: string, ms = 30_000, from = 0): Promise<Ev> {
    const found = this.events.slice(from).find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<Ev>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `${this.label}: timed out waiting for ${what}\nevents: ${this.events.map((e) => JSON.stringify(e)).join('\n')}\nstderr: ${this.stderrText.slice(-3000)}` +
              this.others
                .filter((c) => c !== this)
                .map((c) => `\n--- ${c.label} stderr: ${c.stderr.slice(-1500)}`)
                .join(''),
          ),
        );
      }, ms);
      const waiter = {
        pred,
        from,
        resolve: (e: Ev) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Send a command and wait for the first matching event it causes. */
  request(cmd: object | string, pred: (e: Ev) => boolean, what: string, ms?: number): Promise<Ev> {
    const from = this.events.length;
    this.send(cmd);
    return this.waitFor(pred, what, ms, from);
  }

  messages(): Ev[] {
    return this.events.filter((e) => e.event === 'message');
  }

  /** Ask to quit and wait for the exit code. */
  async quit(): Promise<number | string> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.send({ cmd: 'quit' });
    return this.exited;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export const isEvent =
  (name: string, fields: Record<string, unknown> = {}) =>
  (e: Ev): boolean =>
    e.event === name && Object.entries(fields).every(([k, v]) => e[k] === v);

/**
 * A test file's `zeroroom serve` in a fresh temp directory and the clients it starts; after the
 * file every client and the server are stopped and the directory removed.
 */
export function cliRoom(
  name: string,
  password: string,
): { readonly tmp: string; readonly serve: ServeRun; client(label: string, args: string[]): Client } {
  let tmp: string | null = null;
  let serve: ServeRun | null = null;
  const clients: Client[] = [];
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), `zeroroom-cli-${name}-`));
    serve = await startServe(['--port', '0', '--quiet', '--connections-per-second-per-ip', '1000'], { cwd: tmp });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.kill()));
    if (serve !== null) await killAll([serve]);
    if (tmp !== null) await rm(tmp, { recursive: true, force: true });
  });
  const set = <T>(v: T | null, what: string): T => {
    if (v === null) throw new Error(`${what} is set up in beforeAll`);
    return v;
  };
  return {
    get tmp() {
      return set(tmp, 'tmp');
    },
    get serve() {
      return set(serve, 'serve');
    },
    client(label, args) {
      // Verbose: the drivers' info lines land in a timeout report (see Client.others).
      const c = new Client(label, args, { ZEROROOM_PASSWORD: password, ZEROROOM_VERBOSE: '1' }, clients);
      clients.push(c);
      return c;
    },
  };
}
