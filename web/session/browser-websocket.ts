import type { WebSocketCtor } from '../../protocol/saltyrtc/client-driver.ts';

/**
 * The browser's WebSocket as the SaltyRTC driver's constructor type: the driver's WebSocketLike
 * types send() over Uint8Array<ArrayBufferLike>, the DOM's is narrower. (Close codes a browser may
 * not send are mapped in the driver itself.)
 */
export function browserWebSocket(): WebSocketCtor {
  return WebSocket as unknown as WebSocketCtor;
}
