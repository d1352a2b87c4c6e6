/** Owner's invite panel: create a one-time invite, show it as QR code and link, copy, expiry, revoke. */
import { h } from '../dom.ts';
import type { InviteView, RoomView } from '../session/types.ts';
import { inviteReach } from './invite-reach.ts';
import type { Ctx } from './shell.ts';

const EXPIRY_CHOICES: ReadonlyArray<readonly [string, number]> = [
  ['10 minutes', 10],
  ['1 hour', 60],
  ['1 day', 24 * 60],
];

export function invitePanel(ctx: Ctx, roomId: string): { el: HTMLElement; update(room: RoomView): void } {
  const expiry = h('select', { testid: 'invite-expiry', attrs: { 'aria-label': 'Invite expires after' } });
  for (const [label, minutes] of EXPIRY_CHOICES) expiry.append(h('option', { text: label, attrs: { value: String(minutes) } }));
  const canvas = h('canvas', { className: 'qr', testid: 'invite-qr', attrs: { 'aria-label': 'Invite QR code', role: 'img' } });
  const link = h('code', { className: 'invite-link', testid: 'invite-link' });
  const expires = h('p', { className: 'muted', testid: 'invite-expires' });
  const copy = h('button', { text: 'Copy link', testid: 'copy-invite', attrs: { type: 'button' } });
  const revoke = h('button', { text: 'Revoke', testid: 'revoke-invite', attrs: { type: 'button' } });
  // An invite a phone cannot use gets a warning and the fix instead of its QR code (invite-reach.ts).
  const reachWarning = h('p', { className: 'error', testid: 'invite-warning', attrs: { role: 'alert' } });
  const reachFix = h('p', { className: 'muted', testid: 'invite-fix' });
  const showQr = h('button', { text: 'Show the QR code anyway', testid: 'show-invite-qr', attrs: { type: 'button' } });
  const reach = h('div', { className: 'invite-reach' }, [reachWarning, reachFix, showQr]);
  showQr.addEventListener('click', () => {
    canvas.hidden = false;
    reach.hidden = true;
  });
  const shown = h('div', { className: 'invite' }, [reach, canvas, link, expires, h('div', { className: 'row' }, [copy, revoke])]);
  shown.hidden = true;
  let current: InviteView | null = null;

  copy.addEventListener('click', () => {
    if (current === null) return;
    const url = current.url;
    ctx.run(async () => {
      if (navigator.clipboard === undefined) {
        // Plain http on a LAN address is not a secure context: no clipboard API. Select the link instead.
        const range = document.createRange();
        range.selectNodeContents(link);
        window.getSelection()?.removeAllRanges();
        window.getSelection()?.addRange(range);
        copy.textContent = 'Selected: press Ctrl+C';
        return;
      }
      await navigator.clipboard.writeText(url);
      copy.textContent = 'Copied';
    });
  });
  revoke.addEventListener('click', () => {
    if (current === null) return;
    const id = current.id;
    ctx.run(() => ctx.session.revokeInvite(roomId, id));
  });
  const create = h('button', {
    text: 'New invite',
    testid: 'new-invite',
    attrs: { type: 'button' },
    on: { click: () => ctx.run(() => ctx.session.createInvite(roomId, Number(expiry.value))) },
  });

  const el = h('div', { className: 'card invite-panel' }, [
    h('h2', { text: 'Invite' }),
    h('p', { className: 'muted', text: 'Each invite admits one person. Show the QR code or send the link over a channel you trust.' }),
    h('div', { className: 'row' }, [expiry, create]),
    shown,
  ]);

  return {
    el,
    update(room) {
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
      expires.textContent = `expires ${new Date(latest.expiresAt).toLocaleString()}`;
      copy.textContent = 'Copy link';
      // qrcode is only loaded by owners who show an invite.
      ctx.run(async () => {
        const { default: QRCode } = await import('qrcode');
        await QRCode.toCanvas(canvas, latest.url, { errorCorrectionLevel: 'M', margin: 4, scale: 5 });
      });
    },
  };
}
