/**
 * Loads the official SaltyRTC client (@saltyrtc/client 0.15 + @saltyrtc/task-webrtc) in Node:
 * its dist bundles are browser scripts reading the globals nacl, msgpack and WebSocket, so we set
 * those and evaluate the es5 bundles (platform.md "SaltyRTC interop").
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { runInThisContext } from 'node:vm';
import msgpack from 'msgpack-lite';
import nacl from 'tweetnacl';
import { WebSocket } from 'ws';

const require = createRequire(import.meta.url);

export interface OfficialSaltyRtc {
  SaltyRTCBuilder: new () => OfficialBuilder;
  KeyStore: new (secretKey?: Uint8Array) => { publicKeyBytes: Uint8Array; secretKeyBytes: Uint8Array };
  WebRTCTaskBuilder: new () => { withLoggingLevel(l: string): { build(): unknown }; build(): unknown };
}
export interface OfficialBuilder {
  connectTo(host: string, port: number): OfficialBuilder;
  withKeyStore(ks: unknown): OfficialBuilder;
  withTrustedPeerKey(key: Uint8Array): OfficialBuilder;
  withServerKey(key: Uint8Array): OfficialBuilder;
  usingTasks(tasks: unknown[]): OfficialBuilder;
  initiatorInfo(key: Uint8Array, token: Uint8Array): OfficialBuilder;
  asInitiator(): OfficialClient;
  asResponder(): OfficialClient;
}
export interface OfficialClient {
  signaling: { protocol: string };
  authTokenBytes: Uint8Array;
  state: string;
  on(ev: string, f: (e: { type: string; data: unknown }) => void): void;
  once(ev: string, f: (e: { type: string; data: unknown }) => void): void;
  connect(): void;
  disconnect(unbind?: boolean): void;
  getTask(): unknown;
}

let loaded: OfficialSaltyRtc | null = null;

export function loadOfficialClient(): OfficialSaltyRtc {
  if (loaded !== null) return loaded;
  const g = globalThis as Record<string, unknown>;
  g.nacl = nacl;
  g.msgpack = msgpack;
  g.WebSocket = WebSocket;
  g.window ??= globalThis; // it reads window.crypto.getRandomValues
  const client = runInThisContext(
    `${readFileSync(require.resolve('@saltyrtc/client/dist/saltyrtc-client.es5.js'), 'utf8')}\n;saltyrtcClient`,
  ) as Record<string, unknown>;
  g.saltyrtcClient = client;
  const task = runInThisContext(
    `${readFileSync(require.resolve('@saltyrtc/task-webrtc/dist/saltyrtc-task-webrtc.es5.js'), 'utf8')}\n;saltyrtcTaskWebrtc`,
  ) as Record<string, unknown>;
  loaded = { ...client, ...task } as unknown as OfficialSaltyRtc;
  return loaded;
}
