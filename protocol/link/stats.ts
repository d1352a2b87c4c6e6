/** What getStats() says about the path a peer connection uses (the selected ICE candidate pair). */
import type { PeerConnectionLike, StatsEntry } from './rtc.ts';

export interface SelectedPath {
  /** ICE candidate types: 'host', 'srflx', 'prflx' or 'relay'. */
  readonly local: string | null;
  readonly remote: string | null;
  /** The pair's current round-trip time in milliseconds, when the implementation reports it. */
  readonly rttMs: number | null;
}

function isEntry(v: unknown): v is StatsEntry {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { type?: unknown }).type === 'string' &&
    typeof (v as { id?: unknown }).id === 'string'
  );
}

/** The selected candidate pair (the transport's, else a nominated succeeded pair); null when unknown. */
export async function selectedPath(pc: PeerConnectionLike | null): Promise<SelectedPath | null> {
  if (pc === null) return null;
  let stats: StatsEntry[];
  try {
    stats = [...(await pc.getStats()).values()].filter(isEntry);
  } catch {
    // Stats are informational: a connection is not failed over them.
    return null;
  }
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId !== undefined);
  const pair =
    stats.find((s) => s.id === transport?.selectedCandidatePairId) ??
    stats.find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded');
  if (pair === undefined) return null;
  const typeOf = (id: string | undefined): string | null => stats.find((s) => s.id === id)?.candidateType ?? null;
  const rtt = pair.currentRoundTripTime;
  return {
    local: typeOf(pair.localCandidateId),
    remote: typeOf(pair.remoteCandidateId),
    rttMs: typeof rtt === 'number' ? rtt * 1000 : null,
  };
}

/** 'relayed' when the selected pair's local candidate is a TURN relay. */
export async function isRelayed(pc: PeerConnectionLike | null): Promise<boolean> {
  return (await selectedPath(pc))?.local === 'relay';
}
