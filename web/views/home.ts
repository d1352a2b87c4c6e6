/** Home: your rooms (with unread counts and dead-room hints), your name, create a room, join by link or QR code. */
import { unreadCount } from '../attention.ts';
import { h } from '../dom.ts';
import type { RoomView } from '../session/types.ts';
import type { AppState } from '../store.ts';
import { S, UiError } from '../strings.ts';
import { joinFromLink, type Ctx, type View } from './shell.ts';

function roomEntry(ctx: Ctx, room: RoomView, unread: number): HTMLElement {
  const dead = room.state === 'refused' || room.state === 'removed' || room.state === 'left';
  return h('li', {}, [
    h(
      'button',
      {
        className: 'room-link',
        testid: 'room-entry',
        attrs: { type: 'button', 'data-room-id': room.id, 'data-state': room.state },
        on: { click: () => ctx.navigate({ view: 'room', roomId: room.id }) },
      },
      [
        h('span', { className: 'room-title', text: room.name }),
        room.role === 'owner' ? h('span', { className: 'tag', text: S.ownerTag }) : null,
        dead ? h('span', { className: 'tag', text: S.state[room.state].label }) : null,
        unread > 0
          ? h('span', { className: 'unread', testid: 'unread-count', attrs: { 'data-count': String(unread) } }, [
              h('span', { text: String(unread), attrs: { 'aria-hidden': 'true' } }),
              h('span', { className: 'sr-only', text: S.unreadLabel(unread) }),
            ])
          : null,
      ],
    ),
  ]);
}

export function homeView(ctx: Ctx): View {
  const list = h('ul', { className: 'rooms', testid: 'room-list' });
  const displayName = h('input', {
    testid: 'display-name-input',
    attrs: { autocomplete: 'nickname', maxlength: '64', placeholder: S.yourNameHint },
  });
  displayName.value = ctx.session.settings.displayName;
  const saveName = (): Promise<void> =>
    displayName.value === ctx.session.settings.displayName
      ? Promise.resolve()
      : ctx.session.saveSettings({ ...ctx.session.settings, displayName: displayName.value });

  const roomName = h('input', {
    testid: 'room-name-input',
    attrs: { maxlength: '64', placeholder: S.roomNamePlaceholder, required: '', autocomplete: 'off' },
  });
  const createForm = h('form', { className: 'card', attrs: { 'aria-labelledby': 'create-title' } }, [
    h('h2', { text: S.createTitle, attrs: { id: 'create-title' } }),
    h('label', { className: 'field' }, [h('span', { text: S.roomName }), roomName]),
    h('button', { text: S.createRoom, testid: 'create-room', className: 'primary', attrs: { type: 'submit' } }),
  ]);
  createForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.run(async () => {
      // The browser's `required` already refuses an empty name; spaces only are refused here.
      if (roomName.value.trim() === '') {
        roomName.focus();
        return;
      }
      if (displayName.value.trim() === '') {
        displayName.focus();
        throw new UiError('name-missing');
      }
      await saveName();
      const id = await ctx.session.createRoom(roomName.value.trim());
      ctx.navigate({ view: 'room', roomId: id });
    });
  });

  const link = h('input', {
    testid: 'join-link-input',
    attrs: { type: 'url', placeholder: S.inviteLinkPlaceholder, required: '', autocomplete: 'off' },
  });

  const scanArea = h('div', { className: 'scan-area' });
  const joinForm = h('form', { className: 'card', attrs: { 'aria-labelledby': 'join-title' } }, [
    h('h2', { text: S.joinTitle, attrs: { id: 'join-title' } }),
    h('label', { className: 'field' }, [h('span', { text: S.inviteLink }), link]),
    h('div', { className: 'row' }, [
      h('button', { text: S.join, testid: 'join-button', className: 'primary', attrs: { type: 'submit' } }),
      h('button', {
        text: S.scanQr,
        testid: 'scan-button',
        attrs: { type: 'button' },
        on: {
          click: () =>
            ctx.run(async () => {
              // jsqr is only loaded when someone scans.
              const { openScanner } = await import('./scanner.ts');
              const text = await openScanner(scanArea);
              if (text !== null) {
                link.value = text; // shows what was scanned
                if (displayName.value.trim() === '') {
                  displayName.focus();
                  throw new UiError('name-missing');
                }
                await saveName();
                joinFromLink(ctx, text);
              }
            }),
        },
      }),
    ]),
    scanArea,
  ]);
  joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.run(async () => {
      if (displayName.value.trim() === '') {
        displayName.focus();
        throw new UiError('name-missing');
      }
      await saveName();
      joinFromLink(ctx, link.value);
    });
  });

  const el = h('section', { className: 'home', attrs: { 'aria-labelledby': 'home-title' } }, [
    h('div', { className: 'card' }, [h('h1', { text: S.homeTitle, attrs: { id: 'home-title', tabindex: '-1' } }), list]),
    h('div', { className: 'card' }, [h('label', { className: 'field' }, [h('span', { text: S.yourName }), displayName])]),
    createForm,
    joinForm,
  ]);

  let lastRooms: AppState['rooms'] | null = null;
  let lastPrefs: AppState['prefs'] | null = null;
  let lastSig = '';
  return {
    el,
    update(state) {
      if (state.joinDraft !== null) {
        link.value = state.joinDraft;
        queueMicrotask(() => {
          ctx.store.update({ joinDraft: null });
          displayName.focus();
        });
      }
      if (state.rooms === lastRooms && state.prefs === lastPrefs) return;
      lastRooms = state.rooms;
      lastPrefs = state.prefs;
      const rooms = [...state.rooms.values()].map((room) => ({ room, unread: unreadCount(room, state.prefs.get(room.id)) }));
      // Rebuild only when what the list shows changed: a rebuild would take the focus off an entry.
      const sig = JSON.stringify(rooms.map(({ room, unread }) => [room.id, room.name, room.role, room.state, unread]));
      if (sig === lastSig) return;
      lastSig = sig;
      const items = rooms.map(({ room, unread }) => roomEntry(ctx, room, unread));
      const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset['roomId'] : undefined;
      list.replaceChildren(...(items.length > 0 ? items : [h('li', { className: 'muted', text: S.noRooms })]));
      if (focused !== undefined) list.querySelector<HTMLElement>(`[data-room-id="${CSS.escape(focused)}"]`)?.focus();
    },
  };
}
