/**
 * Room: what state the room is in and what that means (room-status), the message log with the
 * delivery state of our own messages, the composer (disabled where sending cannot work), members
 * (owner first, fingerprints, our connection to each), the safety code; for the owner the invite
 * panel, remove (after a confirmation) and a manual key change; for members leave; for every room
 * "remove from this device", offered up front when the room is dead (refused, removed, left).
 */
import { notificationPermission } from '../attention.ts';
import { h } from '../dom.ts';
import type { MemberView, MessageView, RoomView } from '../session/types.ts';
import { sortMembers } from '../session/view-model.ts';
import { codeText, S, type RoomState } from '../strings.ts';
import { confirmDialog } from './dialog.ts';
import { fileCard, fileInputs, type FileCard } from './files.ts';
import { invitePanel } from './invite.ts';
import type { Ctx, View } from './shell.ts';

const DEAD: ReadonlySet<RoomState> = new Set(['refused', 'removed', 'left']);

interface Row {
  readonly li: HTMLElement;
  readonly delivery: HTMLElement | null;
  shown: string;
  /** A file offer's card (updated on every view: progress). */
  readonly card?: FileCard;
}

function deliveryInto(el: HTMLElement, m: MessageView): void {
  const d = m.delivery ?? 'delivered';
  el.dataset['state'] = d;
  el.replaceChildren(
    h('span', { text: S.deliveryIcon[d], attrs: { 'aria-hidden': 'true' } }),
    h('span', { className: 'sr-only', text: S.delivery[d] }),
  );
  el.title = S.delivery[d];
}

function messageRow(m: MessageView, fileRow?: (m: MessageView) => FileCard | undefined): Row {
  const time = new Date(m.at);
  const card = fileRow?.(m);
  const delivery =
    m.own && m.delivery !== null ? h('span', { className: 'delivery', testid: 'delivery-state', attrs: { 'aria-live': 'off' } }) : null;
  if (delivery !== null) deliveryInto(delivery, m);
  const li = h(
    'li',
    {
      className: `message${m.system ? ' system' : ''}${m.pending ? ' pending' : ''}${m.own ? ' own' : ''}${card !== undefined ? ' file-message' : ''}`,
      testid: m.system ? 'system-message' : card !== undefined ? 'file-message' : 'message',
      attrs: { 'data-sender': m.senderId, 'data-key': m.key },
    },
    [
      h('span', { className: 'sender', text: m.own ? S.you : m.senderName || m.senderId.slice(0, 8) }),
      h('time', {
        className: 'at',
        text: time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
        attrs: { datetime: time.toISOString() },
      }),
      card !== undefined ? card.el : h('span', { className: 'text', testid: m.system ? 'system-text' : 'message-text', text: m.text }),
      delivery,
    ],
  );
  return { li, delivery, shown: m.delivery ?? '', ...(card !== undefined ? { card } : {}) };
}

/** How the link was kept up, for diagnostics and tests: peer connections made vs ICE restarts. */
function linkCountAttrs(m: MemberView): Record<string, string> {
  if (m.linkCounts === null) return {};
  return { 'data-peer-connections': String(m.linkCounts.peerConnections), 'data-ice-restarts': String(m.linkCounts.iceRestarts) };
}

function memberItem(ctx: Ctx, room: RoomView, m: MemberView): HTMLElement {
  // Only what this device knows: our own link to a peer. Members have no link to each other while
  // the owner is there (all traffic goes through it): no guess about each other's connection then;
  // while it is away (PROTOCOL.md 5.16) each member shows our direct link to it.
  const badge: Array<HTMLElement | null> =
    m.connection === 'self'
      ? [h('span', { className: 'badge self', text: S.you })]
      : m.connection === 'via-owner'
        ? []
        : [
            h('span', { className: 'sr-only', text: S.yourConnection }),
            h('span', {
              className: `badge ${m.connection}`,
              testid: 'connection-status',
              text: S.connection[m.connection] ?? m.connection,
              attrs: { 'data-state': m.connection, 'data-member-id': m.id, ...linkCountAttrs(m) },
            }),
          ];
  const name = m.name || m.id.slice(0, 8);
  return h('li', { className: 'member', testid: 'member', attrs: { 'data-member-id': m.id } }, [
    h('span', { className: 'name', text: name }),
    m.isOwner ? h('span', { className: 'tag owner-mark', testid: 'owner-mark', text: `★ ${S.ownerMark}` }) : null,
    ...badge,
    h('code', { className: 'fingerprint', testid: 'fingerprint', text: m.fingerprint }),
    room.role === 'owner' && !m.isSelf && !room.removed
      ? h('button', {
          text: S.remove,
          testid: 'kick-button',
          className: 'danger',
          attrs: { type: 'button', 'aria-label': S.removeMember(name) },
          on: {
            click: () =>
              ctx.run(async () => {
                const ok = await confirmDialog({
                  title: S.confirmRemoveTitle(name),
                  body: S.confirmRemoveBody,
                  confirm: S.remove,
                  danger: true,
                });
                if (ok) await ctx.session.kick(room.id, m.id);
              }),
          },
        })
      : null,
  ]);
}

