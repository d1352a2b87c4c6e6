/**
 * The WebRTC shapes the peer link needs, as our own structural types: protocol/ is compiled for
 * the browser and for Node (where lib.dom is absent), so it names no DOM type. A browser's
 * RTCPeerConnection and node-datachannel's polyfill both satisfy these.
 */

/** RTCIceServer: a STUN/TURN server. */
export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** RTCIceTransportPolicy: 'relay' uses TURN candidates only. */
export type IceTransportPolicy = 'all' | 'relay';

/** RTCIceConnectionState / RTCPeerConnectionState values the link reacts to (others pass through). */
export type IceConnectionState = 'new' | 'checking' | 'connected' | 'completed' | 'disconnected' | 'failed' | 'closed';
export type PeerConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/** One entry of RTCPeerConnection.getStats(): only the fields the link reads. */
export interface StatsEntry {
  readonly type: string;
  readonly id: string;
  readonly selectedCandidatePairId?: string;
  readonly localCandidateId?: string;
  readonly remoteCandidateId?: string;
  readonly nominated?: boolean;
  readonly state?: string;
  readonly candidateType?: string;
  readonly currentRoundTripTime?: number;
}

/** The part of RTCPeerConnection the link uses. */
export interface PeerConnectionLike {
  readonly iceConnectionState: IceConnectionState;
  readonly connectionState: PeerConnectionState;
  readonly sctp?: { readonly maxMessageSize?: number } | null;
  restartIce?(): void;
  getStats(): Promise<{ values(): Iterable<unknown> }>;
  addEventListener(type: string, listener: () => void): void;
}

/** The part of RTCDataChannel the link uses. */
export interface DataChannelLike {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  addEventListener(type: string, listener: () => void): void;
}

/** A candidate as the WebRTC task carries it (RTCIceCandidateInit without usernameFragment). */
export interface CandidateInit {
  readonly candidate: string;
  readonly sdpMid: string | null;
  readonly sdpMLineIndex: number | null;
}

/** RTCDataChannelState. */
export type DataChannelState = 'connecting' | 'open' | 'closing' | 'closed';

/**
 * The part of an RTCDataChannel the files channel (docs/PROTOCOL.md 5.17.3) uses: it sends and
 * receives binary messages itself (the link's own channel is read through simple-peer).
 */
export interface MessageChannelLike {
  readonly label: string;
  readonly readyState: DataChannelState;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType: string;
  send(data: Uint8Array): void;
  close(): void;
  /** 'open', 'close', 'bufferedamountlow' (no payload) and 'message' (`ev.data`: ArrayBuffer or a view). */
  addEventListener(type: string, listener: (ev: { readonly data?: unknown }) => void): void;
}
