/**
 * The lazily loaded part of the app: Themis (wasm), the vault, the session and every view after
 * unlock. main.ts imports this with a dynamic import after first paint.
 */
import wasmUrl from 'wasm-themis/src/libthemis.wasm?url';
import { initCrypto } from '../crypto/index.ts';
import { startAttention } from './attention.ts';
import { describeError } from './dom.ts';
import { Session } from './session/session.ts';
import type { ServerConfig } from './session/types.ts';
import { prewarmJoin } from './session/prewarm.ts';
import { parseServerConfig } from './session/server-config.ts';
import { Vault } from './storage/vault.ts';
import type { Store } from './store.ts';
import { mountShell } from './views/shell.ts';

let config: ServerConfig | null = null;

/**
 * Loads Themis and the server's /config.json; called right after first paint. With an invite in
 * the address bar the link to its room is started at once (prewarm.ts): it needs no storage key.
 */
export async function prepare(inviteUrl: string | null = null): Promise<void> {
  const [, cfg] = await Promise.all([initCrypto({ wasmUrl }), fetchConfig()]);
  config = cfg;
  if (inviteUrl !== null) prewarmJoin(inviteUrl, cfg?.iceServers ?? []);
}

async function fetchConfig(): Promise<ServerConfig | null> {
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (!res.ok) return null;
    return parseServerConfig(await res.json());
  } catch (e) {
    // Offline (service worker shell) or served without /config.json: settings keep their stored values.
    console.warn('no /config.json:', describeError(e));
    return null;
  }
}

export async function unlock(store: Store, root: HTMLElement, password: string, firstRun: boolean): Promise<void> {
  const vault = firstRun ? await Vault.create(password) : await Vault.unlock(password);
  const session = await Session.open(vault, config, (text) => store.update({ notice: { kind: 'error', text } }));
  const attention = await startAttention(store, vault, (roomId) => {
    history.pushState({ ...(history.state as object | null), route: { view: 'room', roomId } }, '');
    store.update({ route: { view: 'room', roomId }, notice: null });
  });
  store.update({ phase: 'ready' });
  mountShell(root, store, session, attention);
}
