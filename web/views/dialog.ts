/**
 * A modal confirmation (native <dialog>: focus moves into it, Escape cancels, focus returns to the
 * button that opened it). Resolves true only when the person pressed the confirm button.
 */
import { h } from '../dom.ts';
import { S } from '../strings.ts';

export interface ConfirmOptions {
  readonly title: string;
  readonly body: string;
  readonly confirm: string;
  /** Styles the confirm button as destructive. */
  readonly danger?: boolean;
}

export function confirmDialog(opts: ConfirmOptions): Promise<boolean> {
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const yes = h('button', {
    text: opts.confirm,
    testid: 'confirm-yes',
    className: opts.danger === true ? 'danger solid' : 'primary',
    attrs: { type: 'button' },
  });
  const no = h('button', { text: S.cancel, testid: 'confirm-no', attrs: { type: 'button' } });
  const dialog = h('dialog', { testid: 'confirm-dialog', attrs: { 'aria-labelledby': titleId } }, [
    h('h2', { text: opts.title, attrs: { id: titleId } }),
    h('p', { text: opts.body }),
    h('div', { className: 'row' }, [no, yes]),
  ]);
  document.body.append(dialog);
  return new Promise<boolean>((resolve) => {
    let answer = false;
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve(answer);
    });
    yes.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    no.addEventListener('click', () => dialog.close());
    dialog.showModal();
    // The safe choice has the focus: Enter right away cancels.
    no.focus();
  });
}
