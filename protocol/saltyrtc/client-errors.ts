/** Typed errors of the SaltyRTC client (codes listed in docs/PROTOCOL.md section 7). */
import { ZeroRoomError } from '../errors.ts';

export type ClientErrorCode =
  | 'saltyrtc.protocol' // malformed or out-of-order message (close 3001)
  | 'saltyrtc.server-key' // pinned server key: signed_keys missing or wrong (close 3007 semantics)
  | 'saltyrtc.refused' // close 3005 (initiator could not decrypt our token/key), maybe forged by the server: never final
  | 'saltyrtc.dropped' // close 3004 (dropped by the initiator, or so the server says): never final
  | 'saltyrtc.initiator-refused' // the authenticated initiator refused our token or key (PROTOCOL.md 4.1): final
  | 'saltyrtc.no-task' // no shared task (3006)
  | 'saltyrtc.path-full' // 3000
  | 'saltyrtc.subprotocol' // 1002
  | 'saltyrtc.server' // internal server error (3002) or other unexpected close
  | 'saltyrtc.timeout' // 3008 or a local timeout
  | 'saltyrtc.peer-closed'; // the other client sent 'close' or went away

export class SaltyClientError extends ZeroRoomError {
  constructor(
    code: ClientErrorCode,
    message: string,
    /** WebSocket or 'close' code that caused it, when there is one. */
    readonly closeCode?: number,
  ) {
    super(code, message);
  }
}
