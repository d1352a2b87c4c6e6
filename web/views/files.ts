/**
 * Files in the room view (docs/PROTOCOL.md 5.17): the card of one file (name, size, sender, state,
 * progress with rate and time left, accept / decline / cancel, the thumbnail or the download), and
 * the ways to send one (picker button, drag and drop onto the room, paste).
 *
 * What a peer sent reaches the page only as text (textContent: the name is already safeFileName'd),
 * as an <img> of a thumbnail this device drew itself (a blob: URL of our own PNG, made only for a
 * file whose first bytes are PNG/JPEG/GIF/WebP), or as a download link (blob: URL of type
 * application/octet-stream with the `download` attribute). Nothing received is ever put in an
 * <img>, <object>, <iframe> or navigated to as it is: an SVG or HTML file is a download.
 */
import { h } from '../dom.ts';
import type { FileView } from '../session/types.ts';
import { formatBytes, formatSeconds, S } from '../strings.ts';
import type { Ctx } from './shell.ts';

const ACTIVE = new Set(['preparing', 'waiting', 'sending', 'receiving']);

export interface FileCard {
  readonly el: HTMLElement;
  update(f: FileView): void;
}

/** Send these files to room `roomId` (one after another), with the size limit's sentence when one is too large. */
export function sendFiles(ctx: Ctx, roomId: string, files: readonly File[]): void {
  const limitMiB = ctx.session.settings.fileLimitMiB;
  for (const file of files) {
    if (file.size > limitMiB * 1024 * 1024) {
      ctx.store.update({ notice: { kind: 'error', text: S.files.tooLarge(limitMiB), details: 'file.too-large' } });
      continue;
    }
    ctx.run(() => ctx.session.sendFile(roomId, file));
  }
}

export function fileCard(ctx: Ctx, roomId: string, first: FileView): FileCard {
  const name = h('span', { className: 'file-name', testid: 'file-name' });
  const size = h('span', { className: 'file-size', testid: 'file-size' });
  const state = h('span', { className: 'file-state', testid: 'file-state' });
  const bar = h('progress', { testid: 'file-bar', attrs: { max: '1', value: '0' } });
  const rate = h('span', { className: 'file-progress', testid: 'file-progress' });
  const note = h('p', { className: 'file-note hint', testid: 'file-note' });
  const thumbBox = h('div', { className: 'file-thumb' });
  const link = h('a', { className: 'file-link', testid: 'file-link', attrs: { rel: 'noopener' } });
  link.hidden = true;
  const id = first.id;
  const button = (text: string, testid: string, action: () => void | Promise<unknown>, cls = ''): HTMLButtonElement =>
    h('button', {
      text,
      testid,
      className: cls,
      attrs: { type: 'button' },
      on: { click: () => ctx.run(async () => action()) },
    });
  const accept = button(S.files.accept, 'file-accept', () => ctx.session.acceptFile(roomId, id), 'primary');
  const decline = button(S.files.decline, 'file-decline', () => ctx.session.declineFile(roomId, id));
  const cancel = button(S.files.cancel, 'file-cancel', () => ctx.session.cancelFile(roomId, id));
  const save = button(S.files.save, 'file-save', async () => {
    // Built on demand (a Blob of the stored chunks), typed application/octet-stream, named safely.
    const { url, name: safe } = await ctx.session.downloadFile(roomId, id);
    if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
    link.href = url;
    link.download = safe;
    link.textContent = S.files.saveAs(safe);
    link.hidden = false;
    link.click();
  });
  save.setAttribute('aria-label', S.files.saveAs(first.name));
  const el = h('div', { className: 'file-card', testid: 'file', attrs: { 'data-file-id': id } }, [
    thumbBox,
    h('div', { className: 'file-info' }, [name, size, state]),
    h('div', { className: 'file-progress-row' }, [bar, rate]),
    note,
    h('div', { className: 'row file-actions' }, [accept, decline, cancel, save, link]),
  ]);
  let shownThumb: string | null = null;

  const update = (f: FileView): void => {
    el.dataset['state'] = f.state;
    name.textContent = f.name;
    size.textContent = formatBytes(f.size);
    state.textContent = S.files.state[f.state] ?? f.state;
    const active = ACTIVE.has(f.state);
    bar.hidden = !active;
    rate.hidden = !active;
    if (active) {
      bar.value = f.size === 0 ? 0 : f.done / f.size;
      const moved = S.files.progress(formatBytes(f.done), formatBytes(f.size));
      rate.textContent =
        f.rate === null
          ? moved
          : `${moved}, ${S.files.rate(formatBytes(Math.round(f.rate)), f.secondsLeft === null ? null : formatSeconds(f.secondsLeft))}`;
    }
    accept.hidden = f.own || f.state !== 'offered';
    decline.hidden = f.own || f.state !== 'offered';
    cancel.hidden = !active;
    save.hidden = !((f.state === 'done' || f.state === 'sent') && (f.download || f.thumb !== null));
    const text =
      f.state === 'too-large'
        ? S.files.tooLarge(ctx.session.settings.fileLimitMiB)
        : f.state === 'failed' && f.code !== null
          ? S.files.failed(f.code)
          : f.download && f.state === 'done'
            ? S.files.notShown
            : '';
    note.textContent = text;
    note.hidden = text === '';
    if (f.thumb !== shownThumb) {
      shownThumb = f.thumb;
      // Our own PNG, drawn from a sniffed picture: the only <img> a received file ever becomes.
      thumbBox.replaceChildren(
        ...(f.thumb === null ? [] : [h('img', { testid: 'file-thumb', attrs: { src: f.thumb, alt: S.files.picture(f.name) } })]),
      );
    }
  };
  update(first);
  return { el, update };
}

/**
 * The composer's file button (a hidden <input type=file> behind it), and drag-and-drop and paste on
 * `area` (the room). Returns the button.
 */
export function fileInputs(ctx: Ctx, roomId: string, area: HTMLElement, enabled: () => boolean): HTMLElement {
  const input = h('input', { testid: 'file-input', attrs: { type: 'file', multiple: '', 'aria-label': S.files.attachLabel } });
  input.hidden = true;
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    if (enabled()) sendFiles(ctx, roomId, files);
  });
  const button = h('button', {
    text: '📎',
    testid: 'attach-button',
    className: 'attach',
    attrs: { type: 'button', title: S.files.attach, 'aria-label': S.files.attachLabel },
    on: { click: () => input.click() },
  });
  const hasFiles = (ev: DragEvent): boolean => ev.dataTransfer?.types.includes('Files') === true;
  area.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev) || !enabled()) return;
    ev.preventDefault();
    area.classList.add('drop-target');
  });
  area.addEventListener('dragleave', () => area.classList.remove('drop-target'));
  area.addEventListener('drop', (ev) => {
    area.classList.remove('drop-target');
    if (!hasFiles(ev)) return;
    ev.preventDefault(); // never let the browser open (navigate to) a dropped file
    if (enabled()) sendFiles(ctx, roomId, [...(ev.dataTransfer?.files ?? [])]);
  });
  area.addEventListener('paste', (ev) => {
    const files = [...(ev.clipboardData?.files ?? [])];
    if (files.length === 0 || !enabled()) return;
    ev.preventDefault();
    sendFiles(ctx, roomId, files);
  });
  return h('span', { className: 'attach-wrap' }, [button, input]);
}
