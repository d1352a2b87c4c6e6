/**
 * Connection diagnostics (issue #10, Settings): is the signaling server reachable and does it hold
 * the pinned key; does a STUN server give us a reflexive address; does each TURN server allocate
 * over UDP and over TCP; which path does each link use, and its round-trip time. Everything it
 * touches is injected (WebSocket, RTCPeerConnection constructor, timers, randomness), so the same
 * code runs in the browser and in Node.
 */
import { generateBoxKeyPair, systemRandom, type BoxPublicKey, type RandomBytes } from '../../crypto/index.ts';
import { SignalingClient, systemTimers, type Timers, type WebSocketCtor } from '../saltyrtc/client-driver.ts';
import type { IceServer, StatsEntry } from './rtc.ts';
import type { SelectedPath } from './stats.ts';

export type PathKind = 'host' | 'reflexive' | 'relay' | 'fallback';

export interface LinkPathInfo {
  readonly kind: PathKind;
  /** Round-trip time of the selected candidate pair, when the implementation reports it. */
  readonly rttMs: number | null;
}

/** The path a selected candidate pair stands for: a relay on either end wins, then a reflexive one. */
export function pathKindOf(p: SelectedPath): PathKind {
  const types = [p.local, p.remote];
  if (types.includes('relay')) return 'relay';
  if (types.includes('srflx') || types.includes('prflx')) return 'reflexive';
  return 'host';
}

export interface SignalingCheck {
  readonly reachable: boolean;
  /** null: no key to compare with (nothing pinned, none announced). */
  readonly keyMatches: boolean | null;
  /** The error code when it failed (e.g. saltyrtc.server-key, saltyrtc.server). */
  readonly error: string | null;
  readonly ms: number | null;
}

/**
 * Connects to the signaling server as the initiator of a throwaway path (a fresh random key: no
 * room is touched) and pins `serverKey` when given: server-auth's signed_keys must then verify.
 */
export function checkSignaling(opts: {
  readonly url: string;
  readonly serverKey?: BoxPublicKey;
  readonly WebSocket: WebSocketCtor;
  readonly timers?: Timers;
  readonly random?: RandomBytes;
  readonly timeoutMs?: number;
}): Promise<SignalingCheck> {
  const timers = opts.timers ?? systemTimers;
  const random = opts.random ?? systemRandom;
  const keys = generateBoxKeyPair(random);
  const started = timers.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: SignalingCheck): void => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      client.close();
      resolve(r);
    };
    const client = new SignalingClient({
      url: opts.url,
      WebSocket: opts.WebSocket,
      timers,
      pathKey: keys.publicKey,
      context: {
        role: 'initiator',
        permanent: keys,
        ...(opts.serverKey !== undefined ? { serverKey: opts.serverKey } : {}),
        random,
        taskData: { exclude: [], handover: true },
        pendingTokens: () => [],
        acceptToken: () => false,
        trustedKeys: () => [],
      },
    });
    const timer = timers.setTimeout(
      () => finish({ reachable: false, keyMatches: null, error: 'timeout', ms: null }),
      opts.timeoutMs ?? 10_000,
    );
    client.on('server-ready', () =>
      finish({ reachable: true, keyMatches: opts.serverKey !== undefined ? true : null, error: null, ms: timers.now() - started }),
    );
    client.on('closed', (e) => {
      // A refused pin means we reached a server that does not hold (or cannot prove) that key.
      const keyFailure = e.code === 'saltyrtc.server-key';
      finish({ reachable: keyFailure, keyMatches: keyFailure ? false : null, error: e.code, ms: null });
    });
    try {
      client.start();
    } catch (e) {
      finish({ reachable: false, keyMatches: null, error: e instanceof Error ? e.message : String(e), ms: null });
    }
  });
}

/** The part of RTCPeerConnection that gathering needs. */
export interface GatheringPeerConnection {
  readonly iceGatheringState: string;
  createDataChannel(label: string): unknown;
  createOffer(): Promise<{ type?: string; sdp?: string }>;
  setLocalDescription(d: { type?: string; sdp?: string }): Promise<void>;
  addEventListener(type: string, listener: (ev: { candidate?: { candidate?: string } | null }) => void): void;
  getStats(): Promise<{ values(): Iterable<unknown> }>;
  close(): void;
}
export type PeerConnectionCtor = new (config: { iceServers: IceServer[]; iceTransportPolicy?: 'all' | 'relay' }) => GatheringPeerConnection;

