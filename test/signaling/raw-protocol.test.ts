/**
 * The server driven with hand-built frames over real sockets (checklist: the reference server's
 * tests/test_protocol.py). Every test awaits events (frames, closes, observer callbacks); none sleeps.
 */
import net from 'node:net';
import nacl from 'tweetnacl';
import { WebSocket, WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { behindProxy } from '../../signaling/server.ts';
import { boxKeyPair, startServer, type TestServer } from './harness.ts';
import { RawSocket, SUBPROTOCOL, SaltyTestClient, bin, concat, nonce, pack, parseNonce } from './raw-client.ts';

let srv: TestServer;
const extra: RawSocket[] = [];
afterEach(async () => {
  await srv.stop();
  await Promise.all(extra.splice(0).map((s) => s.close()));
});

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const initiator = (o: Partial<Parameters<typeof SaltyTestClient.connect>[1]> = {}) =>
  SaltyTestClient.connect(srv.url, { role: 'initiator', ...o });
const responder = (i: SaltyTestClient, o: Partial<Parameters<typeof SaltyTestClient.connect>[1]> = {}) =>
  SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: i.keys.publicKey, ...o });

async function refusedStatus(url: string, protocols?: string[]): Promise<number> {
  try {
    extra.push(await RawSocket.open(url, { protocols: protocols ?? [SUBPROTOCOL] }));
  } catch (e) {
    return (e as { status?: number }).status ?? -1;
  }
  return 101;
}

describe('upgrade', () => {
  it('refuses bad paths with HTTP 400', async () => {
    srv = await startServer();
    const key = hex(nacl.randomBytes(32));
    expect(await refusedStatus(`${srv.url}/${key.toUpperCase()}`)).toBe(400);
    expect(await refusedStatus(`${srv.url}/${key.slice(2)}`)).toBe(400);
    expect(await refusedStatus(`${srv.url}/${key}00`)).toBe(400);
    expect(await refusedStatus(`${srv.url}/${key}?x=1`)).toBe(400);
    expect(await refusedStatus(`${srv.url}/${key}/`)).toBe(400);
    expect(await refusedStatus(`${srv.url}/${'g'.repeat(64)}`)).toBe(400);
    expect(srv.observer.rejects).toEqual(['bad-path', 'bad-path', 'bad-path', 'bad-path', 'bad-path', 'bad-path']);
    expect(srv.signaling.connectionCount).toBe(0);
  });

  it('refuses a client that does not offer v1.saltyrtc.org', async () => {
    srv = await startServer();
    const url = `${srv.url}/${hex(nacl.randomBytes(32))}`;
    expect(await refusedStatus(url, [])).toBe(400);
    expect(await refusedStatus(url, ['v0.saltyrtc.org'])).toBe(400);
    expect(await refusedStatus(url, ['V1.SALTYRTC.ORG'])).toBe(400);
    expect(srv.observer.rejects).toEqual(['bad-subprotocol', 'bad-subprotocol', 'bad-subprotocol']);
  });

  it('echoes the subprotocol exactly when offered among others', async () => {
    srv = await startServer();
    const s = await RawSocket.open(`${srv.url}/${hex(nacl.randomBytes(32))}`, { protocols: ['chat', SUBPROTOCOL] });
    extra.push(s);
    expect(s.ws.protocol).toBe(SUBPROTOCOL);
    expect((await s.next()).length).toBeGreaterThan(24); // server-hello
  });

  it('leaves other upgrade paths to other listeners', async () => {
    srv = await startServer();
    // Another WebSocket service on the same HTTP server: our server must not answer its upgrades.
    const other = new WebSocketServer({ noServer: true });
    srv.http.on('upgrade', (req, socket, head) => {
      if (req.url === '/other') other.handleUpgrade(req, socket, head, (ws) => ws.send('other service'));
    });
    const ws = new WebSocket(`${srv.url}/other`);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d: Buffer) => resolve(d.toString()));
      ws.once('error', reject);
    });
    expect(first).toBe('other service');
    expect(srv.observer.rejects).toEqual([]);
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
    other.close();
  });
});

