import type { RejectReason, SignalingObserver } from './observer.ts';
import type { RelayBudgetStats } from './relay-budget.ts';

/** Every reason the server reports, listed so each series exists (at 0) from the first scrape. */
export const REJECT_REASONS: readonly RejectReason[] = [
  'bad-path',
  'bad-subprotocol',
  'too-many-connections',
  'too-many-per-ip',
  'rate-limited',
  'path-full',
  'bad-message',
  'handshake-timeout',
  'bad-auth',
];

type Role = 'initiator' | 'responder';

/**
 * Counters for `GET /metrics`. Holds numbers only: no IP addresses, keys, paths or payloads ever reach
 * it, so the scrape output cannot leak who talks to whom.
 */
export class SignalingMetrics implements SignalingObserver {
  connectionsOpen = 0;
  connectionsTotal = 0;
  pathsOpen = 0;
  pathsTotal = 0;
  relayedFrames = 0;
  relayedBytes = 0;
  readonly handshakes: Record<Role, number> = { initiator: 0, responder: 0 };
  readonly closesByCode = new Map<string, number>();
  readonly rejectsByReason = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]));
  private readonly startedAtMs: number;
  /** The relay budget's counters (docs/PROTOCOL.md 3.9), when the server has one. */
  relayBudget: RelayBudgetStats | null = null;

  constructor(nowMs: number = Date.now()) {
    this.startedAtMs = nowMs;
  }

  connectionOpened(): void {
    this.connectionsOpen++;
    this.connectionsTotal++;
  }
  connectionClosed(code: number): void {
    this.connectionsOpen = Math.max(0, this.connectionsOpen - 1);
    // Close codes are small integers; anything else is folded into one label so a buggy caller
    // cannot blow up the number of series.
    const label = Number.isInteger(code) && code >= 1000 && code <= 4999 ? String(code) : 'other';
    this.closesByCode.set(label, (this.closesByCode.get(label) ?? 0) + 1);
  }
  rejected(reason: RejectReason): void {
    this.rejectsByReason.set(reason, (this.rejectsByReason.get(reason) ?? 0) + 1);
  }
  handshakeCompleted(role: Role): void {
    this.handshakes[role]++;
  }
  relayed(bytes: number): void {
    this.relayedFrames++;
    this.relayedBytes += bytes;
  }
  pathOpened(): void {
    this.pathsOpen++;
    this.pathsTotal++;
  }
  pathClosed(): void {
    this.pathsOpen = Math.max(0, this.pathsOpen - 1);
  }

  /** Prometheus text exposition format 0.0.4. */
  render(process: { residentMemoryBytes: number; nowMs: number }): string {
    const out: string[] = [];
    const family = (name: string, type: 'gauge' | 'counter', help: string, samples: ReadonlyArray<[labels: string, value: number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
    };
    family('zeroroom_connections_open', 'gauge', 'WebSocket connections currently open.', [['', this.connectionsOpen]]);
    family('zeroroom_connections_total', 'counter', 'WebSocket connections accepted since start.', [['', this.connectionsTotal]]);
    family('zeroroom_paths_open', 'gauge', 'Paths (rooms) with at least one client.', [['', this.pathsOpen]]);
    family('zeroroom_paths_total', 'counter', 'Paths opened since start.', [['', this.pathsTotal]]);
    family('zeroroom_handshakes_total', 'counter', 'Completed server handshakes by client role.', [
      ['{role="initiator"}', this.handshakes.initiator],
      ['{role="responder"}', this.handshakes.responder],
    ]);
    family('zeroroom_relayed_frames_total', 'counter', 'Frames relayed from one client to another.', [['', this.relayedFrames]]);
    family('zeroroom_relayed_bytes_total', 'counter', 'Bytes relayed from one client to another.', [['', this.relayedBytes]]);
    family('zeroroom_relay_throttled_total', 'counter', 'Times a sender was paused for exceeding its path relay budget.', [
      ['', this.relayBudget?.throttled ?? 0],
    ]);
    family('zeroroom_relay_throttled_seconds_total', 'counter', 'Seconds senders were paused by the relay budget, summed.', [
      ['', (this.relayBudget?.throttledMs ?? 0) / 1000],
    ]);
    family(
      'zeroroom_closes_total',
      'counter',
      'Closed WebSocket connections by close code.',
      [...this.closesByCode].sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => [`{code="${code}"}`, n]),
    );
    family(
      'zeroroom_rejects_total',
      'counter',
      'Connections or messages refused, by reason.',
      [...this.rejectsByReason].map(([reason, n]) => [`{reason="${reason}"}`, n]),
    );
    family('zeroroom_process_resident_memory_bytes', 'gauge', 'Resident memory of the server process.', [
      ['', process.residentMemoryBytes],
    ]);
    family('zeroroom_uptime_seconds', 'gauge', 'Seconds since the server started.', [
      ['', Math.floor((process.nowMs - this.startedAtMs) / 1000)],
    ]);
    return out.join('\n') + '\n';
  }
}
