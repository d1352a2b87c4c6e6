import type { WebSocketCtor } from '../../protocol/saltyrtc/client-driver.ts';

/**
 * The browser's WebSocket, except that close(1001) becomes close(1000). The SaltyRTC client
 * (protocol/saltyrtc/client-driver.ts) leaves the server with 1001 "Going Away", which Node's `ws`
 * allows but browsers reject with InvalidAccessError (only 1000 and 3000-4999 may be sent), and the
 * exception would break the reconnect path. To the server both mean "client left".
 */
export function browserWebSocket(): WebSocketCtor {
  class ClosingWebSocket extends WebSocket {
    override close(code?: number, reason?: string): void {
      super.close(code === 1001 ? 1000 : code, reason);
    }
  }
  // The driver's WebSocketLike types send() over Uint8Array<ArrayBufferLike>; the DOM's is narrower.
  return ClosingWebSocket as unknown as WebSocketCtor;
}