describe('server handshake', () => {
  it('initiator: server-hello, server-auth with responders [], signed_keys by the first key', async () => {
    srv = await startServer({ keys: [boxKeyPair(), boxKeyPair()] });
    const i = await initiator();
    expect(i.address).toBe(1);
    expect(i.serverSessionKey.length).toBe(32);
    expect(Object.keys(i.serverAuth).sort()).toEqual(['responders', 'signed_keys', 'type', 'your_cookie']);
    expect(Buffer.from(i.serverAuth.your_cookie as Buffer).equals(Buffer.from(i.cookie))).toBe(true);
    expect(i.serverAuth.responders).toEqual([]);
    expect(srv.observer.handshakes).toEqual(['initiator']);
  });

  it('signed_keys opens with the pinned key and holds session key || client key', async () => {
    srv = await startServer({ keys: [boxKeyPair(), boxKeyPair()] });
    const pinned = srv.keys[1]!;
    const keys = nacl.box.keyPair();
    const sock = await RawSocket.open(`${srv.url}/${hex(keys.publicKey)}`);
    const c = new SaltyTestClient(sock, keys, 'initiator');
    await c.readServerHello();
    c.sendToServer(pack(c.clientAuth({ yourKey: pinned.publicKey })), true);
    const frame = await sock.next();
    c.serverCsn++;
    const plain = nacl.box.open(frame.subarray(24), frame.subarray(0, 24), c.serverSessionKey, keys.secretKey);
    expect(plain).not.toBeNull();
    const auth = (await import('msgpack-lite')).decode(plain!) as { signed_keys: Buffer };
    const signed = nacl.box.open(new Uint8Array(auth.signed_keys), frame.subarray(0, 24), pinned.publicKey, keys.secretKey);
    expect(signed).not.toBeNull();
    expect(hex(signed!)).toBe(hex(concat(c.serverSessionKey, keys.publicKey)));
    // and not by the other key
    expect(nacl.box.open(new Uint8Array(auth.signed_keys), frame.subarray(0, 24), srv.keys[0]!.publicKey, keys.secretKey)).toBeNull();
    extra.push(sock);
  });

  it('responder alone: initiator_connected false and no responders field', async () => {
    srv = await startServer();
    const i = nacl.box.keyPair();
    const r = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: i.publicKey });
    expect(r.address).toBe(2);
    expect(r.serverAuth.initiator_connected).toBe(false);
    expect('responders' in r.serverAuth).toBe(false);
  });

  it('responder first, then initiator: new-initiator to the responder, responders [2] to the initiator', async () => {
    srv = await startServer();
    const ikeys = nacl.box.keyPair();
    const r = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: ikeys.publicKey });
    const i = await initiator({ keys: ikeys });
    expect(i.serverAuth.responders).toEqual([2]);
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'new-initiator' });
  });

  it('unknown pinned server key: close 3007', async () => {
    srv = await startServer();
    const keys = nacl.box.keyPair();
    const c = await initiator({ keys, stopAfterHello: true });
    c.sendToServer(pack(c.clientAuth({ yourKey: nacl.randomBytes(32) })), true);
    expect((await c.sock.closed).code).toBe(3007);
    expect(srv.observer.rejects).toContain('bad-auth');
  });

  it('unencrypted client-auth: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack(c.clientAuth({})), false);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('responder: unencrypted client-auth after client-hello: close 3001', async () => {
    srv = await startServer();
    const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32), stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello', key: bin(c.keys.publicKey) }), false);
    c.sendToServer(pack(c.clientAuth({})), false);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('wrong your_cookie: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack({ ...c.clientAuth({}), your_cookie: bin(nacl.randomBytes(16)) }), true);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('subprotocol list without v1.saltyrtc.org (downgrade): close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack(c.clientAuth({ subprotocols: ['v0.saltyrtc.org'] })), true);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('key as str instead of bin in client-hello: close 3001', async () => {
    srv = await startServer();
    const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32), stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello', key: hex(c.keys.publicKey) }), false);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('float ping_interval: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack({ ...c.clientAuth({}), ping_interval: 1.5 }), true);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('unknown first message type: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack({ type: 'meow-hello' }), false);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('client-hello without key: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello' }), false);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('source 0x00 after authentication: close 3001', async () => {
    srv = await startServer();
    const i = await initiator();
    i.sendToServer(pack({ type: 'drop-responder', id: 2 }), true, { source: 0 });
    expect((await i.sock.closed).code).toBe(3001);
  });

  it('unencrypted drop-responder after authentication: close 3001 (the encrypted one before is fine)', async () => {
    srv = await startServer();
    const i = await initiator();
    i.sendToServer(pack({ type: 'drop-responder', id: 2 }), true);
    i.sendToServer(pack({ type: 'drop-responder', id: 2 }), false);
    expect((await i.sock.closed).code).toBe(3001);
  });

  it('a client-auth repeated after authentication: close 3001', async () => {
    srv = await startServer();
    const c = await initiator();
    c.sendToServer(pack(c.clientAuth({})), true);
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('a responder sending anything to the server after authentication: close 3001', async () => {
    srv = await startServer();
    const r = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32) });
    r.sendToServer(pack({ type: 'drop-responder', id: 2 }), true);
    expect((await r.sock.closed).code).toBe(3001);
  });
});

