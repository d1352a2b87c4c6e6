/**
 * Messages between nodes (docs/PROTOCOL.md 3.8.3): what the cluster's Redis scripts publish on a
 * node's channel `zr:to:<node>`. One strict decoder (`decodeNodeMessage`) and the per-channel
 * sequence check (`SequenceCheck`); the encoder is for tests and the node's own send-error (the
 * scripts in scripts.ts build the same bytes in Lua). Pure: no I/O.
 *
 *   byte 0       version (1)
 *   byte 1       type
 *   bytes 2..9   sequence number of this message on the channel (u64 big-endian, 1, 2, 3, ...)
 *   bytes 10..13 the receiving node's connection (u32 big-endian, >= 1)
 *   bytes 14..   the type's fields (exact lengths below)
 */
import { ZeroRoomError } from '../../protocol/errors.ts';
import { isDropResponderReason } from '../../protocol/saltyrtc/close-codes.ts';
import type { ClusterEvent, ConnId } from '../../protocol/saltyrtc/server-machine.ts';
import { FIRST_RESPONDER, INITIATOR_ADDRESS, LAST_RESPONDER, NONCE_LENGTH } from '../../protocol/saltyrtc/nonce.ts';

export const NODE_MESSAGE_VERSION = 1;
export const HEADER_LENGTH = 14;
/** Node ids: 8 random bytes as 16 lowercase hex characters (a fresh one per registration). */
export const NODE_ID_PATTERN = /^[0-9a-f]{16}$/;
export type NodeId = string & { readonly __brand: 'NodeId' };

export const NodeMessageType = {
  Relay: 1,
  SendError: 2,
  NewResponder: 3,
  NewInitiator: 4,
  Disconnected: 5,
  Dropped: 6,
  InitiatorGranted: 7,
  ResponderGranted: 8,
  PathFull: 9,
} as const;

/** A relayed client frame for one of our connections, and where it came from (for send-error). */
export interface RelayMessage {
  readonly type: 'relay';
  readonly conn: ConnId;
  readonly fromNode: NodeId;
  readonly fromConn: ConnId;
  readonly frame: Uint8Array;
}

export type NodeMessage = { readonly seq: number } & (RelayMessage | ClusterEvent);

/** Malformed (`cluster.message`), replayed (`cluster.replay`) or out-of-order/lost (`cluster.gap`) input from the cluster. */
export class ClusterMessageError extends ZeroRoomError {
  constructor(code: 'cluster.message' | 'cluster.replay' | 'cluster.gap', message: string) {
    super(code, message);
  }
}

const malformed = (why: string): ClusterMessageError => new ClusterMessageError('cluster.message', why);

export function asNodeId(s: string): NodeId {
  if (!NODE_ID_PATTERN.test(s)) throw malformed('node id is not 16 lowercase hex characters');
  return s as NodeId;
}

const isResponder = (a: number): boolean => a >= FIRST_RESPONDER && a <= LAST_RESPONDER;

/**
 * Decode one message. `maxFrame` bounds a relayed frame (the server's maxPayload). Throws
 * ClusterMessageError('cluster.message') for anything that is not exactly one well-formed message.
 */
