// Peer links end to end: our signaling server on 127.0.0.1, real WebRTC (node-datachannel).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, systemRandom, toHex, type BoxKeyPair, type BoxPublicKey } from '../../crypto/index.ts';
import { startOwner, joinRoom, type OwnerHandle, type PeerLink } from '../../protocol/link/peer-link.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { SignalingClient } from '../../protocol/saltyrtc/client-driver.ts';
import { collect, nextEvent, pattern, TestServer, until, untilState, wrtc, WS } from './harness.ts';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let server: TestServer;
const owners: OwnerHandle[] = [];
const members: PeerLink[] = [];

beforeAll(async () => {
  server = await new TestServer().start();
});

afterAll(async () => {
  for (const m of members) m.close();
  for (const o of owners) o.close();
  await server.stop();
  await releaseNodeWrtc();
});

interface Room {
  owner: OwnerHandle;
  ownerKeys: BoxKeyPair;
  tokens: Set<string>;
  links: PeerLink[];
  nextLink: () => Promise<PeerLink>;
  newToken: () => Uint8Array;
}

function openRoom(ownerKeys: BoxKeyPair = generateBoxKeyPair(), initialTokens: Uint8Array[] = []): Promise<Room> {
  const tokens = new Set<string>(initialTokens.map((t) => toHex(t)));
  const links: PeerLink[] = [];
  const waiters: ((l: PeerLink) => void)[] = [];
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
        waiters.shift()?.(l);
      },
      onSignalingState: (ready) => {
        if (ready) resolve(room);
      },
    });
    owners.push(owner);
    const room: Room = {
      owner,
      ownerKeys,
      tokens,
      links,
      nextLink: () => new Promise((r) => waiters.push(r)),
      newToken: () => {
        const t = systemRandom(32);
        tokens.add(toHex(t));
        return t;
      },
    };
  });
}

function join(
  room: Room | { ownerKeys: BoxKeyPair },
  token: Uint8Array | undefined,
  keys: BoxKeyPair = generateBoxKeyPair(),
  onServerReady?: (ownerConnected: boolean) => void,
): Promise<PeerLink> {
  return joinRoom({
    signalingUrl: server.url,
    serverKey: server.keys.publicKey,
    ownerKey: room.ownerKeys.publicKey,
    ...(onServerReady !== undefined ? { onServerReady } : {}),
    ...(token !== undefined ? { token } : {}),
    permanentKeys: keys,
    iceServers: [],
    wrtc,
    WebSocket: WS,
  }).then((l) => {
    members.push(l);
    return l;
  });
}

const ownerSide = (room: Room, key: BoxPublicKey): PeerLink => {
  const l = room.owner.links.get(toHex(key));
  if (l === undefined) throw new Error('owner has no link for that key');
  return l;
};

