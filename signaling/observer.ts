/**
 * What the signaling server reports about itself, for metrics. Only counts and close codes cross
 * this interface: no IP addresses, no keys, no paths, no payloads.
 */
export type RejectReason =
  | 'bad-path'
  | 'bad-subprotocol'
  | 'too-many-connections'
  | 'too-many-per-ip'
  | 'rate-limited'
  | 'path-full'
  | 'bad-message'
  | 'handshake-timeout'
  | 'bad-auth';

export interface SignalingObserver {
  /** A WebSocket upgrade was accepted. */
  connectionOpened(): void;
  /** An accepted WebSocket closed, with the close code it closed with (ours or the client's). */
  connectionClosed(code: number): void;
  /** An upgrade was refused or a connection was closed for a limit or protocol reason. */
  rejected(reason: RejectReason): void;
  /** A client finished the client-to-server handshake (server-auth sent). */
  handshakeCompleted(role: 'initiator' | 'responder'): void;
  /** One frame was relayed between clients; `bytes` is its full length (nonce included). */
  relayed(bytes: number): void;
  pathOpened(): void;
  pathClosed(): void;
}

const noop = (): void => undefined;

export const nullObserver: SignalingObserver = Object.freeze({
  connectionOpened: noop,
  connectionClosed: noop,
  rejected: noop,
  handshakeCompleted: noop,
  relayed: noop,
  pathOpened: noop,
  pathClosed: noop,
});
