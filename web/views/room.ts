/**
 * Room: message list, composer, members (owner marked, fingerprints, per-peer connection badge),
 * safety code, epoch; for the owner also the invite panel, kick and rotate now.
 */
import { h } from '../dom.ts';
import type { ConnectionState, MemberView, MessageView, RoomView } from '../session/types.ts';
import type { Ctx, View } from './shell.ts';
import { invitePanel } from './invite.ts';

const BADGE_TEXT: Record<ConnectionState, string> = {
  connecting: 'connecting',
  direct: 'direct',
  relayed: 'relayed via TURN',
  fallback: 'via server (no direct path)',
  restarting: 'reconnecting (ICE restart)',
  offline: 'offline',
  closed: 'closed',
};

function messageItem(m: MessageView): HTMLElement {
  const time = new Date(m.at);
  return h(
    'li',
    {
      className: `message${m.system ? ' system' : ''}${m.pending ? ' pending' : ''}`,
      testid: m.system ? 'system-message' : 'message',
      attrs: { 'data-sender': m.senderId, 'data-key': m.key },
    },
    [
      h('span', { className: 'sender', text: m.senderName || m.senderId.slice(0, 8) }),
      h('time', { className: 'at', text: time.toLocaleTimeString(), attrs: { datetime: time.toISOString() } }),
      h('span', { className: 'text', testid: m.system ? 'system-text' : 'message-text', text: m.text }),
      m.pending ? h('span', { className: 'muted', text: ' (sending…)' }) : null,
    ],
  );
}

/** How the link was kept up, for diagnostics and tests: peer connections made vs ICE restarts. */
function linkCountAttrs(m: MemberView): Record<string, string> {
  if (m.linkCounts === null) return {};
  return { 'data-peer-connections': String(m.linkCounts.peerConnections), 'data-ice-restarts': String(m.linkCounts.iceRestarts) };
}

function memberItem(ctx: Ctx, room: RoomView, m: MemberView): HTMLElement {
  const badge =
    m.connection === 'self'
      ? h('span', { className: 'badge self', text: 'you' })
      : m.connection === 'via-owner'
        ? h('span', { className: 'badge via', text: 'via owner' })
        : h('span', {
            className: `badge ${m.connection}`,
            testid: 'connection-status',
            text: BADGE_TEXT[m.connection],
            attrs: { 'data-state': m.connection, 'data-member-id': m.id, ...linkCountAttrs(m) },
          });
  return h('li', { className: 'member', testid: 'member', attrs: { 'data-member-id': m.id } }, [
    h('span', { className: 'name', text: m.name || m.id.slice(0, 8) }),
    m.isOwner ? h('span', { className: 'owner-mark', testid: 'owner-mark', text: ' ★ owner' }) : null,
    badge,
    h('code', { className: 'fingerprint', testid: 'fingerprint', text: m.fingerprint }),
    room.role === 'owner' && !m.isSelf && !room.removed
      ? h('button', {
          text: 'Remove',
          testid: 'kick-button',
          attrs: { type: 'button', 'aria-label': `Remove ${m.name}` },
          on: { click: () => ctx.run(() => ctx.session.kick(room.id, m.id)) },
        })
      : null,
  ]);
}

function membersSignature(room: RoomView): string {
  return JSON.stringify([room.role, room.removed, room.members]);
}

export function roomView(ctx: Ctx, roomId: string): View {
  const title = h('h1', { testid: 'room-name' });
  const epoch = h('span', { testid: 'epoch' });
  const status = h('span', { className: 'badge', testid: 'room-status' });
  const safety = h('code', { testid: 'safety-code' });
  const removed = h('p', {
    className: 'error',
    testid: 'removed-notice',
    text: 'You were removed from this room. Nothing new will arrive.',
    attrs: { role: 'alert' },
  });
  removed.hidden = true;
  const messages = h('ol', { className: 'messages', testid: 'message-list', attrs: { 'aria-live': 'polite' } });
  const members = h('ul', { className: 'members', testid: 'member-list' });
  const input = h('textarea', {
    testid: 'message-input',
    attrs: { rows: '2', maxlength: '4000', placeholder: 'Message', 'aria-label': 'Message' },
  });
  const sendButton = h('button', { text: 'Send', testid: 'send-button', attrs: { type: 'submit' } });
  const composer = h('form', { className: 'composer' }, [input, sendButton]);
  const send = (): void => {
    const text = input.value;
    if (text.trim() === '') return;
    input.value = '';
    ctx.run(() => ctx.session.send(roomId, text));
  };
  composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      send();
    }
  });
  const ownerTools = h('div', { className: 'owner-tools' });
  const forget = h('button', {
    text: 'Forget this room',
    testid: 'forget-room',
    attrs: { type: 'button' },
    on: {
      click: () => {
        if (!window.confirm('Delete this room, its keys and its history from this device?')) return;
        ctx.run(async () => {
          await ctx.session.forget(roomId);
          ctx.navigate({ view: 'home' });
        });
      },
    },
  });

  const el = h('section', { className: 'room' }, [
    h('header', { className: 'room-head' }, [
      title,
      h('p', { className: 'meta' }, [h('span', { text: 'epoch ' }), epoch, h('span', { text: ' · ' }), status]),
      h('p', { className: 'meta' }, [h('span', { text: 'safety code ' }), safety]),
      removed,
    ]),
    h('div', { className: 'room-body' }, [
      h('div', { className: 'chat' }, [messages, composer]),
      h('aside', { className: 'side' }, [h('h2', { text: 'Members' }), members, ownerTools, forget]),
    ]),
  ]);

  const shown = new Set<string>();
  let lastRoom: RoomView | undefined;
  let lastMembers = '';
  let panel: ReturnType<typeof invitePanel> | null = null;
  return {
    el,
    update(state) {
      const room = state.rooms.get(roomId);
      if (room === lastRoom) return;
      lastRoom = room;
      if (room === undefined) {
        title.textContent = 'Room not found';
        return;
      }
      title.textContent = room.name;
      epoch.textContent = String(room.epoch);
      status.textContent = room.status;
      safety.textContent = room.safetyCode;
      removed.hidden = !room.removed;
      input.disabled = room.removed;
      sendButton.disabled = room.removed;
      // Messages: append new ones, refresh pending ones in place (keys are stable across reloads).
      for (const m of room.messages) {
        const existing = messages.querySelector(`li[data-key="${CSS.escape(m.key)}"]`);
        if (existing !== null && !shown.has(m.key + (m.pending ? ':p' : ''))) existing.replaceWith(messageItem(m));
        else if (existing === null) {
          messages.append(messageItem(m));
          messages.lastElementChild?.scrollIntoView({ block: 'end' });
        }
        shown.add(m.key + (m.pending ? ':p' : ''));
      }
      const sig = membersSignature(room);
      if (sig !== lastMembers) {
        lastMembers = sig;
        members.replaceChildren(...room.members.map((m) => memberItem(ctx, room, m)));
      }
      if (room.role === 'owner' && !room.removed) {
        if (panel === null) {
          panel = invitePanel(ctx, roomId);
          ownerTools.replaceChildren(
            panel.el,
            h('button', {
              text: 'Rotate key now',
              testid: 'rotate-button',
              attrs: { type: 'button' },
              on: { click: () => ctx.run(() => ctx.session.rotateNow(roomId)) },
            }),
          );
        }
        panel.update(room);
      }
    },
  };
}