describe('frame and nonce rules', () => {
  it('text frame: close 3001', async () => {
    srv = await startServer();
    const c = await initiator();
    c.sock.ws.send('hello');
    expect((await c.sock.closed).code).toBe(3001);
    expect(srv.observer.rejects).toContain('bad-message');
  });

  it('frame of 24 bytes or less: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sock.send(c.serverNonce());
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('cookie changed between messages: close 3001', async () => {
    srv = await startServer();
    const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32), stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello', key: bin(c.keys.publicKey) }), false);
    c.sendToServer(pack(c.clientAuth({})), true, { cookie: nacl.randomBytes(16) });
    expect((await c.sock.closed).code).toBe(3001);
  });

  it("client using the server's cookie: close 3001", async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack(c.clientAuth({})), true, { cookie: c.serverCookie });
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('repeated sequence number: close 3001', async () => {
    srv = await startServer();
    const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32), stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello', key: bin(c.keys.publicKey) }), false, { csn: 7 });
    c.sendToServer(pack(c.clientAuth({})), true, { csn: 7 });
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('skipped sequence number: close 3001', async () => {
    srv = await startServer();
    const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32), stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello', key: bin(c.keys.publicKey) }), false, { csn: 7 });
    c.sendToServer(pack(c.clientAuth({})), true, { csn: 9 });
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('first message with a non-zero overflow number: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack(c.clientAuth({})), true, { csn: 2 ** 32 });
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('sequence number wrapping into the overflow number is accepted', async () => {
    srv = await startServer();
    const c = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32), stopAfterHello: true });
    c.sendToServer(pack({ type: 'client-hello', key: bin(c.keys.publicKey) }), false, { csn: 2 ** 32 - 1 });
    c.sendToServer(pack(c.clientAuth({})), true, { csn: 2 ** 32 });
    await c.readServerAuth();
    expect(c.address).toBe(2);
  });

  it('source address not ours: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sendToServer(pack(c.clientAuth({})), true, { source: 1 });
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('relay before authentication: close 3001', async () => {
    srv = await startServer();
    const c = await initiator({ stopAfterHello: true });
    c.sock.send(concat(nonce({ cookie: c.cookie, source: 0, destination: 2, csn: 1 }), new Uint8Array(8)));
    expect((await c.sock.closed).code).toBe(3001);
  });

  it('responder relaying to a responder address: close 3001', async () => {
    srv = await startServer();
    const r = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32) });
    r.relayFrame(3, new Uint8Array(8));
    expect((await r.sock.closed).code).toBe(3001);
  });

  it('initiator relaying to itself: close 3001', async () => {
    srv = await startServer();
    const i = await initiator();
    i.relayFrame(1, new Uint8Array(8));
    expect((await i.sock.closed).code).toBe(3001);
  });

  it('oversized frame: close 1009', async () => {
    srv = await startServer({ limits: { maxPayload: 64 * 1024 } });
    const i = await initiator();
    const r = await responder(i);
    await i.nextServerMessage(); // new-responder
    const fits = r.relayFrame(1, new Uint8Array(64 * 1024 - 24));
    expect(hex(await i.nextFrame())).toBe(hex(fits));
    r.relayFrame(1, new Uint8Array(64 * 1024 - 23));
    expect((await r.sock.closed).code).toBe(1009);
  });
});

