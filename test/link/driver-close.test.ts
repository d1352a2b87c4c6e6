import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { generateBoxKeyPair, initCrypto, systemRandom } from '../../crypto/index.ts';
import { SignalingClient, type WebSocketCtor } from '../../protocol/saltyrtc/client-driver.ts';
import type { SaltyClientError } from '../../protocol/saltyrtc/client-errors.ts';
import { attachSignalingServer, type SignalingServer } from '../../signaling/server.ts';

/**
 * `ws` with the browser's rule for WebSocket.close(): a page may send only 1000 or 3000-4999
 * (WHATWG WebSockets, "close()" step 1); anything else throws InvalidAccessError.
 */
const sentCodes: number[] = [];
class BrowserRuleWebSocket extends WebSocket {
  override close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) {
      throw new DOMException(`close code ${code} is not allowed`, 'InvalidAccessError');
    }
    if (code !== undefined) sentCodes.push(code);
    super.close(code, reason);
  }
}

let http: Server;
let signaling: SignalingServer;
let url: string;

beforeAll(async () => {
  await initCrypto();
  http = createServer();
  signaling = attachSignalingServer({ server: http, permanentKeys: [generateBoxKeyPair()] });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await signaling.close();
  await new Promise<void>((resolve) => http.close(() => resolve()));
});

describe('SignalingClient close codes', () => {
  it('leaves the server with a code a browser may send (1001 goes out as 1000)', async () => {
    const permanent = generateBoxKeyPair();
    const client = new SignalingClient({
      url,
      WebSocket: BrowserRuleWebSocket as unknown as WebSocketCtor,
      pathKey: permanent.publicKey,
      context: { role: 'initiator', permanent, random: systemRandom, taskData: { exclude: [], handover: true } },
    });
    const ready = new Promise<void>((resolve) => client.on('server-ready', () => resolve()));
    const closed = new Promise<SaltyClientError>((resolve) => client.on('closed', resolve));
    client.start();
    await ready;
    expect(() => client.close()).not.toThrow();
    const error = await closed;
    expect(sentCodes[0]).toBe(1000); // later entries are ws echoing the server's close frame
    expect(error.code).toMatch(/^saltyrtc\./);
  });
});
