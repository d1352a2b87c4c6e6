/**
 * First run (choose a password) and later runs (unlock). Part of the initial chunk: no crypto
 * import here; the submit handler awaits the lazily loaded app module. Also the page shown instead
 * when the browser withholds the crypto the app needs (not a secure context).
 */
import { h } from '../dom.ts';
import { S } from '../strings.ts';

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
    className: 'primary',
    text: busy ? S.unlocking : mode === 'first-run' ? S.createPassword : S.unlock,
    attrs: { type: 'submit' },
  });
  if (busy) button.disabled = true;
  const title = mode === 'first-run' ? S.lockTitleFirstRun : S.lockTitle;
  const form = h('form', { className: 'card lock', attrs: { 'aria-label': title } }, [
    h('h1', { text: title }),
    h('p', { text: mode === 'first-run' ? S.lockIntroFirstRun : S.lockIntro }),
    h('label', { className: 'field' }, [h('span', { text: S.password }), password]),
    confirm && h('label', { className: 'field' }, [h('span', { text: S.repeatPassword }), confirm]),
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

/** Plain http on an address other than this device: no crypto.subtle, no camera, no clipboard. */
export function insecureView(): HTMLElement {
  const port = location.port === '' ? '' : `:${location.port}`;
  return h('section', { className: 'card insecure', testid: 'insecure-context' }, [
    h('h1', { text: S.insecureTitle }),
    h('p', { text: S.insecureBody }),
    h('p', { text: S.insecureWhat }),
    h('ul', {}, [
      h('li', {}, [h('span', { text: `${S.insecureHttps} ` }), h('code', { text: `https://${location.hostname}${port}/` })]),
      h('li', {}, [h('span', { text: `${S.insecureLocalhost} ` }), h('code', { text: `http://localhost${port}/` })]),
    ]),
  ]);
}
