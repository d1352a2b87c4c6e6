/**
 * Entry point and the whole initial chunk: the store, the lock screen and the IndexedDB schema.
 * Everything heavy (Themis wasm, storage crypto, views after unlock, QR codes) is in app.ts, loaded
 * with a dynamic import right after first paint so the first screen never waits for it.
 */
import { describeError } from './dom.ts';
import { hasVault } from './storage/db.ts';
import { createStore, initialState, type AppState } from './store.ts';
import { lockView } from './views/lock.ts';

type AppModule = typeof import('./app.ts');

const store = createStore(initialState);
const root = document.getElementById('app');
if (root === null) throw new Error('index.html has no #app');
let lockError: string | null = null;
let appModule: Promise<AppModule> | undefined;

function loadApp(): Promise<AppModule> {
  appModule ??= import('./app.ts').then(async (m) => {
    await m.prepare(store.get().pendingJoin);
    return m;
  });
  return appModule;
}

/** Reads an invite from `#join=...` and removes it from the address bar and the history entry. */
function takeJoinFragment(): void {
  if (!location.hash.startsWith('#join=')) return;
  const url = location.href;
  history.replaceState(history.state, '', location.pathname + location.search);
  store.update({ pendingJoin: url });
}

async function submitPassword(password: string, confirm: string | null): Promise<void> {
  const phase = store.get().phase;
  if (phase !== 'first-run' && phase !== 'locked') return;
  if (confirm !== null && confirm !== password) {
    lockError = 'the two passwords differ';
    render(store.get());
    return;
  }
  lockError = null;
  store.update({ phase: 'unlocking' });
  try {
    const app = await loadApp();
    await app.unlock(store, root as HTMLElement, password, phase === 'first-run');
  } catch (e) {
    lockError = describeError(e);
    store.update({ phase });
  }
}

let lastPhase: AppState['phase'] | null = null;
function render(state: AppState): void {
  if (state.phase === 'ready') return; // app.ts renders from here on
  const mode = state.phase === 'first-run' || (state.phase === 'unlocking' && lastPhase === 'first-run') ? 'first-run' : 'locked';
  if (state.phase !== 'unlocking') lastPhase = state.phase;
  if (state.phase === 'starting') return;
  root?.replaceChildren(lockView(mode, state.phase === 'unlocking', lockError, { submit: submitPassword }));
}

store.subscribe((state, prev) => {
  if (state.phase !== prev.phase) render(state);
});
window.addEventListener('hashchange', takeJoinFragment);
takeJoinFragment();

hasVault()
  .then((exists) => store.update({ phase: exists ? 'locked' : 'first-run' }))
  .catch((e: unknown) => {
    root.textContent = `IndexedDB is not available: ${describeError(e)}`;
  });

// After first paint: fetch the heavy chunk (Themis) while the user types the password.
requestAnimationFrame(() => {
  setTimeout(() => {
    loadApp().catch((e: unknown) => console.error('loading the app failed', e));
  }, 0);
});

if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch((e: unknown) => console.warn('service worker not registered', e));
  });
}
