/**
 * What asks for the user's attention (issue #13): unread counts per room and in the page title,
 * read marks that survive a reload, and notifications for new messages while the tab is hidden
 * (per room, off until the user turns them on in that room; permission is asked at that moment).
 */
import { decodePrefs, encodePrefs, PREFS_KEY, type Prefs, type RoomPrefs } from './prefs.ts';
import type { RoomView } from './session/types.ts';
import type { Vault } from './storage/vault.ts';
import type { AppState, Store } from './store.ts';
import { pageTitle, S } from './strings.ts';

/** Highest room index among delivered messages (-1 when none). */
export function lastIndex(room: RoomView): number {
  let max = -1;
  for (const m of room.messages) if (m.idx !== null && m.idx > max) max = m.idx;
  return max;
}

/** Messages from others, delivered after the read mark. */
export function unreadCount(room: RoomView, prefs: RoomPrefs | undefined): number {
  if (prefs === undefined) return 0;
  let n = 0;
  for (const m of room.messages) if (!m.own && !m.system && m.idx !== null && m.idx > prefs.read) n++;
  return n;
}

export function totalUnread(state: AppState): number {
  let n = 0;
  for (const room of state.rooms.values()) n += unreadCount(room, state.prefs.get(room.id));
  return n;
}

export type NotifyPermission = 'granted' | 'denied' | 'default' | 'unsupported';

export function notificationPermission(): NotifyPermission {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

export interface Attention {
  /** Turns notifications for one room on or off; asks for permission when turning on. */
  setNotify(roomId: string, on: boolean): Promise<NotifyPermission>;
}

/** Loads the read marks, then keeps them, the title and the notifications up to date. */
export async function startAttention(store: Store, vault: Vault, open: (roomId: string) => void): Promise<Attention> {
  const stored = await vault.get('settings', PREFS_KEY);
  let prefs: Prefs = new Map();
  if (stored !== undefined) {
    try {
      prefs = decodePrefs(stored);
    } catch (e) {
      // Read marks are a convenience: a malformed record starts them afresh (everything read).
      console.error('ui record refused', e);
    }
  }
  store.update({ prefs });

  let saving: Promise<void> = Promise.resolve();
  const save = (next: Prefs): void => {
    store.update({ prefs: next });
    saving = saving
      .then(() => vault.put('settings', PREFS_KEY, encodePrefs(next)))
      .catch((e: unknown) => console.error('saving read marks failed', e));
  };

  /** Per room: the highest index already considered for a notification. */
  const notified = new Map<string, number>();

  const visible = (): boolean => document.visibilityState === 'visible';

  const sync = (state: AppState): void => {
    let next: Map<string, RoomPrefs> | null = null;
    const edit = (): Map<string, RoomPrefs> => (next ??= new Map(state.prefs));
    for (const room of state.rooms.values()) {
      const last = lastIndex(room);
      const p = state.prefs.get(room.id);
      // A room seen for the first time: what it holds now counts as read.
      if (p === undefined) edit().set(room.id, { read: last, notify: false });
      const reading = state.route.view === 'room' && state.route.roomId === room.id && visible();
      if (reading && p !== undefined && last > p.read) edit().set(room.id, { ...p, read: last });
      notify(room, p, last);
    }
    for (const id of state.prefs.keys()) if (!state.rooms.has(id)) edit().delete(id);
    if (next !== null) save(next);
    document.title = pageTitle(totalUnread(store.get()));
  };

  const notify = (room: RoomView, p: RoomPrefs | undefined, last: number): void => {
    const before = notified.get(room.id);
    notified.set(room.id, last);
    if (before === undefined || last <= before) return;
    if (p?.notify !== true || visible() || notificationPermission() !== 'granted') return;
    const fresh = room.messages.filter((m) => !m.own && !m.system && m.idx !== null && m.idx > before);
    const latest = fresh.at(-1);
    if (latest === undefined) return;
    // One notification per room (tag): a burst replaces the previous one instead of stacking.
    const n = new Notification(room.name, {
      body: S.notificationFrom(latest.senderName, latest.text.slice(0, 200)),
      tag: `room-${room.id}`,
    });
    n.addEventListener('click', () => {
      window.focus();
      open(room.id);
      n.close();
    });
  };

  store.subscribe((state, prev) => {
    if (state.rooms !== prev.rooms || state.route !== prev.route || state.prefs !== prev.prefs) sync(state);
  });
  document.addEventListener('visibilitychange', () => sync(store.get()));
  sync(store.get());

  return {
    async setNotify(roomId, on) {
      let permission = notificationPermission();
      if (on && permission === 'default') permission = await Notification.requestPermission();
      const current = store.get().prefs.get(roomId) ?? { read: -1, notify: false };
      const enabled = on && permission === 'granted';
      if (current.notify !== enabled) save(new Map(store.get().prefs).set(roomId, { ...current, notify: enabled }));
      return permission;
    },
  };
}