describe('owner and members', () => {
  it('owner + 3 members connect concurrently and exchange messages both ways, including 1 MiB (the link maximum)', async () => {
    const room = await openRoom();
    const keys = [generateBoxKeyPair(), generateBoxKeyPair(), generateBoxKeyPair()];
    const tokens = keys.map(() => room.newToken());
    const ownerLinks = Promise.all(keys.map(() => room.nextLink()));
    const memberLinks = await Promise.all(keys.map((k, i) => join(room, tokens[i], k)));
    await ownerLinks;
    expect(room.tokens.size).toBe(0);
    for (const [i, m] of memberLinks.entries()) {
      expect(m.peerKey).toEqual(room.ownerKeys.publicKey);
      expect(['direct', 'relayed']).toContain(m.state);
      expect(ownerSide(room, keys[i]!.publicKey).peerKey).toEqual(keys[i]!.publicKey);
    }
    // Members leave the signaling server after handover: only the owner stays.
    await until(() => server.connectionCount === 1, 'members closed their signaling connections');

    const big = (seed: number): Uint8Array => pattern(1024 * 1024, seed);
    await Promise.all(
      memberLinks.map(async (m, i) => {
        const o = ownerSide(room, keys[i]!.publicKey);
        const atOwner = collect(o, 2, 60_000);
        const atMember = collect(m, 2, 60_000);
        m.send(new TextEncoder().encode(`hello from ${i}`));
        m.send(big(100 + i));
        o.send(big(200 + i));
        o.send(new TextEncoder().encode(`welcome ${i}`));
        const [fromMember, fromOwner] = await Promise.all([atOwner, atMember]);
        expect(new TextDecoder().decode(fromMember[0])).toBe(`hello from ${i}`);
        expect(sha(fromMember[1]!)).toBe(sha(big(100 + i)));
        expect(sha(fromOwner[0]!)).toBe(sha(big(200 + i)));
        expect(new TextDecoder().decode(fromOwner[1])).toBe(`welcome ${i}`);
      }),
    );
  });

  it('a wrong token and a reused token are refused; the joiner learns nothing', async () => {
    const room = await openRoom();
    const good = room.newToken();
    const first = room.nextLink();
    await join(room, good);
    await first;
    const intruder = generateBoxKeyPair();
    // The owner saw this token pending: its reuse gets the owner's authenticated refusal (4.1).
    await expect(join(room, good, intruder)).rejects.toMatchObject({ code: 'saltyrtc.initiator-refused' });
    await expect(join(room, systemRandom(32), intruder)).rejects.toMatchObject({ code: 'saltyrtc.refused' });
    expect(room.owner.links.has(toHex(intruder.publicKey))).toBe(false);
    expect(room.links).toHaveLength(1);
  });

  it('a third client on the path without a token reads nothing', async () => {
    const room = await openRoom();
    const t = room.newToken();
    const ol = room.nextLink();
    const member = await join(room, t);
    const ownerLink = await ol;
    // A raw SaltyRTC responder with an untrusted key on the owner's path: it may connect to the
    // server but never gets a peer message and is dropped with 3005.
    const seen: unknown[] = [];
    const eavesdropper = new SignalingClient({
      url: server.url,
      WebSocket: WS,
      pathKey: room.ownerKeys.publicKey,
      context: {
        role: 'responder',
        permanent: generateBoxKeyPair(),
        random: systemRandom,
        taskData: { exclude: [], handover: true },
        initiatorKey: room.ownerKeys.publicKey,
      },
    });
    eavesdropper.on('peer-message', (_p, m) => seen.push(m));
    eavesdropper.on('peer-authenticated', (...a) => seen.push(a));
    const closed = new Promise<{ code: string }>((r) => eavesdropper.on('closed', (e) => r(e)));
    eavesdropper.start();
    const got = collect(member, 1);
    ownerLink.send(new TextEncoder().encode('secret'));
    expect(new TextDecoder().decode((await got)[0])).toBe('secret');
    expect((await closed).code).toBe('saltyrtc.refused');
    expect(seen).toEqual([]);
  });

  it('keeps messages that arrive before anyone listens and hands them, in order, to the first listener', async () => {
    // The web app announces a link only after getStats and a member's joinRoom resolves after the
    // open, while the other side may send at once: such messages were acked and then lost.
    const room = await openRoom();
    const keys = generateBoxKeyPair();
    const token = room.newToken();
    const ownerLink = room.nextLink();
    const m = await join(room, token, keys);
    m.send(new TextEncoder().encode('first'));
    m.send(new TextEncoder().encode('second'));
    const o = await ownerLink;
    // No event says "arrived with no listener": poll the link's private queue of such messages.
    const early = (): number => (o as unknown as { early: Uint8Array[] | null }).early?.length ?? 0;
    await until(() => early() === 2, 'both messages arrived at the owner before it listened');
    const got = await collect(o, 2);
    expect(got.map((b) => new TextDecoder().decode(b))).toEqual(['first', 'second']);
    o.send(new TextEncoder().encode('later'));
    expect(new TextDecoder().decode(await nextEvent<Uint8Array>(m, 'message'))).toBe('later');
  });
});

