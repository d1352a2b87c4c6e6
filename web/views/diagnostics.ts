/**
 * Settings → Connection diagnostics: signaling reachable and its key, STUN reflexive address, TURN
 * allocation over UDP and TCP, and for each member the path in use and its round-trip time
 * (Session.diagnose, protocol/link/diagnostics.ts). Peer-supplied names go in via textContent only.
 */
import { h } from '../dom.ts';
import type { DiagnosticsReport } from '../session/session.ts';
import type { Ctx } from './shell.ts';

const PATH_TEXT: Record<string, string> = {
  host: 'direct (local network)',
  reflexive: 'direct (through NAT)',
  relay: 'relayed via TURN',
  fallback: 'via the signaling server',
};

function row(testid: string, label: string, value: string, ok: boolean | null, attrs: Record<string, string> = {}): HTMLElement {
  return h('li', { testid, className: ok === null ? 'diag' : ok ? 'diag ok' : 'diag bad', attrs: { 'data-ok': String(ok), ...attrs } }, [
    h('span', { className: 'diag-label', text: `${label}: ` }),
    h('span', { className: 'diag-value', text: value }),
  ]);
}

export function renderReport(r: DiagnosticsReport): HTMLElement[] {
  const s = r.signaling;
  const turn = (v: boolean | null): string => (v === null ? 'not configured' : v ? 'allocated' : 'failed');
  return [
    row(
      'diag-signaling',
      'Signaling server',
      s.reachable ? `reachable (${r.signalingUrl}${s.ms !== null ? `, ${s.ms} ms` : ''})` : `not reachable (${s.error ?? 'unknown'})`,
      s.reachable,
    ),
    row(
      'diag-server-key',
      'Server key',
      s.keyMatches === null ? 'nothing to compare with' : s.keyMatches ? 'matches the pinned key' : 'does NOT match the pinned key',
      s.keyMatches,
    ),
    row('diag-stun', 'STUN (your public address)', r.ice.reflexive ?? 'none found', r.ice.reflexive !== null),
    row('diag-turn-udp', 'TURN over UDP', turn(r.ice.turnUdp), r.ice.turnUdp),
    row('diag-turn-tcp', 'TURN over TCP', turn(r.ice.turnTcp), r.ice.turnTcp),
    ...r.links.map((l) =>
      row(
        'diag-member',
        `${l.room} / ${l.name}`,
        l.path === null
          ? 'not connected'
          : `${PATH_TEXT[l.path.kind] ?? l.path.kind}${l.path.rttMs !== null ? `, ${Math.round(l.path.rttMs)} ms` : ''}`,
        l.path !== null,
        { 'data-path': l.path?.kind ?? 'none', 'data-rtt': l.path?.rttMs === null || l.path === null ? '' : String(l.path.rttMs) },
      ),
    ),
  ];
}

export function diagnosticsPanel(ctx: Ctx): HTMLElement {
  const list = h('ul', { className: 'diagnostics', testid: 'diagnostics' });
  const status = h('span', { className: 'muted', attrs: { role: 'status' } });
  const button = h('button', { text: 'Check connection', testid: 'run-diagnostics', attrs: { type: 'button' } });
  button.addEventListener('click', () => {
    button.disabled = true;
    status.textContent = 'Checking…';
    ctx.run(async () => {
      try {
        list.replaceChildren(...renderReport(await ctx.session.diagnose()));
        status.textContent = 'Done.';
      } finally {
        button.disabled = false;
      }
    });
  });
  return h('div', { className: 'card', testid: 'diagnostics-card' }, [
    h('h2', { text: 'Connection diagnostics' }),
    h('div', { className: 'row' }, [button, status]),
    list,
  ]);
}
