// Interop with the official SaltyRTC client (@saltyrtc/client 0.15 + @saltyrtc/task-webrtc) through
// our server: the client-to-client handshake and WebRTC task negotiation complete both ways.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asBoxPublicKey, generateBoxKeyPair, systemRandom, equalBytes, type BoxPublicKey } from '../../crypto/index.ts';
import { SignalingClient } from '../../protocol/saltyrtc/client-driver.ts';
import { WEBRTC_TASK } from '../../protocol/saltyrtc/peer-messages.ts';
import { loadOfficialClient, type OfficialClient } from './official-client.ts';
import { TestServer, WS } from './harness.ts';

let server: TestServer;
const official = loadOfficialClient();
const cleanup: (() => void)[] = [];

beforeAll(async () => {
  server = await new TestServer().start();
});

afterAll(async () => {
  for (const c of cleanup) c();
  await server.stop();
});

function untilOfficialState(c: OfficialClient, state: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`official client never reached ${state} (now ${c.state})`)), ms);
    c.on('state-change', (e) => {
      if (e.data === state) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function officialBuilder() {
  return new official.SaltyRTCBuilder()
    .connectTo('127.0.0.1', server.port)
    .withServerKey(server.keys.publicKey)
    .usingTasks([new official.WebRTCTaskBuilder().build()]);
}

function authenticated(client: SignalingClient): Promise<{ peerKey: BoxPublicKey; taskData: unknown }> {
  return new Promise((resolve, reject) => {
    client.on('peer-authenticated', (_peer, peerKey, _shared, taskData) => resolve({ peerKey, taskData }));
    client.on('closed', (e) => reject(e));
  });
}

describe('interop with @saltyrtc/client', () => {
  it('our responder completes the client handshake with the official initiator', async () => {
    const ks = new official.KeyStore();
    const initiator = officialBuilder().withKeyStore(ks).asInitiator();
    initiator.signaling.protocol = 'ws'; // it hard-codes wss
    const inTask = untilOfficialState(initiator, 'task');
    initiator.connect();
    cleanup.push(() => initiator.disconnect());

    const member = generateBoxKeyPair();
    const ours = new SignalingClient({
      url: server.url,
      WebSocket: WS,
      pathKey: asBoxPublicKey(ks.publicKeyBytes),
      context: {
        role: 'responder',
        permanent: member,
        serverKey: server.keys.publicKey,
        random: systemRandom,
        taskData: { exclude: [], handover: true },
        initiatorKey: asBoxPublicKey(ks.publicKeyBytes),
        token: initiator.authTokenBytes,
      },
    });
    const done = authenticated(ours);
    ours.start();
    cleanup.push(() => ours.close());
    const { peerKey, taskData } = await done;
    await inTask;
    expect(equalBytes(peerKey, ks.publicKeyBytes)).toBe(true);
    expect(taskData).toEqual({ exclude: [], handover: true });
  });

  it('our initiator completes the client handshake with the official responder', async () => {
    const owner = generateBoxKeyPair();
    const token = systemRandom(32);
    let accepted: Uint8Array | null = null;
    const ours = new SignalingClient({
      url: server.url,
      WebSocket: WS,
      pathKey: owner.publicKey,
      context: {
        role: 'initiator',
        permanent: owner,
        serverKey: server.keys.publicKey,
        random: systemRandom,
        taskData: { exclude: [], handover: true },
        pendingTokens: () => [token],
        acceptToken: (_t, key) => {
          accepted = key;
          return true;
        },
      },
    });
    const done = authenticated(ours);
    ours.start();
    cleanup.push(() => ours.close());

    const ks = new official.KeyStore();
    const responder = officialBuilder().withKeyStore(ks).initiatorInfo(owner.publicKey, token).asResponder();
    responder.signaling.protocol = 'ws';
    const inTask = untilOfficialState(responder, 'task');
    responder.connect();
    cleanup.push(() => responder.disconnect());
    const { peerKey } = await done;
    await inTask;
    expect(equalBytes(peerKey, ks.publicKeyBytes)).toBe(true);
    expect(accepted !== null && equalBytes(accepted, ks.publicKeyBytes)).toBe(true);
    expect(WEBRTC_TASK).toBe('v1.webrtc.tasks.saltyrtc.org');
  });
});
