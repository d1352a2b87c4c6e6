// Interop: the official @saltyrtc/client runs an initiator and a responder through OUR server (attached
// in-process on port 0) to the end of the client-to-client handshake, then exchanges a message each way
// with the relayed-data task (task messages travel through the server as relayed frames).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoxKeyPair, generateBoxKeyPair } from '../../crypto/index.ts';
import { SignalingMetrics } from '../../signaling/metrics.ts';
import { attachSignalingServer } from '../../signaling/server.ts';
import { type SaltyClient, type SaltyEvent, loadOfficialClient } from './official-client.ts';

const salty = loadOfficialClient();
let httpServer: http.Server;
let signaling: ReturnType<typeof attachSignalingServer>;
let serverKeys: BoxKeyPair;
/** A second permanent key, as during a key rotation: still accepted from clients that pin it. */
let previousKeys: BoxKeyPair;
let port: number;
const metrics = new SignalingMetrics();
const clients: SaltyClient[] = [];

beforeAll(async () => {
  serverKeys = generateBoxKeyPair();
  previousKeys = generateBoxKeyPair();
  httpServer = http.createServer((_req, res) => res.writeHead(404).end());
  signaling = attachSignalingServer({ server: httpServer, permanentKeys: [serverKeys, previousKeys], observer: metrics });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  port = (httpServer.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await signaling.close();
  await new Promise<void>((resolve) => {
    httpServer.close(() => resolve());
    httpServer.closeAllConnections();
  });
});

function build(serverKey: Uint8Array) {
  return salty
    .newBuilder()
    .connectTo('127.0.0.1', port)
    .withKeyStore(salty.newKeyStore())
    .withServerKey(serverKey)
    .withPingInterval(0)
    .withLoggingLevel('none');
}

function useWs(client: SaltyClient): SaltyClient {
  client.signaling.protocol = 'ws'; // the client hard-codes wss; our test server is plain ws
  clients.push(client);
  return client;
}

/** Resolves when `client` reaches `state`; rejects with the reason if its connection fails first. */
function reach(client: SaltyClient, state: string, who: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.on('state-change', (ev: SaltyEvent) => {
      if (ev.data === state) resolve();
    });
    client.on('connection-error', () => reject(new Error(`${who}: connection error before ${state}`)));
    client.on('connection-closed', (ev: SaltyEvent) =>
      reject(new Error(`${who}: connection closed (code ${String(ev.data)}) before ${state}`)),
    );
    client.on('no-shared-task', () => reject(new Error(`${who}: no shared task`)));
  });
}

function nextData(client: SaltyClient): Promise<unknown> {
  return new Promise((resolve) =>
    client.getTask().on('data', (ev: SaltyEvent) => {
      resolve(ev.data);
      return false; // one message, then unregister
    }),
  );
}

describe('official @saltyrtc/client against our server', () => {
  it('completes the handshakes and relays a task message each way', async () => {
    const initiator = useWs(build(serverKeys.publicKey).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const responder = useWs(
      build(serverKeys.publicKey)
        .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
        .usingTasks([salty.newRelayedDataTask()])
        .asResponder(),
    );
    const initiatorDone = reach(initiator, 'task', 'initiator');
    const responderDone = reach(responder, 'task', 'responder');
    initiator.connect();
    responder.connect();
    await Promise.all([initiatorDone, responderDone]);

    const atResponder = nextData(responder);
    initiator.getTask().sendMessage({ text: 'hello responder', n: 1 });
    expect(await atResponder).toEqual({ text: 'hello responder', n: 1 });

    const atInitiator = nextData(initiator);
    responder.getTask().sendMessage('hello initiator');
    expect(await atInitiator).toBe('hello initiator');

    expect(metrics.handshakes).toEqual({ initiator: 1, responder: 1 });
    expect(metrics.relayedFrames).toBeGreaterThanOrEqual(4); // peer handshake (token/key/auth) + 2 task messages
  });

  it('works when the responder is on the path before the initiator (new-initiator)', async () => {
    const initiatorBuilder = build(serverKeys.publicKey).usingTasks([salty.newRelayedDataTask()]);
    const initiator = useWs(initiatorBuilder.asInitiator());
    const responder = useWs(
      build(serverKeys.publicKey)
        .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
        .usingTasks([salty.newRelayedDataTask()])
        .asResponder(),
    );
    const responderDone = reach(responder, 'task', 'responder');
    const responderWaiting = reach(responder, 'peer-handshake', 'responder');
    responder.connect();
    await responderWaiting; // authenticated towards the server, no initiator yet
    const initiatorDone = reach(initiator, 'task', 'initiator');
    initiator.connect();
    await Promise.all([initiatorDone, responderDone]);
    const atInitiator = nextData(initiator);
    responder.getTask().sendMessage({ list: [1, 2, 3] });
    expect(await atInitiator).toEqual({ list: [1, 2, 3] });
  });

  it('lets the initiator pick one of two responders and drop the other (drop-responder, 3004)', async () => {
    const initiator = useWs(build(serverKeys.publicKey).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const responderFor = () =>
      useWs(
        build(serverKeys.publicKey)
          .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
          .usingTasks([salty.newRelayedDataTask()])
          .asResponder(),
      );
    const first = responderFor();
    const second = responderFor();
    const firstDone = reach(first, 'task', 'first responder');
    const secondWaiting = reach(second, 'peer-handshake', 'second responder');
    first.connect();
    const initiatorDone = reach(initiator, 'task', 'initiator');
    initiator.connect();
    await Promise.all([firstDone, initiatorDone]);
    // The second responder arrives after the initiator chose: the initiator drops it via the server.
    const secondClosed = new Promise<unknown>((resolve) => second.on('connection-closed', (ev: SaltyEvent) => resolve(ev.data)));
    second.connect();
    await secondWaiting;
    expect(await secondClosed).toBe(3004); // Dropped by initiator
    const atFirst = nextData(first);
    initiator.getTask().sendMessage('still here');
    expect(await atFirst).toBe('still here');
  });

  it('completes with clients pinning the older of two server keys (rotation overlap)', async () => {
    const initiator = useWs(build(previousKeys.publicKey).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const responder = useWs(
      build(previousKeys.publicKey)
        .initiatorInfo(initiator.permanentKeyBytes, initiator.authTokenBytes)
        .usingTasks([salty.newRelayedDataTask()])
        .asResponder(),
    );
    const done = Promise.all([reach(initiator, 'task', 'initiator'), reach(responder, 'task', 'responder')]);
    initiator.connect();
    responder.connect();
    await done;
    const atResponder = nextData(responder);
    initiator.getTask().sendMessage('signed with the old key');
    expect(await atResponder).toBe('signed with the old key');
  });

  it('is refused when the client pins a server key the server does not have', async () => {
    const wrongKey = generateBoxKeyPair().publicKey;
    const initiator = useWs(build(wrongKey).usingTasks([salty.newRelayedDataTask()]).asInitiator());
    const closed = new Promise<unknown>((resolve) => initiator.on('connection-closed', (ev: SaltyEvent) => resolve(ev.data)));
    initiator.connect();
    expect(await closed).toBe(3007); // Invalid Key (Protocol.md close codes)
  });
});
