/**
 * Settings → Connection diagnostics: signaling reachable and its key, STUN reflexive address, TURN
 * allocation over UDP and TCP, and for each member the path in use and its round-trip time
 * (Session.diagnose, protocol/link/diagnostics.ts). Peer-supplied names go in via textContent only.
 */
import { h } from '../dom.ts';
import type { DiagnosticsReport } from '../session/session.ts';
import { S } from '../strings.ts';
import type { Ctx } from './shell.ts';

function row(testid: string, label: string, value: string, ok: boolean | null, attrs: Record<string, string> = {}): HTMLElement {
  return h('li', { testid, className: ok === null ? 'diag' : ok ? 'diag ok' : 'diag bad', attrs: { 'data-ok': String(ok), ...attrs } }, [
    h('span', { className: 'diag-label', text: `${label}: ` }),
    h('span', { className: 'diag-value', text: value }),
  ]);
}

export function renderReport(r: DiagnosticsReport): HTMLElement[] {
  const s = r.signaling;
  const D = S.diagnostics;
  return [
    row(
      'diag-signaling',
      D.signaling,
      s.reachable ? D.signalingReachable(r.signalingUrl, s.ms) : D.signalingUnreachable(s.error),
      s.reachable,
    ),
    row(
      'diag-server-key',
      D.serverKey,
      s.keyMatches === null ? D.serverKeyNone : s.keyMatches ? D.serverKeyMatches : D.serverKeyDiffers,
      s.keyMatches,
    ),
    row('diag-stun', D.stun, r.ice.reflexive ?? D.stunNone, r.ice.reflexive !== null),
    row('diag-turn-udp', D.turnUdp, D.turn(r.ice.turnUdp), r.ice.turnUdp),
    row('diag-turn-tcp', D.turnTcp, D.turn(r.ice.turnTcp), r.ice.turnTcp),
    ...r.links.map((l) =>
      row(
        'diag-member',
        D.member(l.room, l.name),
        l.path === null ? D.notConnected : `${D.path[l.path.kind] ?? l.path.kind}${l.path.rttMs !== null ? D.rtt(l.path.rttMs) : ''}`,
        l.path !== null,
        { 'data-path': l.path?.kind ?? 'none', 'data-rtt': l.path?.rttMs === null || l.path === null ? '' : String(l.path.rttMs) },
      ),
    ),
  ];
}

export function diagnosticsPanel(ctx: Ctx): HTMLElement {
  const list = h('ul', { className: 'diagnostics', testid: 'diagnostics' });
  const status = h('span', { className: 'muted', attrs: { role: 'status' } });
  const button = h('button', { text: S.diagnostics.run, testid: 'run-diagnostics', attrs: { type: 'button' } });
  button.addEventListener('click', () => {
    button.disabled = true;
    status.textContent = S.diagnostics.running;
    ctx.run(async () => {
      try {
        list.replaceChildren(...renderReport(await ctx.session.diagnose()));
        status.textContent = S.diagnostics.done;
      } finally {
        button.disabled = false;
      }
    });
  });
  return h('div', { className: 'card', testid: 'diagnostics-card' }, [
    h('h2', { text: S.diagnostics.title }),
    h('div', { className: 'row' }, [button, status]),
    list,
  ]);
}
