/**
 * First run (choose a password) and later runs (unlock). Part of the initial chunk: no crypto
 * import here; the submit handler awaits the lazily loaded app module.
 */
import { h } from '../dom.ts';

export interface LockHandlers {
  submit(password: string, confirm: string | null): Promise<void>;
}

export function lockView(mode: 'first-run' | 'locked', busy: boolean, error: string | null, handlers: LockHandlers): HTMLElement {
  const password = h('input', {
    testid: 'password-input',
    attrs: { type: 'password', autocomplete: mode === 'first-run' ? 'new-password' : 'current-password', required: '', minlength: '8' },
  });
  const confirm =
    mode === 'first-run'
      ? h('input', { testid: 'password-confirm-input', attrs: { type: 'password', autocomplete: 'new-password', required: '' } })
      : null;
  const button = h('button', {
    testid: 'unlock-button',
    text: busy ? 'Unlocking…' : mode === 'first-run' ? 'Create vault' : 'Unlock',
    attrs: { type: 'submit' },
  });
  if (busy) button.disabled = true;
  const form = h('form', { className: 'card lock', attrs: { 'aria-label': mode === 'first-run' ? 'Choose a password' : 'Unlock' } }, [
    h('h1', { text: 'ZeroRoom' }),
    h('p', {
      text:
        mode === 'first-run'
          ? 'Choose a password. It encrypts your keys and history on this device; nobody can recover it.'
          : 'Enter your password to unlock your rooms.',
    }),
    h('label', { className: 'field' }, [h('span', { text: 'Password' }), password]),
    confirm && h('label', { className: 'field' }, [h('span', { text: 'Repeat password' }), confirm]),
    error !== null ? h('p', { className: 'error', testid: 'lock-error', text: error, attrs: { role: 'alert' } }) : null,
    button,
  ]);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    handlers.submit(password.value, confirm === null ? null : confirm.value).catch((e: unknown) => console.error(e));
  });
  queueMicrotask(() => password.focus());
  return form;
}
