import type * as ThemisModule from 'wasm-themis';
import { InitError, NotReadyError } from './errors.ts';

/** The wasm-themis exports we use (named exports of the CJS build in Node, ES6 build under Vite). */
export type Themis = typeof ThemisModule;

let themis: Themis | undefined;
let pending: Promise<void> | undefined;

/**
 * Loads wasm-themis once; every later call returns the same promise. tweetnacl, hashing and the
 * codecs work without it; Secure Cell / Secure Message wrappers throw `crypto.not-ready` until
 * this resolves. `wasmUrl`: the browser passes the URL of libthemis.wasm
 * (`import wasmUrl from 'wasm-themis/src/libthemis.wasm?url'`); Node ignores it unless given.
 */
export function initCrypto(opts: { wasmUrl?: string } = {}): Promise<void> {
  if (pending === undefined) {
    pending = load(opts.wasmUrl).catch((e: unknown) => {
      pending = undefined; // wasm-themis only marks itself initialised on success, so a retry is allowed
      throw e instanceof InitError ? e : new InitError('loading wasm-themis failed', { cause: e });
    });
  }
  return pending;
}

/** The loaded module, or `crypto.not-ready`. Used by every Themis wrapper before touching Themis. */
export function themisReady(): Themis {
  if (themis === undefined) throw new NotReadyError();
  return themis;
}

type Listener = (...args: unknown[]) => void;
type GlueEvent = 'unhandledRejection' | 'uncaughtException';
/** The part of Node's `process` the workaround below needs; absent in browsers. */
interface NodeProcess {
  readonly versions?: { readonly node?: string };
  listeners(event: GlueEvent): Listener[];
  removeListener(event: GlueEvent, listener: Listener): void;
}

/** Node's process object, or undefined in a browser (this module runs on both). */
function nodeProcess(): NodeProcess | undefined {
  const p = (globalThis as { process?: NodeProcess }).process;
  return typeof p?.versions?.node === 'string' ? p : undefined;
}

async function load(wasmUrl: string | undefined): Promise<void> {
  // Snapshot before importing, in case a glue version installs its handlers at module load.
  const proc = nodeProcess();
  const before = proc !== undefined ? listenerSnapshot(proc) : undefined;
  // Dynamic import: the ~1.5 MB glue must not delay first paint in the browser (platform.md).
  const ns = (await import('wasm-themis')) as Themis & { default?: Themis };
  const lib: Themis = typeof ns.initialize === 'function' ? ns : (ns.default as Themis);
  if (typeof lib?.initialize !== 'function') throw new InitError('wasm-themis has no initialize()');
  if (proc !== undefined && before !== undefined) await initializeInNode(proc, lib, wasmUrl, before);
  else await lib.initialize(wasmUrl);
  themis = lib;
}

/**
 * Node recipe from platform.md: the Emscripten glue calls global `fetch` with a file path and
 * crashes (cossacklabs/themis#1062), so hide `fetch` during the synchronous part of initialize();
 * afterwards remove exactly the unhandledRejection / uncaughtException listeners the glue added
 * (they rethrow and would kill the process on any stray rejection).
 */
async function initializeInNode(proc: NodeProcess, lib: Themis, wasmUrl: string | undefined, before: ListenerSnapshot): Promise<void> {
  const g = globalThis as { fetch?: unknown };
  const savedFetch = g.fetch;
  let started: Promise<unknown>;
  try {
    g.fetch = undefined;
    started = lib.initialize(wasmUrl);
  } finally {
    g.fetch = savedFetch;
  }
  try {
    await started;
  } finally {
    removeAdded(proc, 'unhandledRejection', before.unhandledRejection);
    removeAdded(proc, 'uncaughtException', before.uncaughtException);
  }
}

type ListenerSnapshot = Record<GlueEvent, Listener[]>;

function listenerSnapshot(proc: NodeProcess): ListenerSnapshot {
  return { unhandledRejection: proc.listeners('unhandledRejection'), uncaughtException: proc.listeners('uncaughtException') };
}

function removeAdded(proc: NodeProcess, event: GlueEvent, before: Listener[]): void {
  for (const listener of proc.listeners(event)) {
    if (!before.includes(listener)) proc.removeListener(event, listener);
  }
}