export interface Candidate {
  readonly type: string;
  readonly address: string | null;
  /** For relay candidates: how we reach the TURN server ('udp', 'tcp', 'tls'). */
  readonly relayProtocol: string | null;
}

/** Parse the type and address out of an ICE candidate line (`candidate:... typ srflx ...`). */
export function parseCandidate(line: string): { type: string; address: string | null } | null {
  const parts = line.replace(/^a=/, '').split(' ');
  const typ = parts.indexOf('typ');
  if (typ === -1 || parts[typ + 1] === undefined) return null;
  return { type: parts[typ + 1] as string, address: parts[4] ?? null };
}

/** Gathers candidates for `iceServers` until gathering completes or `timeoutMs` passes. */
export async function gather(
  RTCPeerConnection: PeerConnectionCtor,
  iceServers: readonly IceServer[],
  policy: 'all' | 'relay',
  timers: Timers,
  timeoutMs: number,
): Promise<Candidate[]> {
  const pc = new RTCPeerConnection({ iceServers: [...iceServers], iceTransportPolicy: policy });
  const found: Array<{ type: string; address: string | null }> = [];
  try {
    const complete = new Promise<void>((resolve) => {
      const timer = timers.setTimeout(resolve, timeoutMs);
      pc.addEventListener('icecandidate', (ev) => {
        const c = ev.candidate;
        if (c === null || c === undefined || c.candidate === undefined || c.candidate === '') {
          timers.clearTimeout(timer);
          resolve();
          return;
        }
        const parsed = parseCandidate(c.candidate);
        if (parsed !== null) found.push(parsed);
      });
    });
    pc.createDataChannel('diagnostics');
    await pc.setLocalDescription(await pc.createOffer());
    await complete;
    // relayProtocol is only in the stats (and only in browsers that report it).
    let stats: StatsEntry[] = [];
    try {
      stats = [...(await pc.getStats()).values()] as StatsEntry[];
    } catch {
      stats = [];
    }
    const relayProtocols = stats
      .filter((s) => s.type === 'local-candidate' && s.candidateType === 'relay')
      .map((s) => (s as { relayProtocol?: unknown }).relayProtocol)
      .filter((p): p is string => typeof p === 'string');
    return found.map((c) => ({ ...c, relayProtocol: c.type === 'relay' ? (relayProtocols[0] ?? null) : null }));
  } finally {
    pc.close();
  }
}

export interface IceCheck {
  /** A server-reflexive address a STUN (or TURN) server reported, or null. */
  readonly reflexive: string | null;
  /** TURN allocation by transport: true/false, or null when no TURN URL uses that transport. */
  readonly turnUdp: boolean | null;
  readonly turnTcp: boolean | null;
}

/** TURN URLs of `servers` for one transport (`?transport=tcp`; none given means UDP). */
export function turnServersFor(servers: readonly IceServer[], transport: 'udp' | 'tcp'): IceServer[] {
  const out: IceServer[] = [];
  for (const s of servers) {
    const urls = (typeof s.urls === 'string' ? [s.urls] : [...s.urls]).filter((u) => {
      if (!/^turns?:/i.test(u)) return false;
      const t = /[?&]transport=(udp|tcp)/i.exec(u)?.[1]?.toLowerCase() ?? (u.toLowerCase().startsWith('turns:') ? 'tcp' : 'udp');
      return t === transport;
    });
    if (urls.length > 0) out.push({ ...s, urls });
  }
  return out;
}

/** STUN: a reflexive address from every server; TURN: one relay-only gathering per transport. */
export async function checkIce(opts: {
  readonly iceServers: readonly IceServer[];
  readonly RTCPeerConnection: PeerConnectionCtor;
  readonly timers?: Timers;
  readonly timeoutMs?: number;
}): Promise<IceCheck> {
  const timers = opts.timers ?? systemTimers;
  const timeoutMs = opts.timeoutMs ?? 8000;
  const all = await gather(opts.RTCPeerConnection, opts.iceServers, 'all', timers, timeoutMs);
  const reflexive = all.find((c) => c.type === 'srflx')?.address ?? null;
  const turn = async (transport: 'udp' | 'tcp'): Promise<boolean | null> => {
    const servers = turnServersFor(opts.iceServers, transport);
    if (servers.length === 0) return null;
    const relay = await gather(opts.RTCPeerConnection, servers, 'relay', timers, timeoutMs);
    return relay.some((c) => c.type === 'relay');
  };
  const [turnUdp, turnTcp] = await Promise.all([turn('udp'), turn('tcp')]);
  return { reflexive, turnUdp, turnTcp };
}
