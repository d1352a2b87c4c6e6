/**
 * Entry point and the whole initial chunk: the store, the lock screen and the IndexedDB schema.
 * Everything heavy (Themis wasm, storage crypto, views after unlock, QR codes) is in app.ts, loaded
 * with a dynamic import right after first paint so the first screen never waits for it.
 */
import { h } from './dom.ts';
import { hasVault } from './storage/db.ts';
import { createStore, initialState, type AppState } from './store.ts';
import { errorText, S } from './strings.ts';
import { insecureView, lockView } from './views/lock.ts';

type AppModule = typeof import('./app.ts');

const store = createStore(initialState);
const app = document.getElementById('app');
if (app === null) throw new Error('index.html has no #app');
const root = h('main');
app.replaceChildren(root);
/**
 * Plain http on a LAN address is not a secure context: the browser withholds crypto.subtle (and the
 * camera and clipboard). Say so before any password is asked, with what to do instead.
 */
const secure = window.isSecureContext && typeof crypto !== 'undefined' && crypto.subtle !== undefined;
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

/** After unlock the shell owns the whole #app (header + main). */
function appRoot(): HTMLElement {
  return app as HTMLElement;
}

async function submitPassword(password: string, confirm: string | null): Promise<void> {
  const phase = store.get().phase;
  if (phase !== 'first-run' && phase !== 'locked') return;
  if (confirm !== null && confirm !== password) {
    lockError = S.passwordsDiffer;
    render(store.get());
    return;
  }
  lockError = null;
  store.update({ phase: 'unlocking' });
  try {
    const app = await loadApp();
    await app.unlock(store, appRoot(), password, phase === 'first-run');
  } catch (e) {
    console.error(e);
    lockError = errorText(e, phase === 'first-run' ? 'first-run' : 'unlock').text;
    store.update({ phase });
  }
}

let lastPhase: AppState['phase'] | null = null;
function render(state: AppState): void {
  if (state.phase === 'ready') return; // app.ts renders from here on
  const mode = state.phase === 'first-run' || (state.phase === 'unlocking' && lastPhase === 'first-run') ? 'first-run' : 'locked';
  if (state.phase !== 'unlocking') lastPhase = state.phase;
  if (state.phase === 'starting') return;
  root.replaceChildren(lockView(mode, state.phase === 'unlocking', lockError, { submit: submitPassword }));
}

store.subscribe((state, prev) => {
  if (state.phase !== prev.phase) render(state);
});
window.addEventListener('hashchange', takeJoinFragment);
takeJoinFragment();

if (!secure) {
  root.replaceChildren(insecureView());
} else {
  hasVault()
    .then((exists) => store.update({ phase: exists ? 'locked' : 'first-run' }))
    .catch((e: unknown) => {
      console.error('IndexedDB is not available', e);
      root.replaceChildren(
        h('h1', { text: S.appName }),
        h('p', { className: 'error', attrs: { role: 'alert' }, text: S.storageUnavailable }),
      );
    });

  // After first paint: fetch the heavy chunk (Themis) while the user types the password.
  requestAnimationFrame(() => {
    setTimeout(() => {
      loadApp().catch((e: unknown) => console.error('loading the app failed', e));
    }, 0);
  });
}

if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch((e: unknown) => console.warn('service worker not registered', e));
  });
}