describe('relay', () => {
  it('announces the newcomer before relaying its frames, then relays verbatim and in order', async () => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    const sent: string[] = [];
    for (let n = 0; n < 50; n++) sent.push(hex(r.relayFrame(1, nacl.randomBytes(1 + n * 37))));
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    const got: string[] = [];
    for (let n = 0; n < 50; n++) got.push(hex(await i.nextFrame()));
    expect(got).toEqual(sent);
    const back = i.relayFrame(2, nacl.randomBytes(100));
    expect(hex(await r.nextFrame())).toBe(hex(back));
    expect(srv.observer.relayedFrames).toBe(51);
  });

  it('send-error carries source, destination, overflow and sequence of the unrelayable frame', async () => {
    srv = await startServer();
    const i = await initiator();
    const frame = i.relayFrame(0x05, nacl.randomBytes(20));
    const { msg } = await i.nextServerMessage();
    expect(msg.type).toBe('send-error');
    expect(hex(msg.id as Buffer)).toBe(hex(frame.subarray(16, 24)));
    expect(parseNonce(frame).destination).toBe(5);
  });

  it('responder to an absent initiator: send-error', async () => {
    srv = await startServer();
    const r = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: nacl.randomBytes(32) });
    const frame = r.relayFrame(1, nacl.randomBytes(20));
    const { msg } = await r.nextServerMessage();
    expect(msg).toEqual({ type: 'send-error', id: Buffer.from(frame.subarray(16, 24)) });
  });

  it('relay to a departed peer: disconnected, then send-error', async () => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    await i.nextServerMessage(); // new-responder
    await r.sock.close(1001);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 2 });
    const frame = i.relayFrame(2, nacl.randomBytes(10));
    const { msg } = await i.nextServerMessage();
    expect(msg).toEqual({ type: 'send-error', id: Buffer.from(frame.subarray(16, 24)) });
  });

  it('initiator leaving: every responder gets disconnected id 1', async () => {
    srv = await startServer();
    const i = await initiator();
    const r1 = await responder(i);
    const r2 = await responder(i);
    await i.sock.close(1001);
    expect((await r1.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 1 });
    expect((await r2.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 1 });
  });

  it('assigns the lowest free responder address', async () => {
    srv = await startServer();
    const i = await initiator();
    const rs = [await responder(i), await responder(i), await responder(i)];
    expect(rs.map((r) => r.address)).toEqual([2, 3, 4]);
    for (const id of [2, 3, 4]) expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id });
    await rs[1]!.sock.close(1001);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 3 });
    const again = await responder(i);
    expect(again.address).toBe(3);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 3 });
  });
});

describe('initiator changes and drop-responder', () => {
  it('a second initiator drops the first with 3004; responders get new-initiator, not disconnected', async () => {
    srv = await startServer();
    const keys = nacl.box.keyPair();
    const i1 = await initiator({ keys });
    const r = await responder(i1);
    const i2 = await initiator({ keys });
    expect((await i1.sock.closed).code).toBe(3004);
    expect(i2.serverAuth.responders).toEqual([2]);
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'new-initiator' });
    // the new initiator relays; the responder sees it after new-initiator, nothing in between
    const f = i2.relayFrame(2, nacl.randomBytes(5));
    expect(hex(await r.nextFrame())).toBe(hex(f));
  });

  it('drop-responder without reason closes the responder with 3004 and sends no disconnected', async () => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    await i.nextServerMessage();
    i.sendToServer(pack({ type: 'drop-responder', id: 2 }), true);
    expect((await r.sock.closed).code).toBe(3004);
    // The next server message to the initiator is the send-error for a frame to the dropped address.
    const f = i.relayFrame(2, nacl.randomBytes(5));
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'send-error', id: Buffer.from(f.subarray(16, 24)) });
  });

  it.each([3001, 3002, 3004, 3005])('drop-responder with reason %i closes the responder with it', async (reason) => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    i.sendToServer(pack({ type: 'drop-responder', id: 2, reason }), true);
    expect((await r.sock.closed).code).toBe(reason);
  });

  it.each([1000, 1001, 3000, 3003, 3006, 4000])('drop-responder with invalid reason %i closes the initiator with 3001', async (reason) => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    await i.nextServerMessage();
    i.sendToServer(pack({ type: 'drop-responder', id: 2, reason }), true);
    expect((await i.sock.closed).code).toBe(3001);
    expect((await r.nextServerMessage()).msg).toEqual({ type: 'disconnected', id: 1 });
  });

  it('drop-responder with id 1 (not a responder) closes the initiator with 3001', async () => {
    srv = await startServer();
    const i = await initiator();
    i.sendToServer(pack({ type: 'drop-responder', id: 1 }), true);
    expect((await i.sock.closed).code).toBe(3001);
  });

  it('drop-responder for an absent responder is ignored', async () => {
    srv = await startServer();
    const i = await initiator();
    i.sendToServer(pack({ type: 'drop-responder', id: 9 }), true);
    const r = await responder(i);
    expect((await i.nextServerMessage()).msg).toEqual({ type: 'new-responder', id: 2 });
    expect(r.address).toBe(2);
  });
});

