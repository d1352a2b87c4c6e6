/** Home: your rooms, create a room, join by pasting a link, scan a QR code. */
import { h } from '../dom.ts';
import type { AppState } from '../store.ts';
import { joinFromLink, type Ctx, type View } from './shell.ts';

export function homeView(ctx: Ctx): View {
  const list = h('ul', { className: 'rooms', testid: 'room-list' });
  const displayName = h('input', {
    testid: 'display-name-input',
    attrs: { autocomplete: 'nickname', maxlength: '64', placeholder: 'how others see you' },
  });
  displayName.value = ctx.session.settings.displayName;
  const saveName = (): Promise<void> =>
    displayName.value === ctx.session.settings.displayName
      ? Promise.resolve()
      : ctx.session.saveSettings({ ...ctx.session.settings, displayName: displayName.value });

  const roomName = h('input', { testid: 'room-name-input', attrs: { maxlength: '128', placeholder: 'Room name', required: '' } });
  const createForm = h('form', { className: 'card', attrs: { 'aria-label': 'Create a room' } }, [
    h('h2', { text: 'Create a room' }),
    h('label', { className: 'field' }, [h('span', { text: 'Room name' }), roomName]),
    h('button', { text: 'Create room', testid: 'create-room', attrs: { type: 'submit' } }),
  ]);
  createForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.run(async () => {
      await saveName();
      const id = await ctx.session.createRoom(roomName.value.trim() || 'Room');
      ctx.navigate({ view: 'room', roomId: id });
    });
  });

  const link = h('input', { testid: 'join-link-input', attrs: { type: 'url', placeholder: 'Paste an invite link', required: '' } });

  const scanArea = h('div', { className: 'scan-area' });
  const joinForm = h('form', { className: 'card', attrs: { 'aria-label': 'Join a room' } }, [
    h('h2', { text: 'Join a room' }),
    h('label', { className: 'field' }, [h('span', { text: 'Invite link' }), link]),
    h('div', { className: 'row' }, [
      h('button', { text: 'Join', testid: 'join-button', attrs: { type: 'submit' } }),
      h('button', {
        text: 'Scan QR code',
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
        throw new Error('choose your name first');
      }
      await saveName();
      joinFromLink(ctx, link.value);
    });
  });

  const el = h('section', { className: 'home' }, [
    h('div', { className: 'card' }, [h('label', { className: 'field' }, [h('span', { text: 'Your name' }), displayName])]),
    h('div', { className: 'card' }, [h('h2', { text: 'Your rooms' }), list]),
    createForm,
    joinForm,
  ]);

  let lastRooms: AppState['rooms'] | null = null;
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
      if (state.rooms === lastRooms) return;
      lastRooms = state.rooms;
      const items = [...state.rooms.values()].map((room) =>
        h('li', {}, [
          h(
            'button',
            {
              className: 'room-link',
              testid: 'room-entry',
              attrs: { 'data-room-id': room.id },
              on: { click: () => ctx.navigate({ view: 'room', roomId: room.id }) },
            },
            [h('span', { text: room.name }), h('span', { className: 'muted', text: room.role === 'owner' ? ' (owner)' : '' })],
          ),
        ]),
      );
      list.replaceChildren(...(items.length > 0 ? items : [h('li', { className: 'muted', text: 'No rooms yet.' })]));
    },
  };
}
