// Replayed, reordered and tampered frames injected into a real data channel are refused with a
// typed error, never delivered, and the link re-forms (new session) afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, systemRandom, toHex, type SharedKey } from '../../crypto/index.ts';
import { sealFrame, type SendState } from '../../protocol/link/frame.ts';
import { encodeInner } from '../../protocol/link/reliable.ts';
import { joinRoom, startOwner, type OwnerHandle, type PeerLink } from '../../protocol/link/peer-link.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { collect, nextEvent, TestServer, untilState, wrtc, WS } from './harness.ts';

/** The internals of a live session the test reaches into to forge frames. */
interface SessionInternals {
  /** The session's peer connection (simple-peer-adapter.ts): raw frames go out here. */
  peer: { send(b: Uint8Array): void };
  key: SharedKey;
  sendState: SendState;
}
const internals = (link: PeerLink): SessionInternals => {
  const s = (
    link as unknown as { session: { transport: SessionInternals['peer']; frames: { key: SharedKey; sendState: SendState } } | null }
  ).session;
  if (s === null) throw new Error('no live session');
  return {
    peer: s.transport,
    key: s.frames.key,
    get sendState() {
      return s.frames.sendState;
    },
  };
};

let server: TestServer;
let owner: OwnerHandle;
let member: PeerLink;
let ownerLink: PeerLink;

beforeAll(async () => {
  server = await new TestServer().start();
  const ownerKeys = generateBoxKeyPair();
  const token = systemRandom(32);
  const linked = new Promise<PeerLink>((resolve) => {
    owner = startOwner({
      signalingUrl: server.url,
      permanentKeys: ownerKeys,
      iceServers: [],
      wrtc,
      WebSocket: WS,
      // Frames on a real data channel are under test: no fallback through the server (4.8).
      fallback: false,
      pendingTokens: () => [token],
      acceptToken: () => true,
      onLink: resolve,
    });
  });
  member = await joinRoom({
    signalingUrl: server.url,
    ownerKey: ownerKeys.publicKey,
    token,
    permanentKeys: generateBoxKeyPair(),
    iceServers: [],
    wrtc,
    WebSocket: WS,
    fallback: false,
  });
  ownerLink = await linked;
  ownerLink.on('message', (m) => delivered.push(toHex(m)));
});

afterAll(async () => {
  member.close();
  owner.close();
  await server.stop();
  await releaseNodeWrtc();
});

const delivered: string[] = [];

/** Inject `frames` from the member's side; expect the owner to refuse with `code` and re-form. */
async function attack(frames: (s: SessionInternals) => Uint8Array[], code: string): Promise<void> {
  await untilState(member, ['direct', 'relayed']);
  await untilState(ownerLink, ['direct', 'relayed']);
  // A round trip first: the member's session has then seen the owner's RESUME and sends DATA at once.
  const ping = collect(ownerLink, 1);
  member.send(Uint8Array.of(5));
  await ping;
  const err = nextEvent<{ code: string }>(ownerLink, 'error');
  const s = internals(member);
  for (const f of frames(s)) s.peer.send(f);
  expect((await err).code).toBe(code);
  // The link re-forms through signaling and still carries messages.
  await untilState(ownerLink, ['direct', 'relayed'], 20_000);
  const got = collect(ownerLink, 1);
  member.send(Uint8Array.of(7));
  expect([...(await got)[0]!]).toEqual([7]);
}

const forged = (s: SessionInternals, csnOffset: number): Uint8Array =>
  sealFrame({ cookie: s.sendState.cookie, csn: s.sendState.csn + csnOffset }, s.key, encodeInner({ kind: 'ack', msgId: 0 })).frame;

describe('frames injected into a real data channel', () => {
  it('refuses a replayed frame', async () => {
    let last: Uint8Array | null = null;
    await attack((s) => {
      const raw = s.peer.send.bind(s.peer);
      // Capture one genuine frame, then replay it.
      s.peer.send = (b: Uint8Array) => {
        last = b;
        raw(b);
      };
      member.send(Uint8Array.of(1));
      s.peer.send = raw;
      if (last === null) throw new Error('no frame captured');
      return [last];
    }, 'link.replay');
  });

  it('refuses reordered frames', async () => {
    await attack((s) => [forged(s, 1), forged(s, 0)], 'link.reorder');
  });

  it('refuses a tampered frame', async () => {
    await attack((s) => {
      const f = forged(s, 0);
      f[f.length - 1] = f[f.length - 1]! ^ 1;
      return [f];
    }, 'link.auth');
  });

  it('delivered only the genuine messages', () => {
    // 1 (replayed, and re-sent after the reconnect if its ack was lost) exactly once, the three 7s;
    // never a forged frame's content.
    expect(delivered.filter((d) => d !== '05')).toEqual(['01', '07', '07', '07']);
    expect(delivered.filter((d) => d === '05')).toHaveLength(3);
  });
});
