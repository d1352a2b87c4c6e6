// Loads the official SaltyRTC client (@saltyrtc/client) and its relayed-data task in Node. Their npm
// bundles are browser scripts that read globals, so those globals are set first (see
// ../shared/notes/platform.md, "SaltyRTC interop"): nacl, msgpack, WebSocket (from ws), window.crypto.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';
import msgpack from 'msgpack-lite';
import nacl from 'tweetnacl';
import WebSocket from 'ws';

export interface SaltyEvent {
  readonly type: string;
  readonly data?: unknown;
}

export interface SaltyClient {
  readonly signaling: { protocol: string };
  readonly state: string;
  readonly permanentKeyBytes: Uint8Array;
  readonly authTokenBytes: Uint8Array;
  getTask(): RelayedDataTask;
  connect(): void;
  disconnect(unbind?: boolean): void;
  on(event: string, handler: (ev: SaltyEvent) => unknown): void;
  off(event?: string, handler?: (ev: SaltyEvent) => unknown): void;
}

export interface RelayedDataTask {
  sendMessage(data: unknown): void;
  on(event: 'data', handler: (ev: SaltyEvent) => unknown): void;
}

interface SaltyBuilder {
  connectTo(host: string, port: number): SaltyBuilder;
  withKeyStore(keyStore: unknown): SaltyBuilder;
  withServerKey(key: Uint8Array | string): SaltyBuilder;
  withPingInterval(seconds: number): SaltyBuilder;
  withLoggingLevel(level: 'none' | 'debug' | 'info' | 'warn' | 'error'): SaltyBuilder;
  initiatorInfo(initiatorPublicKey: Uint8Array, authToken: Uint8Array): SaltyBuilder;
  usingTasks(tasks: unknown[]): SaltyBuilder;
  asInitiator(): SaltyClient;
  asResponder(): SaltyClient;
}

export interface OfficialSaltyRtc {
  newBuilder(): SaltyBuilder;
  newKeyStore(): unknown;
  newRelayedDataTask(): unknown;
}

let loaded: OfficialSaltyRtc | undefined;

export function loadOfficialClient(): OfficialSaltyRtc {
  if (loaded !== undefined) return loaded;
  const g = globalThis as Record<string, unknown>;
  g.nacl = nacl;
  g.msgpack = msgpack;
  g.WebSocket = WebSocket;
  if (g.window === undefined) g.window = globalThis; // the client reads window.crypto.getRandomValues
  const require = createRequire(import.meta.url);
  for (const file of [
    '@saltyrtc/client/dist/saltyrtc-client.es5.js',
    '@saltyrtc/task-relayed-data/dist/saltyrtc-task-relayed-data.es5.js',
  ]) {
    const path = require.resolve(file);
    // runInThisContext: the bundles declare `var saltyrtcClient` / `var saltyrtcTaskRelayedData` as globals.
    vm.runInThisContext(readFileSync(path, 'utf8'), { filename: path });
  }
  const client = g.saltyrtcClient as { SaltyRTCBuilder: new () => SaltyBuilder; KeyStore: new () => unknown };
  const task = g.saltyrtcTaskRelayedData as { RelayedDataTask: new (debug?: boolean) => unknown };
  loaded = {
    newBuilder: () => new client.SaltyRTCBuilder(),
    newKeyStore: () => new client.KeyStore(),
    newRelayedDataTask: () => new task.RelayedDataTask(false),
  };
  return loaded;
}
