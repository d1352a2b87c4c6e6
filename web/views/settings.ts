/**
 * Settings: signaling server URL and pinned key, STUN/TURN servers with credentials (defaults from
 * the server's /config.json), rotation policy, change password, forget a room.
 */
import { buildHash } from '../build-info.ts';
import { h } from '../dom.ts';
import { DEFAULT_FILE_LIMIT_MIB, MAX_FILE_LIMIT_MIB } from '../session/records.ts';
import { defaultSettings } from '../session/session.ts';
import type { IceServerSetting, Settings } from '../session/types.ts';
import { S, UiError } from '../strings.ts';
import { confirmDialog } from './dialog.ts';
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
        if (!/^(stun|stuns|turn|turns):/.test(u)) throw new UiError('bad-ice-url');
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
  const fileLimit = numberInput('file-limit-input', s.fileLimitMiB);
  fileLimit.min = '1';
  fileLimit.max = String(MAX_FILE_LIMIT_MIB);
  const saved = h('span', { className: 'muted', attrs: { role: 'status' } });

  const form = h('form', { className: 'card', attrs: { 'aria-labelledby': 'settings-connection' } }, [
    h('h2', { text: S.connectionTitle, attrs: { id: 'settings-connection' } }),
    h('label', { className: 'field' }, [h('span', { text: S.signalingUrl }), signaling]),
    h('label', { className: 'field' }, [h('span', { text: S.serverKey }), serverKey]),
    h('label', { className: 'field' }, [h('span', { text: S.iceServers }), ice]),
    h('label', { className: 'check' }, [relayOnly, h('span', { text: S.relayOnly })]),
    h('h2', { text: S.rotationTitle }),
    h('label', { className: 'field' }, [h('span', { text: S.rotateMessages }), everyMessages]),
    h('label', { className: 'field' }, [h('span', { text: S.rotateMinutes }), everyMinutes]),
    h('h2', { text: S.files.filesTitle }),
    h('label', { className: 'field' }, [h('span', { text: S.files.limitLabel }), fileLimit]),
    h('div', { className: 'row' }, [
      h('button', { text: S.save, testid: 'save-settings', className: 'primary', attrs: { type: 'submit' } }),
      h('button', {
        text: S.serverDefaults,
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
        fileLimitMiB: Math.min(MAX_FILE_LIMIT_MIB, Math.max(1, Math.floor(Number(fileLimit.value)) || DEFAULT_FILE_LIMIT_MIB)),
      };
      await ctx.session.saveSettings(next);
      saved.textContent = S.saved;
    });
  });

  const oldPw = h('input', { testid: 'old-password-input', attrs: { type: 'password', autocomplete: 'current-password', required: '' } });
  const newPw = h('input', {
    testid: 'new-password-input',
    attrs: { type: 'password', autocomplete: 'new-password', required: '', minlength: '8' },
  });
  const pwStatus = h('span', { className: 'muted', attrs: { role: 'status' } });
  const pwForm = h('form', { className: 'card', attrs: { 'aria-labelledby': 'settings-password' } }, [
    h('h2', { text: S.changePasswordTitle, attrs: { id: 'settings-password' } }),
    h('label', { className: 'field' }, [h('span', { text: S.currentPassword }), oldPw]),
    h('label', { className: 'field' }, [h('span', { text: S.newPassword }), newPw]),
    h('div', { className: 'row' }, [
      h('button', { text: S.changePassword, testid: 'change-password', className: 'primary', attrs: { type: 'submit' } }),
      pwStatus,
    ]),
  ]);
  pwForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    pwStatus.textContent = S.reencrypting;
    ctx.run(async () => {
      try {
        await ctx.session.vault.changePassword(oldPw.value, newPw.value);
      } catch (e) {
        pwStatus.textContent = '';
        throw e;
      }
      oldPw.value = '';
      newPw.value = '';
      // A copy taken before the change still opens with the old password: offer new keys (5.8.1).
      pwStatus.textContent = joinedAny ? `${S.passwordChanged} ${S.passwordChangedReplaceKeys}` : S.passwordChanged;
    }, 'change-password');
  });

  const roomList = h('ul', { className: 'rooms' });
  /** Whether this device is a member (not the owner) of any room: then a password change offers new keys. */
  let joinedAny = false;
  const el = h('section', { className: 'settings', attrs: { 'aria-labelledby': 'settings-title' } }, [
    h('h1', { text: S.settingsTitle, attrs: { id: 'settings-title', tabindex: '-1' } }),
    form,
    diagnosticsPanel(ctx),
    pwForm,
    h('div', { className: 'card' }, [h('h2', { text: S.forgetTitle }), roomList]),
    h('p', { className: 'muted', testid: 'build-hash', text: S.buildHash(buildHash()) }),
  ]);
  let lastRooms: unknown = null;
  return {
    el,
    update(state) {
      if (state.rooms === lastRooms) return;
      lastRooms = state.rooms;
      joinedAny = [...state.rooms.values()].some((r) => r.role === 'member');
      roomList.replaceChildren(
        ...[...state.rooms.values()].map((room) =>
          h('li', { className: 'row' }, [
            h('span', { text: room.name }),
            h('button', {
              text: S.replaceKeys,
              testid: 'replace-keys',
              attrs: { type: 'button', 'data-room-id': room.id, 'aria-label': `${S.replaceKeys}: ${room.name}` },
              on: {
                click: () =>
                  ctx.run(async () => {
                    await ctx.session.updateKeys(room.id);
                    // The owner's update is done when it returns (5.8.1 step 5); a member's waits for the owner.
                    saved.textContent = room.role === 'owner' ? S.replaceKeysOwnerDone : S.replaceKeysAsked;
                  }),
              },
            }),
            h('button', {
              text: S.forget,
              testid: 'forget-room-settings',
              className: 'danger',
              attrs: { type: 'button', 'data-room-id': room.id, 'aria-label': `${S.forget}: ${room.name}` },
              on: {
                click: () =>
                  ctx.run(async () => {
                    const ok = await confirmDialog({
                      title: S.confirmForgetTitle(room.name),
                      body: S.confirmForgetBody,
                      confirm: S.forget,
                      danger: true,
                    });
                    if (ok) await ctx.session.forget(room.id);
                  }),
              },
            }),
          ]),
        ),
      );
    },
  };
}
