/**
 * After unlock: header with navigation, the notice banner, and the current view. Views are objects
 * with an element and an update(state) method; the shell swaps them when the route changes.
 */
import { describeError, h } from '../dom.ts';
import type { Session } from '../session/session.ts';
import type { AppState, Route, Store } from '../store.ts';
import { homeView } from './home.ts';
import { roomView } from './room.ts';
import { settingsView } from './settings.ts';

export interface View {
  readonly el: HTMLElement;
  update(state: AppState): void;
  destroy?(): void;
}

export interface Ctx {
  readonly store: Store;
  readonly session: Session;
  navigate(route: Route): void;
  /** Runs a UI action; a failure becomes the error notice instead of a lost rejection. */
  run(action: () => Promise<unknown>): void;
}

function sameRoute(a: Route, b: Route): boolean {
  return a.view === b.view && (a.view !== 'room' || (b.view === 'room' && a.roomId === b.roomId));
}

export function mountShell(root: HTMLElement, store: Store, session: Session): void {
  const notice = h('p', { className: 'notice', attrs: { role: 'status' } });
  const content = h('div', { className: 'content' });
  const ctx: Ctx = {
    store,
    session,
    navigate: (route) => store.update({ route, notice: null }),
    run(action) {
      action().catch((e: unknown) => {
        console.error(e);
        store.update({ notice: { kind: 'error', text: describeError(e) } });
      });
    },
  };
  const nav = h('nav', { className: 'top' }, [
    h('button', { text: 'Rooms', testid: 'nav-home', on: { click: () => ctx.navigate({ view: 'home' }) } }),
    h('span', { className: 'brand', text: 'ZeroRoom' }),
    h('button', { text: 'Settings', testid: 'nav-settings', on: { click: () => ctx.navigate({ view: 'settings' }) } }),
  ]);
  root.replaceChildren(nav, notice, content);

  let current: View | null = null;
  let currentRoute: Route | null = null;
  const render = (state: AppState): void => {
    notice.textContent = state.notice?.text ?? '';
    notice.className = `notice ${state.notice?.kind ?? ''}`;
    notice.hidden = state.notice === null;
    if (currentRoute === null || !sameRoute(currentRoute, state.route)) {
      current?.destroy?.();
      currentRoute = state.route;
      current =
        state.route.view === 'room'
          ? roomView(ctx, state.route.roomId)
          : state.route.view === 'settings'
            ? settingsView(ctx)
            : homeView(ctx);
      content.replaceChildren(current.el);
    }
    current?.update(state);
  };
  store.subscribe((state) => render(state));
  session.onChange((rooms) => store.update({ rooms }));
  render(store.get());

  const pending = store.get().pendingJoin;
  if (pending !== null) joinFromLink(ctx, pending);
  store.subscribe((state, prev) => {
    if (state.pendingJoin !== null && state.pendingJoin !== prev.pendingJoin) joinFromLink(ctx, state.pendingJoin);
  });
}

/** Joins the room of an invite link (pasted, scanned, or opened as /#join=...). */
export function joinFromLink(ctx: Ctx, url: string): void {
  ctx.store.update({ pendingJoin: null });
  if (ctx.session.settings.displayName.trim() === '') {
    // Members see this name: ask for it first, with the invite already in the join form.
    ctx.store.update({ route: { view: 'home' }, joinDraft: url, notice: { kind: 'info', text: 'Choose your name, then press Join.' } });
    return;
  }
  ctx.run(async () => {
    const roomId = await ctx.session.join(url.trim());
    ctx.navigate({ view: 'room', roomId });
  });
}
