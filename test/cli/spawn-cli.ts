// Runs bin/zeroroom.js as a child process and reads its machine-parsable start lines.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO_ROOT, 'bin', 'zeroroom.js');

export interface CliRun {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
}

/** Env without any ZEROROOM_* from the developer's shell, so tests see only what they set. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ZEROROOM_')) env[k] = v;
  return { ...env, ...extra };
}

export function runCli(args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: cleanEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

export interface ServeRun extends CliRun {
  readonly url: string;
  readonly wsUrl: string;
  readonly publicKeyHex: string;
  readonly servingLine: string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | string>;
}

/** Starts `zeroroom serve` and waits for the listening, key and serving lines (or the process's death). */
export async function startServe(args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<ServeRun> {
  const run = runCli(['serve', ...args], opts);
  const lines = await new Promise<{ url: string; key: string; serving: string }>((resolve, reject) => {
    const check = () => {
      const url = /^zeroroom: listening on (\S+)$/m.exec(run.stdout())?.[1];
      const key = /^zeroroom: server public key ([0-9a-f]{64})$/m.exec(run.stdout())?.[1];
      const serving = /^zeroroom: serving (.+)$/m.exec(run.stdout())?.[1];
      if (url !== undefined && key !== undefined && serving !== undefined) {
        run.child.stdout?.off('data', check);
        resolve({ url, key, serving });
      }
    };
    run.child.stdout?.on('data', check);
    void run.exited.then((code) => reject(new Error(`zeroroom serve exited (${code}) before listening:\n${run.stderr()}${run.stdout()}`)));
  });
  return {
    ...run,
    url: lines.url,
    wsUrl: lines.url.replace(/^http/, 'ws'),
    publicKeyHex: lines.key,
    servingLine: lines.serving,
    stop: async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
      return run.exited;
    },
  };
}

/** For afterAll: SIGKILL whatever is still running. */
export async function killAll(runs: ReadonlyArray<CliRun | undefined>): Promise<void> {
  await Promise.all(
    runs.map(async (r) => {
      if (r === undefined) return;
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await r.exited;
    }),
  );
}
