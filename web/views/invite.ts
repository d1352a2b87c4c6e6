/**
 * Owner's invite panel: create a one-time invite, show it as QR code and link, copy, share (Web
 * Share API where the browser has it), "expires in 9 minutes", withdraw.
 */
import { h } from '../dom.ts';
import type { InviteView, RoomView } from '../session/types.ts';
import { inviteExpiry, S } from '../strings.ts';
import { inviteReach } from './invite-reach.ts';
import type { Ctx } from './shell.ts';

/** Refresh "expires in N minutes" this often while an invite is shown. */
const EXPIRY_REFRESH_MS = 15_000;

export function invitePanel(ctx: Ctx, roomId: string): { el: HTMLElement; update(room: RoomView): void; destroy(): void } {
  const expiry = h('select', { testid: 'invite-expiry', attrs: { 'aria-label': S.inviteExpiresAfter } });
  for (const [label, minutes] of S.expiryChoices) expiry.append(h('option', { text: label, attrs: { value: String(minutes) } }));
  const canvas = h('canvas', { className: 'qr', testid: 'invite-qr', attrs: { 'aria-label': S.inviteQr, role: 'img' } });
  const link = h('code', { className: 'invite-link', testid: 'invite-link' });
  const expires = h('p', { className: 'hint', testid: 'invite-expires' });
  const copy = h('button', { text: S.copyLink, testid: 'copy-invite', attrs: { type: 'button' } });
  const share = h('button', { text: S.share, testid: 'share-invite', attrs: { type: 'button' } });
  // Web Share: phones (and some desktops) hand the link to a messenger or mail app.
  share.hidden = typeof navigator.share !== 'function';
  const revoke = h('button', { text: S.revoke, testid: 'revoke-invite', className: 'danger', attrs: { type: 'button' } });
  // An invite a phone cannot use gets a warning and the fix instead of its QR code (invite-reach.ts).
  const reachWarning = h('p', { className: 'error', testid: 'invite-warning', attrs: { role: 'alert' } });
  const reachFix = h('p', { className: 'hint', testid: 'invite-fix' });
  const showQr = h('button', { text: S.showQrAnyway, testid: 'show-invite-qr', attrs: { type: 'button' } });
  const reach = h('div', { className: 'invite-reach' }, [reachWarning, reachFix, showQr]);
  showQr.addEventListener('click', () => {
    canvas.hidden = false;
    reach.hidden = true;
  });
  const shown = h('div', { className: 'invite' }, [reach, canvas, link, expires, h('div', { className: 'row' }, [copy, share, revoke])]);
  shown.hidden = true;
  let current: InviteView | null = null;
  let roomName = '';

  const showExpiry = (): void => {
    if (current !== null) expires.textContent = inviteExpiry(current.expiresAt, Date.now());
  };
  const timer = setInterval(showExpiry, EXPIRY_REFRESH_MS);

  copy.addEventListener('click', () => {
    if (current === null) return;
    const url = current.url;
    ctx.run(async () => {
      if (navigator.clipboard === undefined) {
        // Not a secure context: no clipboard API. Select the link instead.
        const range = document.createRange();
        range.selectNodeContents(link);
        window.getSelection()?.removeAllRanges();
        window.getSelection()?.addRange(range);
        copy.textContent = S.selectedPressCopy;
        return;
      }
      await navigator.clipboard.writeText(url);
      copy.textContent = S.copied;
    });
  });
  share.addEventListener('click', () => {
    if (current === null) return;
    const url = current.url;
    ctx.run(async () => {
      try {
        await navigator.share({ title: S.shareTitle(roomName), url });
      } catch (e) {
        // The person closed the share sheet: not an error.
        if (e instanceof DOMException && e.name === 'AbortError') return;
        throw e;
      }
    });
  });
  revoke.addEventListener('click', () => {
    if (current === null) return;
    const id = current.id;
    ctx.run(() => ctx.session.revokeInvite(roomId, id));
  });
  const create = h('button', {
    text: S.newInvite,
    testid: 'new-invite',
    className: 'primary',
    attrs: { type: 'button' },
    on: { click: () => ctx.run(() => ctx.session.createInvite(roomId, Number(expiry.value))) },
  });

  const el = h('div', { className: 'card invite-panel' }, [
    h('h2', { text: S.inviteTitle }),
    h('p', { className: 'hint', text: S.inviteHint }),
    h('div', { className: 'row' }, [expiry, create]),
    shown,
  ]);

  return {
    el,
    update(room) {
      roomName = room.name;
      const latest = room.invites[room.invites.length - 1] ?? null;
      if (latest?.id === current?.id) return;
      current = latest;
      shown.hidden = latest === null;
      if (latest === null) return;
      link.textContent = latest.url;
      const problem = inviteReach(latest.url);
      reach.hidden = problem.kind === 'ok';
      canvas.hidden = problem.kind !== 'ok';
      reachWarning.textContent = problem.kind === 'ok' ? '' : problem.warning;
      reachFix.textContent = problem.kind === 'ok' ? '' : problem.fix;
      showExpiry();
      copy.textContent = S.copyLink;
      // qrcode is only loaded by owners who show an invite.
      ctx.run(async () => {
        const { default: QRCode } = await import('qrcode');
        await QRCode.toCanvas(canvas, latest.url, { errorCorrectionLevel: 'M', margin: 4, scale: 6 });
        // qrcode pins the canvas' CSS width and height in pixels; CSS (.qr) sizes it instead, so it
        // keeps its square shape at any width.
        canvas.style.removeProperty('width');
        canvas.style.removeProperty('height');
      });
    },
    destroy() {
      clearInterval(timer);
    },
  };
}