export function decodeNodeMessage(bytes: Uint8Array, maxFrame: number): NodeMessage {
  if (bytes.length < HEADER_LENGTH) throw malformed('shorter than the header');
  if (bytes.length > HEADER_LENGTH + 20 + maxFrame) throw malformed('longer than the largest relayed frame');
  if (bytes[0] !== NODE_MESSAGE_VERSION) throw malformed(`unknown version ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = bytes[1]!;
  const seq = view.getUint32(2) * 2 ** 32 + view.getUint32(6);
  if (seq < 1 || !Number.isSafeInteger(seq)) throw malformed('sequence number out of range');
  const conn = view.getUint32(10);
  if (conn < 1) throw malformed('connection 0');
  const body = bytes.subarray(HEADER_LENGTH);
  const exactly = (n: number): void => {
    if (body.length !== n) throw malformed(`type ${type}: ${body.length} field bytes, expected ${n}`);
  };
  switch (type) {
    case NodeMessageType.Relay: {
      if (body.length <= 20 + NONCE_LENGTH) throw malformed('relay: frame too short');
      const fromNode = asNodeId(new TextDecoder().decode(body.subarray(0, 16)));
      const fromConn = new DataView(body.buffer, body.byteOffset + 16, 4).getUint32(0);
      if (fromConn < 1) throw malformed('relay: from connection 0');
      return { seq, type: 'relay', conn, fromNode, fromConn, frame: body.subarray(20) };
    }
    case NodeMessageType.SendError:
      exactly(8);
      return { seq, type: 'send-error', conn, id: new Uint8Array(body) }; // a copy (Buffer's slice is a view)
    case NodeMessageType.NewResponder:
      exactly(1);
      if (!isResponder(body[0]!)) throw malformed('new-responder: not a responder address');
      return { seq, type: 'new-responder', conn, id: body[0]! };
    case NodeMessageType.NewInitiator:
      exactly(0);
      return { seq, type: 'new-initiator', conn };
    case NodeMessageType.Disconnected:
      exactly(1);
      if (body[0] !== INITIATOR_ADDRESS && !isResponder(body[0]!)) throw malformed('disconnected: not a client address');
      return { seq, type: 'disconnected', conn, id: body[0]! };
    case NodeMessageType.Dropped: {
      exactly(2);
      const code = new DataView(body.buffer, body.byteOffset, 2).getUint16(0);
      if (!isDropResponderReason(code)) throw malformed('dropped: not a drop reason');
      return { seq, type: 'dropped', conn, code };
    }
    case NodeMessageType.InitiatorGranted: {
      if (body.length < 1 || body.length !== 1 + body[0]!) throw malformed('initiator-granted: count does not match');
      const responders = [...body.subarray(1)];
      for (let i = 0; i < responders.length; i++) {
        if (!isResponder(responders[i]!)) throw malformed('initiator-granted: not a responder address');
        if (i > 0 && responders[i]! <= responders[i - 1]!) throw malformed('initiator-granted: addresses not ascending');
      }
      return { seq, type: 'granted-initiator', conn, responders };
    }
    case NodeMessageType.ResponderGranted:
      exactly(2);
      if (!isResponder(body[0]!)) throw malformed('responder-granted: not a responder address');
      if (body[1]! > 1) throw malformed('responder-granted: initiator flag not 0 or 1');
      return { seq, type: 'granted-responder', conn, address: body[0]!, initiatorConnected: body[1] === 1 };
    case NodeMessageType.PathFull:
      exactly(0);
      return { seq, type: 'path-full', conn };
    default:
      throw malformed(`unknown type ${type}`);
  }
}

/** Encode one message (the scripts build the same bytes); for tests and tools. */
export function encodeNodeMessage(m: NodeMessage): Uint8Array {
  let type: number;
  let body: Uint8Array;
  switch (m.type) {
    case 'relay': {
      body = new Uint8Array(20 + m.frame.length);
      body.set(new TextEncoder().encode(asNodeId(m.fromNode)), 0);
      new DataView(body.buffer).setUint32(16, m.fromConn);
      body.set(m.frame, 20);
      type = NodeMessageType.Relay;
      break;
    }
    case 'send-error':
      [type, body] = [NodeMessageType.SendError, m.id];
      break;
    case 'new-responder':
      [type, body] = [NodeMessageType.NewResponder, Uint8Array.of(m.id)];
      break;
    case 'new-initiator':
      [type, body] = [NodeMessageType.NewInitiator, new Uint8Array(0)];
      break;
    case 'disconnected':
      [type, body] = [NodeMessageType.Disconnected, Uint8Array.of(m.id)];
      break;
    case 'dropped':
      [type, body] = [NodeMessageType.Dropped, Uint8Array.of(m.code >> 8, m.code & 0xff)];
      break;
    case 'granted-initiator':
      [type, body] = [NodeMessageType.InitiatorGranted, Uint8Array.of(m.responders.length, ...m.responders)];
      break;
    case 'granted-responder':
      [type, body] = [NodeMessageType.ResponderGranted, Uint8Array.of(m.address, m.initiatorConnected ? 1 : 0)];
      break;
    case 'path-full':
      [type, body] = [NodeMessageType.PathFull, new Uint8Array(0)];
      break;
  }
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  const view = new DataView(out.buffer);
  out[0] = NODE_MESSAGE_VERSION;
  out[1] = type;
  view.setUint32(2, Math.floor(m.seq / 2 ** 32));
  view.setUint32(6, m.seq % 2 ** 32);
  view.setUint32(10, m.conn);
  out.set(body, HEADER_LENGTH);
  return out;
}

/**
 * The order check of one node's channel: messages are numbered 1, 2, 3, ... by the scripts that
 * publish them. A number at or below the last one is a replay (refused, nothing else changes); a
 * number above the next one means messages were lost (Redis pub/sub drops messages while a
 * subscriber is disconnected or over its output buffer): the node can no longer trust its view
 * and must give up its registration.
 */
export class SequenceCheck {
  private last = 0;

  /** Accept `seq` as the next message, or throw cluster.replay / cluster.gap. */
  accept(seq: number): void {
    if (seq <= this.last) throw new ClusterMessageError('cluster.replay', `message ${seq} after ${this.last}`);
    if (seq !== this.last + 1)
      throw new ClusterMessageError('cluster.gap', `message ${seq} after ${this.last}: ${seq - this.last - 1} lost`);
    this.last = seq;
  }

  get lastAccepted(): number {
    return this.last;
  }
}