describe('acknowledgements', () => {
  it("send returns a ticket per message and 'acked' reports when the peer's link layer received it", async () => {
    const room = await openRoom();
    const keys = generateBoxKeyPair();
    const ownerLink = room.nextLink();
    const m = await join(room, room.newToken(), keys);
    const acked: number[] = [];
    m.on('acked', (t) => acked.push(t));
    const allAcked = new Promise<void>((resolve) => {
      const off = m.on('acked', (t) => {
        if (t >= 3) {
          off();
          resolve();
        }
      });
    });
    const tickets = ['one', 'two', 'three'].map((t) => m.send(new TextEncoder().encode(t)));
    expect(tickets).toEqual([1, 2, 3]);
    const o = await ownerLink;
    const got = await collect(o, 3);
    expect(got.map((b) => new TextDecoder().decode(b))).toEqual(['one', 'two', 'three']);
    await allAcked;
    // Increasing, never beyond what was sent.
    expect(acked).toEqual([...acked].sort((a, b) => a - b));
    expect(acked.at(-1)).toBe(3);
    // The owner's side numbers its own messages independently.
    expect(o.send(new TextEncoder().encode('back'))).toBe(1);
  });

  it('onServerReady tells a waiting member whether the owner is on the path', async () => {
    const ownerKeys = generateBoxKeyPair();
    const token = systemRandom(32);
    const seen: boolean[] = [];
    const joined = join({ ownerKeys }, token, generateBoxKeyPair(), (present) => seen.push(present));
    await until(() => seen.length === 1, 'the member reached the signaling server');
    expect(seen).toEqual([false]);
    // The owner comes online: the waiting member's handshake completes on the same connection.
    const room = await openRoom(ownerKeys, [token]);
    const m = await joined;
    expect(['direct', 'relayed']).toContain(m.state);
    expect(room.tokens.size).toBe(0);
    expect(seen).toEqual([false]);
    // A later connection (the member's reconnect, owner present) reports true.
    const again: boolean[] = [];
    const second = await join(room, room.newToken(), generateBoxKeyPair(), (present) => again.push(present));
    expect(again).toEqual([true]);
    second.close();
  });
});

describe('reconnect', () => {
  it('survives a killed and restarted signaling server, then re-forms after the data channel closes', async () => {
    const room = await openRoom();
    const keys = generateBoxKeyPair();
    const ol = room.nextLink();
    const member = await join(room, room.newToken(), keys);
    const ownerLink = await ol;

    const port = server.port;
    const down = new Promise<void>((r) => {
      const off = setInterval(() => {
        if (!room.owner.signalingReady) {
          clearInterval(off);
          r();
        }
      }, 10);
    });
    await server.stop();
    await down;
    // Established data channels keep working without the server.
    const a = collect(ownerLink, 1);
    member.send(Uint8Array.of(1));
    expect([...(await a)[0]!]).toEqual([1]);
    const b = collect(member, 1);
    ownerLink.send(Uint8Array.of(2));
    expect([...(await b)[0]!]).toEqual([2]);

    // Server back on the same port; the owner reconnects by itself.
    server = await new TestServer(server.keys).start(port);
    await until(() => room.owner.signalingReady, 'owner back on the signaling server', 15_000);

    // Close the data channel on the member side: both sides go offline, the member reconnects
    // (trusted-key path, no invite) and messages queued meanwhile arrive exactly once.
    const offline = untilState(ownerLink, ['offline']);
    const session = (member as unknown as { session: { end(e: Error | null): void } | null }).session;
    session?.end(null);
    await offline;
    const queued = Array.from({ length: 20 }, (_, i) => Uint8Array.of(i, 42));
    const atOwner = collect(ownerLink, 20);
    const atMember = collect(member, 1);
    for (const q of queued) member.send(q);
    ownerLink.send(Uint8Array.of(9, 9));
    await untilState(member, ['direct', 'relayed'], 20_000);
    await untilState(ownerLink, ['direct', 'relayed'], 20_000);
    expect((await atOwner).map((m) => [...m])).toEqual(queued.map((q) => [...q]));
    expect([...(await atMember)[0]!]).toEqual([9, 9]);
    expect(room.links).toHaveLength(1); // the same link object, recognised by key
  });

  it('re-forms after the data channel is closed on the owner side', async () => {
    const room = await openRoom();
    const ol = room.nextLink();
    const member = await join(room, room.newToken());
    const ownerLink = await ol;
    const memberOffline = untilState(member, ['offline']);
    const session = (ownerLink as unknown as { session: { end(e: Error | null): void } | null }).session;
    session?.end(null);
    await memberOffline;
    const atMember = collect(member, 3);
    for (let i = 0; i < 3; i++) ownerLink.send(Uint8Array.of(i)); // queued while offline
    await untilState(member, ['direct', 'relayed'], 20_000);
    expect((await atMember).map((m) => m[0])).toEqual([0, 1, 2]);
    expect(room.links).toHaveLength(1);
  });
});