describe('timeouts', () => {
  it('ping timeout: a client that asked for pings and does not answer is closed with 3008', async () => {
    srv = await startServer({ limits: { pingTimeoutMs: 50 } });
    const i = await initiator({ pingInterval: 1, autoPong: false });
    expect((await i.sock.closed).code).toBe(3008);
    expect(i.sock.pings).toBeGreaterThanOrEqual(1);
  });

  it('pings answered: the client stays and pings continue', async () => {
    srv = await startServer({ limits: { pingTimeoutMs: 50 } });
    const quiet = await initiator({ pingInterval: 0 });
    const i = await initiator({ pingInterval: 1 });
    await new Promise<void>((resolve) => i.sock.ws.once('ping', () => resolve()));
    expect(i.sock.ws.readyState).toBe(WebSocket.OPEN);
    // ping_interval 0 asked for no pings: by now (>= 1 s later) the other client has none
    expect(quiet.sock.pings).toBe(0);
    const r = await responder(i);
    expect(r.serverAuth.initiator_connected).toBe(true);
  });

  it('handshake timeout: close 3008', async () => {
    srv = await startServer({ limits: { handshakeTimeoutMs: 50 } });
    const c = await initiator({ stopAfterHello: true });
    expect((await c.sock.closed).code).toBe(3008);
    expect(srv.observer.rejects).toContain('handshake-timeout');
  });
});

