// Who can stop a member (docs/PROTOCOL.md 4.1, 4.6): close codes that come through the signaling
// server are never final; only the owner's authenticated refusal and the member's own invite-expiry
// clock are. Real server on 127.0.0.1, a forging proxy in front of it, real WebRTC (node-datachannel).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { generateBoxKeyPair, systemRandom, toHex, type BoxKeyPair } from '../../crypto/index.ts';
import { FATAL_JOIN_CODES, isFinalJoinError, joinRoom, type JoinOptions } from '../../protocol/link/member.ts';
import { startOwner, type OwnerHandle, type PeerLink } from '../../protocol/link/peer-link.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { collect, TestServer, untilState, wrtc, WS } from './harness.ts';

/**
 * A man in the middle between members and the server (or a hostile server): every new connection
 * either gets the next forged close code at once (after a normal WebSocket upgrade), or is piped
 * to the real server unchanged.
 */
class ForgingProxy {
  private readonly http = http.createServer((_req, res) => res.writeHead(404).end());
  private readonly wss = new WebSocketServer({ server: this.http, handleProtocols: (p) => [...p][0] ?? false });
  private readonly sockets = new Set<WebSocket>();
  readonly forge: number[] = [];
  connections = 0;
  forged = 0;

  constructor(private readonly target: () => string) {
    this.wss.on('connection', (client, req) => {
      this.connections++;
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      const code = this.forge.shift();
      if (code !== undefined) {
        this.forged++;
        // ws refuses to send 1006 and 1005 itself: a dropped TCP connection is how a server "sends" them.
        if (code === 1006) client.terminate();
        else client.close(code);
        return;
      }
      const upstream = new WebSocket(`${this.target()}${req.url ?? '/'}`, client.protocol);
      this.sockets.add(upstream);
      const pending: Buffer[] = [];
      client.on('message', (d: Buffer) => (upstream.readyState === WebSocket.OPEN ? upstream.send(d) : pending.push(d)));
      upstream.on('open', () => {
        for (const d of pending.splice(0)) upstream.send(d);
      });
      upstream.on('message', (d: Buffer) => client.readyState === WebSocket.OPEN && client.send(d));
      const validClose = (c: number): number => (c === 1000 || (c >= 3000 && c <= 4999) ? c : 1000);
      upstream.on('close', (c) => client.readyState === WebSocket.OPEN && client.close(validClose(c)));
      client.on('close', (c) => upstream.readyState === WebSocket.OPEN && upstream.close(validClose(c)));
      upstream.on('error', () => client.terminate());
      client.on('error', () => upstream.terminate());
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', () => resolve()));
    return this;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

let server: TestServer;
let proxy: ForgingProxy;
const owners: OwnerHandle[] = [];
const members: PeerLink[] = [];

beforeAll(async () => {
  server = await new TestServer().start();
  proxy = await new ForgingProxy(() => server.url).start();
});

afterAll(async () => {
  for (const m of members) m.close();
  for (const o of owners) o.close();
  await proxy.stop();
  await server.stop();
  await releaseNodeWrtc();
});

interface Room {
  readonly ownerKeys: BoxKeyPair;
  readonly owner: OwnerHandle;
  readonly tokens: Set<string>;
  readonly links: PeerLink[];
  /** Resolves with the owner's link of the n-th member (1-based) once the owner has it. */
  nthLink(n: number): Promise<PeerLink>;
  newToken(): Uint8Array;
}

/** The owner talks to the real server directly; members go through the proxy. */
function openRoom(): Promise<Room> {
  const ownerKeys = generateBoxKeyPair();
  const tokens = new Set<string>();
  const links: PeerLink[] = [];
  const waiting: (() => void)[] = [];
  return new Promise((resolve) => {
    const owner = startOwner({
      signalingUrl: server.url,
      serverKey: server.keys.publicKey,
      permanentKeys: ownerKeys,
      iceServers: [],
      wrtc,
      WebSocket: WS,
      pendingTokens: () => [...tokens].map((t) => Buffer.from(t, 'hex')),
      acceptToken: (t) => tokens.delete(toHex(t)), // single use
      onLink: (l) => {
        links.push(l);
        for (const w of waiting.splice(0)) w();
      },
      onSignalingState: (ready) => {
        if (ready) resolve(room);
      },
    });
    owners.push(owner);
    const room: Room = {
      ownerKeys,
      owner,
      tokens,
      links,
      // The owner's side opens a moment after the member's (its onLink follows a getStats).
      nthLink: (n) =>
        new Promise((done) => {
          const check = (): void => {
            const l = links[n - 1];
            if (l !== undefined) done(l);
            else waiting.push(check);
          };
          check();
        }),
      newToken: () => {
        const t = systemRandom(32);
        tokens.add(toHex(t));
        return t;
      },
    };
  });
}

function options(room: Room, token: Uint8Array | undefined, keys: BoxKeyPair, extra: Partial<JoinOptions> = {}): JoinOptions {
  return {
    signalingUrl: proxy.url,
    serverKey: server.keys.publicKey,
    ownerKey: room.ownerKeys.publicKey,
    ...(token !== undefined ? { token } : {}),
    permanentKeys: keys,
    iceServers: [],
    wrtc,
    WebSocket: WS,
    ...extra,
  };
}

/** What every application does with joinRoom (web member runtime, `zeroroom join`): call it again until it resolves or the error is final. */
async function joinLikeAnApp(opts: JoinOptions, maxCalls = 5): Promise<PeerLink> {
  let last: unknown = null;
  for (let i = 0; i < maxCalls; i++) {
    try {
      const link = await joinRoom(opts);
      members.push(link);
      return link;
    } catch (e) {
      if (isFinalJoinError(e)) throw e;
      last = e;
    }
  }
  throw new Error(`still not joined after ${maxCalls} calls`, { cause: last });
}

describe('close codes from the signaling server are never final for a member', () => {
  it('FATAL_JOIN_CODES holds only the authenticated refusal and the local invite expiry', () => {
    expect([...FATAL_JOIN_CODES].sort()).toEqual(['link.invite-expired', 'saltyrtc.initiator-refused']);
    for (const code of [
      'saltyrtc.refused',
      'saltyrtc.dropped',
      'saltyrtc.path-full',
      'saltyrtc.no-task',
      'saltyrtc.server-key',
      'saltyrtc.server',
      'saltyrtc.peer-closed',
    ]) {
      expect(isFinalJoinError({ code }), code).toBe(false);
    }
    expect(isFinalJoinError({ code: 'saltyrtc.initiator-refused' })).toBe(true);
    expect(isFinalJoinError(null)).toBe(false);
    expect(isFinalJoinError(new Error('x'))).toBe(false);
  });

  it('a joiner gets forged 3004, 3000, 3005, 3006, 1001 and 1006 and still joins', async () => {
    const room = await openRoom();
    const before = proxy.connections;
    proxy.forge.push(3004, 3000, 3005, 3006, 1001, 1006);
    const link = await joinLikeAnApp(options(room, room.newToken(), generateBoxKeyPair()));
    expect(['direct', 'relayed']).toContain(link.state);
    expect(proxy.forge).toEqual([]); // every forged close was delivered to the joiner
    expect(proxy.connections - before).toBeGreaterThanOrEqual(7);
    await room.nthLink(1);
    expect(room.links).toHaveLength(1);
  });

  it('a member whose link dropped gets forged 3004, 3005 and 3000 while reconnecting and keeps its link', async () => {
    const room = await openRoom();
    const member = await joinLikeAnApp(options(room, room.newToken(), generateBoxKeyPair()));
    const ownerLink = await room.nthLink(1);
    let closed = false;
    member.on('close', () => (closed = true));
    proxy.forge.push(3004, 3005, 3000);
    const offline = untilState(member, ['offline']);
    (ownerLink as unknown as { session: { end(e: Error | null): void } | null }).session?.end(null);
    await offline;
    const got = collect(member, 2, 60_000);
    ownerLink.send(Uint8Array.of(1));
    ownerLink.send(Uint8Array.of(2));
    await untilState(member, ['direct', 'relayed'], 60_000);
    expect((await got).map((m) => m[0])).toEqual([1, 2]);
    expect(proxy.forge).toEqual([]);
    expect(closed).toBe(false);
  });
});

describe('only the authenticated owner can refuse', () => {
  it('a used invite gets the authenticated refusal: final after one attempt, no link at the owner', async () => {
    const room = await openRoom();
    const token = room.newToken();
    await joinLikeAnApp(options(room, token, generateBoxKeyPair()));
    await room.nthLink(1);
    const intruder = generateBoxKeyPair();
    const before = proxy.connections;
    await expect(joinLikeAnApp(options(room, token, intruder))).rejects.toMatchObject({ code: 'saltyrtc.initiator-refused' });
    expect(proxy.connections - before).toBe(1);
    expect(room.owner.links.has(toHex(intruder.publicKey))).toBe(false);
    expect(room.links).toHaveLength(1);
  });

  it('an unknown token is a 3005 the joiner retries until its own clock passes the invite expiry', async () => {
    const room = await openRoom();
    const unknown = systemRandom(32);
    // Before expiry: not final (joinRoom gives up after its 4 attempts with the non-final 3005).
    const before = proxy.connections;
    await expect(joinRoom(options(room, unknown, generateBoxKeyPair(), { inviteExpiresAt: 2000, now: () => 1000 }))).rejects.toMatchObject({
      code: 'saltyrtc.refused',
    });
    expect(proxy.connections - before).toBe(4);
    // After expiry by the joiner's clock: final, after one attempt.
    const after = proxy.connections;
    await expect(
      joinLikeAnApp(options(room, unknown, generateBoxKeyPair(), { inviteExpiresAt: 2000, now: () => 3000 })),
    ).rejects.toMatchObject({ code: 'link.invite-expired' });
    expect(proxy.connections - after).toBe(1);
  });

  it('an admitted member still holding its spent token gets in (trusted key), even when the owner forgot the token', async () => {
    const room = await openRoom();
    const keys = generateBoxKeyPair();
    const token = room.newToken();
    const first = await joinLikeAnApp(options(room, token, keys));
    first.close();
    room.owner.close();
    // The owner restarts its link layer: it forgot which tokens it saw, but trusts the member's key.
    const restarted = await new Promise<OwnerHandle>((resolve) => {
      const o = startOwner({
        signalingUrl: server.url,
        serverKey: server.keys.publicKey,
        permanentKeys: room.ownerKeys,
        iceServers: [],
        wrtc,
        WebSocket: WS,
        pendingTokens: () => [],
        acceptToken: () => false,
        trustedKeys: () => [keys.publicKey],
        onLink: () => undefined,
        onSignalingState: (ready) => {
          if (ready) resolve(o);
        },
      });
      owners.push(o);
    });
    // The token path gets 3005 (unknown token); the next attempt uses the trusted-key path.
    const again = await joinLikeAnApp(options(room, token, keys));
    expect(['direct', 'relayed']).toContain(again.state);
    expect(restarted.links.has(toHex(keys.publicKey))).toBe(true);
  });
});
