/**
 * After unlock: header with navigation, the notice area, and the current view. Views are objects
 * with an element and an update(state) method; the shell swaps them when the route changes. The
 * route lives in the history entry too, so Back works and a reload returns to the same room.
 */
import type { Attention } from '../attention.ts';
import { totalUnread } from '../attention.ts';
import { h } from '../dom.ts';
import type { Session } from '../session/session.ts';
import type { AppState, Route, Store } from '../store.ts';
import { errorText, isExpected, S, UiError, type ErrorContext } from '../strings.ts';
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
  readonly attention: Attention;
  navigate(route: Route): void;
  /** Runs a UI action; a failure becomes the error notice (a sentence, code in details) instead of a lost rejection. */
  run(action: () => Promise<unknown>, context?: ErrorContext): void;
}

function sameRoute(a: Route, b: Route): boolean {
  return a.view === b.view && (a.view !== 'room' || (b.view === 'room' && a.roomId === b.roomId));
}

/** The route kept in a history entry, checked (history.state is page-controlled data, not typed). */
export function routeFromHistory(state: unknown): Route | null {
  if (typeof state !== 'object' || state === null) return null;
  const r = (state as { route?: unknown }).route;
  if (typeof r !== 'object' || r === null) return null;
  const view = (r as { view?: unknown }).view;
  if (view === 'home' || view === 'settings') return { view };
  const roomId = (r as { roomId?: unknown }).roomId;
  if (view === 'room' && typeof roomId === 'string' && /^[0-9a-f]{1,64}$/.test(roomId)) return { view, roomId };
  return null;
}

export function mountShell(root: HTMLElement, store: Store, session: Session, attention: Attention): void {
  const errorBox = h('div', { className: 'notice error', testid: 'notice-error', attrs: { role: 'alert' } });
  const infoBox = h('div', { className: 'notice info', testid: 'notice-info', attrs: { role: 'status' } });
  const content = h('div', { className: 'content' });
  const ctx: Ctx = {
    store,
    session,
    attention,
    navigate: (route) => {
      if (!sameRoute(store.get().route, route)) history.pushState({ ...(history.state as object | null), route }, '');
      store.update({ route, notice: null });
    },
    run(action, context = 'general') {
      action().catch((e: unknown) => {
        const t = errorText(e, context);
        // Refusals and wrong input are part of using the app; anything without words is a bug.
        if (isExpected(t)) console.warn(e);
        else console.error(e);
        store.update({ notice: { kind: 'error', text: t.text, details: t.details } });
      });
    },
  };
  const navButton = (text: string, testid: string, route: Route): HTMLButtonElement =>
    h('button', { text, testid, attrs: { type: 'button' }, on: { click: () => ctx.navigate(route) } });
  const homeButton = navButton(S.navRooms, 'nav-home', { view: 'home' });
  const settingsButton = navButton(S.navSettings, 'nav-settings', { view: 'settings' });
  const nav = h('nav', { attrs: { 'aria-label': 'Main' } }, [
    homeButton,
    h('span', { className: 'brand', text: S.appName }),
    settingsButton,
  ]);
  const main = h('main', {}, [errorBox, infoBox, content]);
  root.replaceChildren(h('header', { className: 'top' }, [nav]), main);

  window.addEventListener('popstate', (ev) => {
    const route = routeFromHistory(ev.state) ?? { view: 'home' };
    store.update({ route, notice: null });
  });

  const showNotice = (box: HTMLElement, text: string, details: string | null | undefined): void => {
    box.replaceChildren(
      h('div', {}, [h('p', { text }), details ? h('p', { className: 'details', text: `${S.details} ${details}` }) : null]),
      h('button', {
        text: S.dismiss,
        className: 'link-like',
        attrs: { type: 'button' },
        on: { click: () => store.update({ notice: null }) },
      }),
    );
  };

  let current: View | null = null;
  let currentRoute: Route | null = null;
  let lastNotice: AppState['notice'] | undefined;
  const render = (state: AppState): void => {
    if (state.notice !== lastNotice) {
      lastNotice = state.notice;
      errorBox.replaceChildren();
      infoBox.replaceChildren();
      if (state.notice !== null) showNotice(state.notice.kind === 'error' ? errorBox : infoBox, state.notice.text, state.notice.details);
      errorBox.hidden = state.notice?.kind !== 'error';
      infoBox.hidden = state.notice?.kind !== 'info';
    }
    if (currentRoute === null || !sameRoute(currentRoute, state.route)) {
      const first = currentRoute === null;
      current?.destroy?.();
      currentRoute = state.route;
      current =
        state.route.view === 'room'
          ? roomView(ctx, state.route.roomId)
          : state.route.view === 'settings'
            ? settingsView(ctx)
            : homeView(ctx);
      content.replaceChildren(current.el);
      for (const [button, view] of [
        [homeButton, 'home'],
        [settingsButton, 'settings'],
      ] as const) {
        if (state.route.view === view) button.setAttribute('aria-current', 'page');
        else button.removeAttribute('aria-current');
      }
      // A new screen: its heading gets the focus, so keyboard and screen reader users start there.
      if (!first) current.el.querySelector<HTMLElement>('h1')?.focus();
    }
    current?.update(state);
    const unread = totalUnread(state);
    homeButton.textContent = unread > 0 ? `${S.navRooms} (${unread})` : S.navRooms;
  };
  store.subscribe((state) => render(state));
  session.onChange((rooms) => store.update({ rooms }));

  // A reload returns to the screen of this tab's history entry (if that room still exists).
  const restored = routeFromHistory(history.state);
  if (restored !== null && (restored.view !== 'room' || store.get().rooms.has(restored.roomId))) store.update({ route: restored });
  history.replaceState({ ...(history.state as object | null), route: store.get().route }, '');
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
    ctx.navigate({ view: 'home' });
    ctx.store.update({ joinDraft: url, notice: { kind: 'info', text: S.chooseNameThenJoin } });
    return;
  }
  ctx.run(async () => {
    if (url.trim() === '') throw new UiError('not-an-invite');
    const roomId = await ctx.session.join(url.trim());
    ctx.navigate({ view: 'room', roomId });
  }, 'join');
}
