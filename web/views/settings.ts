/**
 * Settings: signaling server URL and pinned key, STUN/TURN servers with credentials (defaults from
 * the server's /config.json), rotation policy, change password, forget a room.
 */
import { h } from '../dom.ts';
import { defaultSettings } from '../session/session.ts';
import type { IceServerSetting, Settings } from '../session/types.ts';
import { diagnosticsPanel } from './diagnostics.ts';
import type { Ctx, View } from './shell.ts';

function iceToText(servers: readonly IceServerSetting[]): string {
  return servers.map((s) => [s.urls.join(','), s.username ?? '', s.credential ?? ''].join(' ').trim()).join('\n');
}

/** One server per line: `url[,url...] [username credential]`. */
export function parseIceText(text: string): IceServerSetting[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [urls = '', username, credential] = line.split(/\s+/);
      for (const u of urls.split(',')) {
        if (!/^(stun|stuns|turn|turns):/.test(u)) throw new Error(`not a STUN/TURN URL: ${u}`);
      }
      return {
        urls: urls.split(','),
        ...(username !== undefined ? { username } : {}),
        ...(credential !== undefined ? { credential } : {}),
      };
    });
}

function numberInput(testid: string, value: number): HTMLInputElement {
  const input = h('input', { testid, attrs: { type: 'number', min: '0', step: '1' } });
  input.value = String(value);
  return input;
}

export function settingsView(ctx: Ctx): View {
  const s = ctx.session.settings;
  const signaling = h('input', { testid: 'signaling-url-input', attrs: { type: 'url' } });
  signaling.value = s.signalingUrl;
  const serverKey = h('input', { testid: 'server-key-input', attrs: { pattern: '[0-9a-fA-F]{64}|', spellcheck: 'false' } });
  serverKey.value = s.serverKey;
  const ice = h('textarea', { testid: 'ice-servers-input', attrs: { rows: '3', spellcheck: 'false' } });
  const serverIce = ctx.session.config?.iceServers ?? [];
  ice.value = iceToText(s.customIce ? s.iceServers : serverIce);
  const relayOnly = h('input', { testid: 'relay-only-input', attrs: { type: 'checkbox' } });
  relayOnly.checked = s.relayOnly;
  const everyMessages = numberInput('rotate-messages-input', s.rotation.everyMessages);
  const everyMinutes = numberInput('rotate-minutes-input', s.rotation.everyMinutes);
  const saved = h('span', { className: 'muted', attrs: { role: 'status' } });

  const form = h('form', { className: 'card', attrs: { 'aria-label': 'Connection settings' } }, [
    h('h2', { text: 'Connection' }),
    h('label', { className: 'field' }, [h('span', { text: 'Signaling server URL' }), signaling]),
    h('label', { className: 'field' }, [h('span', { text: 'Pinned server public key (hex)' }), serverKey]),
    h('label', { className: 'field' }, [h('span', { text: 'STUN/TURN servers, one per line: url [username credential]' }), ice]),
    h('label', { className: 'check' }, [relayOnly, h('span', { text: ' Relay only (always use TURN; hides your IP address from peers)' })]),
    h('h2', { text: 'Key rotation (rooms you own)' }),
    h('label', { className: 'field' }, [h('span', { text: 'Rotate after this many messages (0 = never)' }), everyMessages]),
    h('label', { className: 'field' }, [h('span', { text: 'Rotate after this many minutes (0 = never)' }), everyMinutes]),
    h('div', { className: 'row' }, [
      h('button', { text: 'Save', testid: 'save-settings', attrs: { type: 'submit' } }),
      h('button', {
        text: 'Server defaults',
        attrs: { type: 'button' },
        on: {
          click: () => {
            const d = defaultSettings(ctx.session.config);
            signaling.value = d.signalingUrl;
            serverKey.value = d.serverKey;
            ice.value = iceToText(serverIce);
          },
        },
      }),
      saved,
    ]),
  ]);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.run(async () => {
      const next: Settings = {
        ...ctx.session.settings,
        signalingUrl: signaling.value.trim(),
        serverKey: serverKey.value.trim().toLowerCase(),
        iceServers: parseIceText(ice.value),
        // Unchanged server list: keep following /config.json (TURN credentials are short-lived).
        customIce: iceToText(parseIceText(ice.value)) !== iceToText(serverIce),
        relayOnly: relayOnly.checked,
        rotation: {
          everyMessages: Math.max(0, Math.floor(Number(everyMessages.value))),
          everyMinutes: Math.max(0, Math.floor(Number(everyMinutes.value))),
        },
      };
      await ctx.session.saveSettings(next);
      saved.textContent = 'Saved.';
    });
  });

  const oldPw = h('input', { testid: 'old-password-input', attrs: { type: 'password', autocomplete: 'current-password', required: '' } });
  const newPw = h('input', {
    testid: 'new-password-input',
    attrs: { type: 'password', autocomplete: 'new-password', required: '', minlength: '8' },
  });
  const pwStatus = h('span', { className: 'muted', attrs: { role: 'status' } });
  const pwForm = h('form', { className: 'card', attrs: { 'aria-label': 'Change password' } }, [
    h('h2', { text: 'Change password' }),
    h('label', { className: 'field' }, [h('span', { text: 'Current password' }), oldPw]),
    h('label', { className: 'field' }, [h('span', { text: 'New password' }), newPw]),
    h('div', { className: 'row' }, [
      h('button', { text: 'Change password', testid: 'change-password', attrs: { type: 'submit' } }),
      pwStatus,
    ]),
  ]);
  pwForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    pwStatus.textContent = 'Re-encrypting…';
    ctx.run(async () => {
      try {
        await ctx.session.vault.changePassword(oldPw.value, newPw.value);
      } catch (e) {
        pwStatus.textContent = '';
        throw e;
      }
      oldPw.value = '';
      newPw.value = '';
      pwStatus.textContent = 'Password changed; every record is re-encrypted.';
    });
  });

  const roomList = h('ul', { className: 'rooms' });
  const el = h('section', { className: 'settings' }, [
    form,
    diagnosticsPanel(ctx),
    pwForm,
    h('div', { className: 'card' }, [h('h2', { text: 'Forget a room' }), roomList]),
  ]);
  let lastRooms: unknown = null;
  return {
    el,
    update(state) {
      if (state.rooms === lastRooms) return;
      lastRooms = state.rooms;
      roomList.replaceChildren(
        ...[...state.rooms.values()].map((room) =>
          h('li', {}, [
            h('span', { text: room.name }),
            h('button', {
              text: 'Forget',
              testid: 'forget-room-settings',
              attrs: { type: 'button', 'data-room-id': room.id },
              on: {
                click: () => {
                  if (window.confirm(`Delete "${room.name}", its keys and its history from this device?`))
                    ctx.run(() => ctx.session.forget(room.id));
                },
              },
            }),
          ]),
        ),
      );
    },
  };
}
