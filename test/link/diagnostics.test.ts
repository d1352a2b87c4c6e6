// Connection diagnostics (protocol/link/diagnostics.ts): the signaling check against our server
// (reachable; pinned key held or not), and the pure helpers that read candidates and paths.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair } from '../../crypto/index.ts';
import { checkSignaling, parseCandidate, pathKindOf, turnServersFor } from '../../protocol/link/diagnostics.ts';
import { TestServer, WS } from './harness.ts';

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

describe('signaling check', () => {
  it('reaches the server and confirms the pinned key it holds', async () => {
    const r = await checkSignaling({ url: server.url, serverKey: server.keys.publicKey, WebSocket: WS });
    expect(r).toMatchObject({ reachable: true, keyMatches: true, error: null });
    expect(r.ms).toBeGreaterThanOrEqual(0);
    expect(await checkSignaling({ url: server.url, WebSocket: WS })).toMatchObject({ reachable: true, keyMatches: null });
  });

  it('reports a server that does not hold the pinned key', async () => {
    const r = await checkSignaling({ url: server.url, serverKey: generateBoxKeyPair().publicKey, WebSocket: WS });
    expect(r).toMatchObject({ reachable: true, keyMatches: false, error: 'saltyrtc.server-key' });
  });

  it('reports an unreachable server', async () => {
    const r = await checkSignaling({ url: 'ws://127.0.0.1:1', WebSocket: WS, timeoutMs: 5000 });
    expect(r.reachable).toBe(false);
    expect(r.keyMatches).toBeNull();
  });
});

describe('helpers', () => {
  it('reads the type and address of candidate lines', () => {
    expect(parseCandidate('candidate:1 1 udp 1677729535 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0')).toEqual({
      type: 'srflx',
      address: '203.0.113.7',
    });
    expect(parseCandidate('a=candidate:2 1 udp 2122260223 abc.local 50000 typ host')).toEqual({ type: 'host', address: 'abc.local' });
    expect(parseCandidate('candidate:garbage')).toBeNull();
  });

  it('names the path of a selected pair: relay beats reflexive beats host', () => {
    expect(pathKindOf({ local: 'host', remote: 'host', rttMs: 1 })).toBe('host');
    expect(pathKindOf({ local: 'prflx', remote: 'host', rttMs: 1 })).toBe('reflexive');
    expect(pathKindOf({ local: 'srflx', remote: 'relay', rttMs: null })).toBe('relay');
    expect(pathKindOf({ local: null, remote: null, rttMs: null })).toBe('host');
  });

  it('splits TURN servers by transport', () => {
    const servers = [
      { urls: ['turn:t.example:3478?transport=udp', 'turn:t.example:3478?transport=tcp'], username: 'u', credential: 'c' },
      { urls: 'turn:u.example:3478' },
      { urls: 'turns:v.example:5349' },
      { urls: 'stun:s.example:3478' },
    ];
    expect(turnServersFor(servers, 'udp')).toEqual([
      { urls: ['turn:t.example:3478?transport=udp'], username: 'u', credential: 'c' },
      { urls: ['turn:u.example:3478'] },
    ]);
    expect(turnServersFor(servers, 'tcp')).toEqual([
      { urls: ['turn:t.example:3478?transport=tcp'], username: 'u', credential: 'c' },
      { urls: ['turns:v.example:5349'] },
    ]);
  });
});
