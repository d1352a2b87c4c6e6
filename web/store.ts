/**
 * The one store: plain data, replaced (never mutated) on every change, and a list of listeners.
 * Views read it and call actions; only actions (main.ts, app.ts) write it.
 */
import type { Prefs } from './prefs.ts';
import type { RoomView } from './session/types.ts';

export type Phase = 'starting' | 'first-run' | 'locked' | 'unlocking' | 'ready';
export type Route = { readonly view: 'home' } | { readonly view: 'room'; readonly roomId: string } | { readonly view: 'settings' };

export interface AppState {
  readonly phase: Phase;
  readonly route: Route;
  readonly rooms: ReadonlyMap<string, RoomView>;
  /** Error or info banner; set by failed actions, cleared by the next navigation. */
  readonly notice: { readonly kind: 'error' | 'info'; readonly text: string; readonly details?: string | null } | null;
  /** Read marks and notification choices per room (web/prefs.ts). */
  readonly prefs: Prefs;
  /** Invite URL read from the address bar's fragment, joined once unlocked. */
  readonly pendingJoin: string | null;
  /** An invite waiting for the user to choose a display name (prefills the join form). */
  readonly joinDraft: string | null;
}

export type Listener = (state: AppState, prev: AppState) => void;

export interface Store {
  get(): AppState;
  update(change: Partial<AppState> | ((s: AppState) => Partial<AppState>)): void;
  subscribe(fn: Listener): () => void;
}

export function createStore(initial: AppState): Store {
  let state = initial;
  const listeners = new Set<Listener>();
  return {
    get: () => state,
    update(change) {
      const prev = state;
      const patch = typeof change === 'function' ? change(state) : change;
      state = { ...state, ...patch };
      for (const fn of [...listeners]) fn(state, prev);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

export const initialState: AppState = {
  phase: 'starting',
  route: { view: 'home' },
  rooms: new Map(),
  notice: null,
  prefs: new Map(),
  pendingJoin: null,
  joinDraft: null,
};
