/** What both ends of a peer link are configured with (owner: protocol/link/owner.ts, member: member.ts). */
import type { BoxKeyPair, BoxPublicKey, RandomBytes } from '../../crypto/index.ts';
import type { Timers, WebSocketCtor } from '../saltyrtc/client-driver.ts';
import type { IceServer, IceTransportPolicy } from './rtc.ts';

export interface EndpointOptions {
  /** Signaling server base URL (ws:// or wss://); the path hex(owner key) is appended. */
  readonly signalingUrl: string;
  /** Pin the server's permanent key (server-auth MUST then carry valid signed_keys). */
  readonly serverKey?: BoxPublicKey;
  /** This side's SaltyRTC permanent key pair (the owner's public key is in every invite). */
  readonly permanentKeys: BoxKeyPair;
  readonly iceServers: readonly IceServer[];
  readonly iceTransportPolicy?: IceTransportPolicy;
  /** WebRTC implementation for simple-peer (Node: nodeWrtc()); browsers leave it out. */
  readonly wrtc?: object;
  /**
   * Fallback through the signaling server when no ICE pair works (docs/PROTOCOL.md 4.8): default on,
   * the member deciding after FALLBACK_AFTER_MS; `afterMs` changes that deadline; `false` turns it off.
   */
  readonly fallback?: { readonly afterMs?: number; readonly probeAfterMs?: number } | false;
  /** WebSocket constructor (default globalThis.WebSocket; Node 20 passes `ws`). */
  readonly WebSocket?: WebSocketCtor;
  readonly timers?: Timers;
  readonly random?: RandomBytes;
}

/** The configured WebSocket constructor, else the platform's. */
export function webSocketOf(opts: EndpointOptions): WebSocketCtor {
  return opts.WebSocket ?? (globalThis as unknown as { WebSocket: WebSocketCtor }).WebSocket;
}
