import { describe, expect, it } from 'vitest';
import { REJECT_REASONS, SignalingMetrics } from '../../signaling/metrics.ts';

/** Minimal Prometheus text parser: `name{labels} value` lines, checking every sample has HELP and TYPE. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.trimEnd().split('\n')) {
    const meta = /^# (HELP|TYPE) (\w+) (.+)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        expect(meta[3]).toMatch(/^(gauge|counter)$/);
        typed.add(meta[2] as string);
      }
      continue;
    }
    const m = /^(\w+)(\{\w+="[^"\\\n]*"\})? (-?\d+(\.\d+)?)$/.exec(line);
    expect(m, `malformed sample line: ${line}`).not.toBeNull();
    const [, name, labels, value] = m as RegExpExecArray;
    expect(typed.has(name as string), `${name} has no TYPE line`).toBe(true);
    samples.set(`${name}${labels ?? ''}`, Number(value));
  }
  return samples;
}

describe('SignalingMetrics', () => {
  it('starts with every series at zero', () => {
    const s = parseExposition(new SignalingMetrics(0).render({ residentMemoryBytes: 1234, nowMs: 5000 }));
    expect(s.get('zeroroom_connections_open')).toBe(0);
    expect(s.get('zeroroom_handshakes_total{role="initiator"}')).toBe(0);
    for (const r of REJECT_REASONS) expect(s.get(`zeroroom_rejects_total{reason="${r}"}`)).toBe(0);
    expect(s.get('zeroroom_process_resident_memory_bytes')).toBe(1234);
    expect(s.get('zeroroom_uptime_seconds')).toBe(5);
  });

  it('counts what the observer reports', () => {
    const m = new SignalingMetrics(0);
    m.connectionOpened();
    m.connectionOpened();
    m.connectionOpened();
    m.connectionClosed(1001);
    m.connectionClosed(3001);
    m.connectionClosed(1001);
    m.connectionClosed(1001); // one close too many must not drive the gauge negative
    m.pathOpened();
    m.pathOpened();
    m.pathClosed();
    m.handshakeCompleted('initiator');
    m.handshakeCompleted('responder');
    m.handshakeCompleted('responder');
    m.relayed(100);
    m.relayed(28);
    m.rejected('bad-path');
    m.rejected('bad-path');
    m.rejected('rate-limited');
    m.connectionClosed(99999);
    const s = parseExposition(m.render({ residentMemoryBytes: 0, nowMs: 0 }));
    expect(s.get('zeroroom_connections_open')).toBe(0);
    expect(s.get('zeroroom_connections_total')).toBe(3);
    expect(s.get('zeroroom_paths_open')).toBe(1);
    expect(s.get('zeroroom_paths_total')).toBe(2);
    expect(s.get('zeroroom_handshakes_total{role="responder"}')).toBe(2);
    expect(s.get('zeroroom_relayed_frames_total')).toBe(2);
    expect(s.get('zeroroom_relayed_bytes_total')).toBe(128);
    expect(s.get('zeroroom_closes_total{code="1001"}')).toBe(3);
    expect(s.get('zeroroom_closes_total{code="3001"}')).toBe(1);
    expect(s.get('zeroroom_closes_total{code="other"}')).toBe(1);
    expect(s.get('zeroroom_rejects_total{reason="bad-path"}')).toBe(2);
    expect(s.get('zeroroom_rejects_total{reason="rate-limited"}')).toBe(1);
  });
});
