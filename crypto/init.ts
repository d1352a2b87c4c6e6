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

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

async function load(wasmUrl: string | undefined): Promise<void> {
  // Snapshot before importing, in case a glue version installs its handlers at module load.
  const before = isNode() ? listenerSnapshot() : undefined;
  // Dynamic import: the ~1.5 MB glue must not delay first paint in the browser (platform.md).
  const ns = (await import('wasm-themis')) as Themis & { default?: Themis };
  const lib: Themis = typeof ns.initialize === 'function' ? ns : (ns.default as Themis);
  if (typeof lib?.initialize !== 'function') throw new InitError('wasm-themis has no initialize()');
  if (before !== undefined) await initializeInNode(lib, wasmUrl, before);
  else await lib.initialize(wasmUrl);
  themis = lib;
}

/**
 * Node recipe from platform.md: the Emscripten glue calls global `fetch` with a file path and
 * crashes (cossacklabs/themis#1062), so hide `fetch` during the synchronous part of initialize();
 * afterwards remove exactly the unhandledRejection / uncaughtException listeners the glue added
 * (they rethrow and would kill the process on any stray rejection).
 */
async function initializeInNode(lib: Themis, wasmUrl: string | undefined, before: ListenerSnapshot): Promise<void> {
  const g = globalThis as { fetch?: typeof fetch };
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
    removeAdded('unhandledRejection', before.unhandledRejection);
    removeAdded('uncaughtException', before.uncaughtException);
  }
}

type Listener = (...args: unknown[]) => void;
type ListenerSnapshot = Record<'unhandledRejection' | 'uncaughtException', Listener[]>;

function listenerSnapshot(): ListenerSnapshot {
  return {
    unhandledRejection: process.listeners('unhandledRejection') as Listener[],
    uncaughtException: process.listeners('uncaughtException') as Listener[],
  };
}

function removeAdded(event: 'unhandledRejection' | 'uncaughtException', before: Listener[]): void {
  for (const listener of process.listeners(event as 'uncaughtException') as Listener[]) {
    if (!before.includes(listener)) process.removeListener(event as 'uncaughtException', listener);
  }
}
