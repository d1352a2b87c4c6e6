/**
 * Every WebSocket close code ZeroRoom's SaltyRTC server and clients use, in ONE table
 * (Protocol.md "Close Code Enumeration"). docs/PROTOCOL.md section 7 mirrors `CLOSE_CODE_TABLE`;
 * test/signaling/close-codes.test.ts checks that the doc and this table agree.
 */

export const CloseCode = {
  GoingAway: 1001,
  /** Several nodes only: this node lost its shared path state (Redis); reconnect. */
  ServiceRestart: 1012,
  NoSharedSubprotocol: 1002,
  /** WebSocket level: a frame larger than maxPayload (ws sends it itself). */
  MessageTooBig: 1009,
  PathFull: 3000,
  ProtocolError: 3001,
  InternalError: 3002,
  Handover: 3003,
  DroppedByInitiator: 3004,
  InitiatorCouldNotDecrypt: 3005,
  NoSharedTask: 3006,
  InvalidKey: 3007,
  Timeout: 3008,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export interface CloseCodeEntry {
  readonly code: CloseCodeValue;
  readonly name: string;
  /** When our server sends it ("-" when only clients send it). */
  readonly server: string;
  /** When a client sends it. */
  readonly client: string;
}

export const CLOSE_CODE_TABLE: readonly CloseCodeEntry[] = [
  { code: 1001, name: 'Going Away', server: 'server shutting down', client: "normal close; after a 'close' message" },
  {
    code: 1002,
    name: 'No Shared Subprotocol Found',
    server: '- (refused at the upgrade with HTTP 400 instead)',
    client: 'server did not select v1.saltyrtc.org',
  },
  { code: 1009, name: 'Message Too Big', server: 'frame larger than maxPayload', client: '-' },
  {
    code: 1012,
    name: 'Service Restart',
    server:
      'several nodes only: the node lost its registration in Redis (connection lost, lease expired, Redis restarted, inter-node messages lost); reconnect',
    client: '-',
  },
  { code: 3000, name: 'Path Full', server: 'all 254 responder addresses taken', client: '-' },
  {
    code: 3001,
    name: 'Protocol Error',
    server: 'malformed frame, text frame, bad cookie/csn/address, bad or unexpected message',
    client: 'protocol error',
  },
  { code: 3002, name: 'Internal Error', server: 'unexpected server fault (csn exhausted)', client: 'internal error' },
  { code: 3003, name: 'Handover of the Signalling Channel', server: '-', client: 'task took over the signalling' },
  {
    code: 3004,
    name: 'Dropped by Initiator',
    server: 'drop-responder without reason; previous initiator replaced',
    client: "'drop-responder' reason",
  },
  { code: 3005, name: 'Initiator Could Not Decrypt', server: 'drop-responder reason', client: "'drop-responder' reason" },
  { code: 3006, name: 'No Shared Task Found', server: '-', client: 'no common task' },
  {
    code: 3007,
    name: 'Invalid Key',
    server: "client-auth 'your_key' is not one of our permanent keys",
    client: 'server key pinning failed',
  },
  { code: 3008, name: 'Timeout', server: 'no pong within the ping timeout; handshake not finished in time', client: 'timeout' },
];

/** Reasons an initiator may give in 'drop-responder' (Protocol.md "Close Code Enumeration"). */
export const DROP_RESPONDER_REASONS: readonly number[] = [
  CloseCode.ProtocolError,
  CloseCode.InternalError,
  CloseCode.DroppedByInitiator,
  CloseCode.InitiatorCouldNotDecrypt,
];

export function isDropResponderReason(code: number): boolean {
  return DROP_RESPONDER_REASONS.includes(code);
}

/** Upgrades we refuse before any WebSocket exists get a real HTTP status instead of a close code. */
export const UpgradeRefusal = {
  'bad-path': 400,
  'bad-subprotocol': 400,
  'too-many-connections': 503,
  'too-many-per-ip': 429,
  'rate-limited': 429,
  'shutting-down': 503,
  /** Several nodes only: the node is not registered in Redis right now. */
  'cluster-unavailable': 503,
} as const;