function membersSignature(room: RoomView): string {
  return JSON.stringify([room.role, room.removed, room.members]);
}

export function roomView(ctx: Ctx, roomId: string): View {
  const title = h('h1', { testid: 'room-name', attrs: { tabindex: '-1', id: 'room-title' } });
  const epoch = h('span', { testid: 'epoch' });
  const status = h('span', { className: 'pill', testid: 'room-status' });
  const stateText = h('p', { className: 'state-text', testid: 'room-status-text' });
  const stateDetails = h('p', { className: 'details', testid: 'room-status-details' });
  const safety = h('code', { testid: 'safety-code' });
  const messages = h('ol', { className: 'message-items' });
  // A log: screen readers announce what is appended (new messages), not the whole screen. Focusable
  // so keyboard users can scroll it.
  const log = h('div', { className: 'messages', testid: 'message-list', attrs: { role: 'log', 'aria-label': S.messages, tabindex: '0' } }, [
    messages,
  ]);
  const members = h('ul', { className: 'members', testid: 'member-list' });
  const input = h('textarea', {
    testid: 'message-input',
    attrs: { rows: '2', maxlength: '4000', placeholder: S.messageLabel, 'aria-label': S.messageLabel },
  });
  const sendButton = h('button', { text: S.send, testid: 'send-button', className: 'primary', attrs: { type: 'submit' } });
  let sendable = true;
  const chatArea = h('div', { className: 'chat' });
  const composer = h('form', { className: 'composer', attrs: { 'aria-label': S.messageLabel } }, [
    fileInputs(ctx, roomId, chatArea, () => sendable),
    input,
    sendButton,
  ]);
  chatArea.append(log, composer);
  const fileRow = (m: MessageView): FileCard | undefined => (m.file === undefined ? undefined : fileCard(ctx, roomId, m.file));
  const send = (): void => {
    const text = input.value;
    if (text.trim() === '' || !sendable) return;
    input.value = '';
    ctx.run(() => ctx.session.send(roomId, text));
  };
  composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send();
    }
  });

  const forget = h('button', {
    text: S.forget,
    testid: 'forget-room',
    className: 'danger',
    attrs: { type: 'button' },
    on: {
      click: () =>
        ctx.run(async () => {
          const name = ctx.store.get().rooms.get(roomId)?.name ?? '';
          const ok = await confirmDialog({ title: S.confirmForgetTitle(name), body: S.confirmForgetBody, confirm: S.forget, danger: true });
          if (!ok) return;
          await ctx.session.forget(roomId);
          ctx.navigate({ view: 'home' });
        }),
    },
  });
  const leave = h('button', {
    text: S.leave,
    testid: 'leave-room',
    className: 'danger',
    attrs: { type: 'button' },
    on: {
      click: () =>
        ctx.run(async () => {
          const ok = await confirmDialog({ title: S.confirmLeaveTitle, body: S.confirmLeaveBody, confirm: S.leave, danger: true });
          if (ok) await ctx.session.leave(roomId);
        }),
    },
  });
  const notifyHint = h('p', { className: 'hint', testid: 'notify-hint' });
  notifyHint.hidden = true;
  const notify = h('button', {
    testid: 'notify-toggle',
    attrs: { type: 'button', 'aria-pressed': 'false' },
    on: {
      click: () =>
        ctx.run(async () => {
          const on = notify.getAttribute('aria-pressed') !== 'true';
          const permission = await ctx.attention.setNotify(roomId, on);
          notifyHint.hidden = !(on && permission === 'denied');
          notifyHint.textContent = S.notifyBlocked;
        }),
    },
  });
  notify.hidden = notificationPermission() === 'unsupported';
  const deadActions = h('div', { className: 'row' }, []);
  const ownerTools = h('div', { className: 'owner-tools' });
  const actionsRow = h('div', { className: 'row' }, [notify, leave, forget]);
  const roomActions = h('div', { className: 'card' }, [actionsRow, notifyHint]);

  let safetyCard: HTMLElement;
  let membersCard: HTMLElement;
  const el = h('section', { className: 'room', attrs: { 'aria-labelledby': 'room-title' } }, [
    h('header', { className: 'room-head' }, [
      title,
      h('div', { className: 'status-line' }, [status, stateText]),
      stateDetails,
      deadActions,
    ]),
    h('div', { className: 'room-body' }, [
      chatArea,
      h('div', { className: 'side' }, [
        (safetyCard = h('div', { className: 'card safety' }, [
          h('h2', { text: S.safetyCode }),
          safety,
          h('p', { className: 'hint', text: S.safetyCodeHint }),
          h('details', {}, [h('summary', { text: S.roomKey }), h('p', { className: 'meta' }, [epoch])]),
        ])),
        (membersCard = h('div', { className: 'card' }, [h('h2', { text: S.members }), members])),
        ownerTools,
        roomActions,
      ]),
    ]),
  ]);

  const rows = new Map<string, Row>();
  let lastRoom: RoomView | undefined;
  let lastMembers = '';
  let lastState: string | null = null;
  let panel: ReturnType<typeof invitePanel> | null = null;

  const renderMessages = (list: readonly MessageView[]): void => {
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    const wanted = new Set<string>();
    let appended = false;
    list.forEach((m, i) => {
      wanted.add(m.key);
      let row = rows.get(m.key);
      if (row !== undefined && row.shown !== (m.delivery ?? '')) {
        // Same message, new delivery state: change the mark in place (no new announcement).
        if (row.delivery !== null) deliveryInto(row.delivery, m);
        else {
          const fresh = messageRow(m, fileRow);
          row.li.replaceWith(fresh.li);
          row = fresh;
          rows.set(m.key, row);
        }
        row.li.classList.toggle('pending', m.pending);
        row.shown = m.delivery ?? '';
      }
      if (row !== undefined && row.card !== undefined && m.file !== undefined) row.card.update(m.file);
      if (row === undefined) {
        row = messageRow(m, fileRow);
        rows.set(m.key, row);
        if (i === messages.children.length) appended = true;
      }
      if (messages.children[i] !== row.li) messages.insertBefore(row.li, messages.children[i] ?? null);
    });
    for (const [key, row] of rows) {
      if (!wanted.has(key)) {
        row.li.remove();
        rows.delete(key);
      }
    }
    if (appended && nearBottom) log.scrollTop = log.scrollHeight;
  };

  return {
    el,
    update(state) {
      const pressed = state.prefs.get(roomId)?.notify === true;
      notify.setAttribute('aria-pressed', String(pressed));
      notify.textContent = pressed ? S.notifyOn : S.notifyOff;
      const room = state.rooms.get(roomId);
      if (room === lastRoom) return;
      lastRoom = room;
      if (room === undefined) {
        title.textContent = S.roomNotFound;
        composer.hidden = true;
        return;
      }
      title.textContent = room.name;
      epoch.textContent = String(room.epoch);
      safety.textContent = room.safetyCode;

      const sig = `${room.state}/${room.stateCode ?? ''}/${room.role}`;
      if (sig !== lastState) {
        lastState = sig;
        status.dataset['state'] = room.state;
        status.textContent = S.state[room.state].label;
        const text =
          room.role === 'owner'
            ? room.state === 'member'
              ? S.ownerOpen
              : S.ownerReconnecting
            : room.state === 'refused' && room.stateCode !== null
              ? (codeText(room.stateCode) ?? S.state.refused.text)
              : S.state[room.state].text;
        stateText.textContent = text;
        stateText.hidden = text === '';
        stateDetails.textContent = room.state === 'refused' && room.stateCode !== null ? `${S.details} ${room.stateCode}` : '';
        stateDetails.hidden = stateDetails.textContent === '';
        // A room that cannot come back: say so up front and offer to remove it.
        const dead = DEAD.has(room.state);
        if (dead) deadActions.replaceChildren(forget);
        else actionsRow.append(forget);
        leave.hidden = room.role !== 'member' || dead || room.state === 'joining';
        notify.hidden = notificationPermission() === 'unsupported' || dead;
        sendable = room.canSend;
        input.disabled = !room.canSend;
        sendButton.disabled = !room.canSend;
        composer.hidden = dead;
        roomActions.hidden = dead && leave.hidden && notify.hidden;
        input.placeholder = room.state === 'owner-offline' || room.state === 'reconnecting' ? S.composerWaiting : S.messageLabel;
      }

      renderMessages(room.messages);
      // A room that never got going (joining, refused) has nothing to show in these yet.
      log.hidden = room.messages.length === 0 && DEAD.has(room.state);
      safetyCard.hidden = room.safetyCode === '';
      membersCard.hidden = room.members.length === 0;
      const msig = membersSignature(room);
      if (msig !== lastMembers) {
        lastMembers = msig;
        members.replaceChildren(...sortMembers(room.members).map((m) => memberItem(ctx, room, m)));
      }
      if (room.role === 'owner' && !room.removed) {
        if (panel === null) {
          panel = invitePanel(ctx, roomId);
          ownerTools.replaceChildren(
            panel.el,
            h('div', { className: 'card' }, [
              h('button', {
                text: S.rotateKey,
                testid: 'rotate-button',
                attrs: { type: 'button' },
                on: { click: () => ctx.run(() => ctx.session.rotateNow(roomId)) },
              }),
            ]),
          );
        }
        panel.update(room);
      }
    },
    destroy() {
      panel?.destroy();
    },
  };
}