describe('limits and paths', () => {
  it('path full: the 255th responder gets 3000', async () => {
    srv = await startServer({ limits: { maxConnectionsPerIp: 1000, newConnectionsPerSecondPerIp: 1000 } });
    const ikeys = nacl.box.keyPair();
    const rs: SaltyTestClient[] = [];
    for (let n = 0; n < 254; n++) rs.push(await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: ikeys.publicKey }));
    expect(rs.map((r) => r.address)).toEqual(Array.from({ length: 254 }, (_, k) => k + 2));
    const last = await SaltyTestClient.connect(srv.url, { role: 'responder', initiatorKey: ikeys.publicKey, stopAfterHello: true });
    last.sendToServer(pack({ type: 'client-hello', key: bin(last.keys.publicKey) }), false);
    last.sendToServer(pack(last.clientAuth({})), true);
    expect((await last.sock.closed).code).toBe(3000);
    expect(srv.observer.rejects).toContain('path-full');
    // the initiator still fits
    const i = await initiator({ keys: ikeys });
    expect((i.serverAuth.responders as number[]).length).toBe(254);
  }, 60_000);

  it('per-IP connection limit: HTTP 429', async () => {
    srv = await startServer({ limits: { maxConnectionsPerIp: 2 } });
    const url = `${srv.url}/${hex(nacl.randomBytes(32))}`;
    extra.push(await RawSocket.open(url), await RawSocket.open(url));
    expect(await refusedStatus(url)).toBe(429);
    expect(srv.observer.rejects).toEqual(['too-many-per-ip']);
  });

  it('an upgrade ws itself refuses (no Sec-WebSocket-Key) gives its per-IP slot back', async () => {
    srv = await startServer({ limits: { maxConnectionsPerIp: 1 } });
    const path = `/${hex(nacl.randomBytes(32))}`;
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(srv.port, '127.0.0.1', () => {
        sock.write(
          `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
        );
      });
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    extra.push(await RawSocket.open(`${srv.url}${path}`)); // the slot is free again
  });

  it('behind a trusted proxy, per-IP limits count the X-Forwarded-For client', async () => {
    srv = await startServer({ limits: { maxConnectionsPerIp: 1 }, clientAddress: behindProxy(['127.0.0.1']) });
    const url = `${srv.url}/${hex(nacl.randomBytes(32))}`;
    const via = (xff: string) => RawSocket.open(url, { headers: { 'X-Forwarded-For': xff } });
    extra.push(await via('198.51.100.7'), await via('203.0.113.9, 198.51.100.8'));
    // a client cannot dodge the limit by prepending addresses: only the proxy's entry counts
    await expect(via('10.0.0.1, 198.51.100.7')).rejects.toMatchObject({ status: 429 });
  });

  it('X-Forwarded-For from an untrusted peer is ignored', async () => {
    srv = await startServer({ limits: { maxConnectionsPerIp: 1 }, clientAddress: behindProxy(['192.0.2.1']) });
    const url = `${srv.url}/${hex(nacl.randomBytes(32))}`;
    extra.push(await RawSocket.open(url, { headers: { 'X-Forwarded-For': '198.51.100.7' } }));
    await expect(RawSocket.open(url, { headers: { 'X-Forwarded-For': '198.51.100.8' } })).rejects.toMatchObject({ status: 429 });
  });

  it('total connection limit: HTTP 503', async () => {
    srv = await startServer({ limits: { maxConnections: 2 } });
    const url = `${srv.url}/${hex(nacl.randomBytes(32))}`;
    extra.push(await RawSocket.open(url), await RawSocket.open(url));
    expect(await refusedStatus(url)).toBe(503);
    expect(srv.observer.rejects).toEqual(['too-many-connections']);
  });

  it('new connections per second per IP: HTTP 429 until the bucket refills', async () => {
    let t = 1_000_000;
    srv = await startServer({ limits: { newConnectionsPerSecondPerIp: 2 }, now: () => t });
    const url = `${srv.url}/${hex(nacl.randomBytes(32))}`;
    extra.push(await RawSocket.open(url), await RawSocket.open(url));
    expect(await refusedStatus(url)).toBe(429);
    expect(srv.observer.rejects).toEqual(['rate-limited']);
    t += 500; // one token back
    expect(await refusedStatus(url)).toBe(101);
  });

  it('empty paths are cleaned up', async () => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    expect(srv.signaling.pathCount).toBe(1);
    const pathClosed = new Promise<void>((resolve) => srv.observer.once('path-closed', resolve));
    await Promise.all([i.sock.close(), r.sock.close()]);
    await pathClosed;
    expect(srv.signaling.pathCount).toBe(0);
    expect(srv.signaling.connectionCount).toBe(0);
  });

  it('close() says 1001 to every client and stops accepting', async () => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    const [first, second] = [srv.signaling.close(), srv.signaling.close()];
    await Promise.all([first, second]); // both calls settle
    expect(await refusedStatus(`${srv.url}/${hex(i.keys.publicKey)}`)).not.toBe(101);
    expect((await i.sock.closed).code).toBe(1001);
    expect((await r.sock.closed).code).toBe(1001);
    expect(srv.signaling.connectionCount).toBe(0);
    expect(srv.signaling.pathCount).toBe(0);
  });

  it('logs hold no keys, paths, payloads or addresses', async () => {
    srv = await startServer();
    const i = await initiator();
    const r = await responder(i);
    const payload = r.relayFrame(1, nacl.randomBytes(32));
    await i.nextServerMessage();
    await i.nextFrame();
    i.sendToServer(pack({ type: 'drop-responder', id: 2, reason: 3003 }), true); // refused: logs a reason
    await i.sock.closed;
    const text = JSON.stringify(srv.logs);
    for (const secret of [i.keys.publicKey, r.keys.publicKey, srv.keys[0]!.publicKey, payload.subarray(24)]) {
      expect(text).not.toContain(hex(secret));
      expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    }
    expect(text).not.toContain('127.0.0.1');
    expect(srv.logs.some((l) => l.event === 'refused')).toBe(true);
  });
});
