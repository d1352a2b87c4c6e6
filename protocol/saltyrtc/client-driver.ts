/**
 * Driver of the SaltyRTC client machine: owns one WebSocket and the timers, feeds frames to
 * `step` and performs its effects. Everything ambient is a parameter (WebSocket constructor,
 * timers, randomness) so the same code runs in the browser, in Node and in tests.
 */
import { boxBefore, toHex, type BoxPublicKey, type SharedKey } from '../../crypto/index.ts';
import {
  step,
  initialState,
  SUBPROTOCOL,
  type ClientContext,
  type ClientEffect,
  type ClientEvent,
  type ClientState,
} from './client-machine.ts';
import { SaltyClientError } from './client-errors.ts';
import { CloseCode } from './close-codes.ts';
import type { IceRestartTaskData, PostAuthMessage, WebRtcTaskData } from './peer-messages.ts';

/** The subset of the WebSocket API we use (browser WebSocket and the `ws` package both fit). */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  readonly readyState: number;
  /** Bytes queued and not yet sent (both the browser's WebSocket and `ws` have it). */
  readonly bufferedAmount?: number;
  send(data: Uint8Array): void;
  close(code?: number): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketCtor = new (url: string, protocols: string[]) => WebSocketLike;

export interface Timers {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (f, ms) => globalThis.setTimeout(f, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Protocol.md: the initiator drops responders that sent nothing for 60 s. */
export const RESPONDER_IDLE_MS = 60_000;

export interface SignalingEvents {
  'server-ready': (address: number, initiatorConnected: boolean) => void;
  /** `iceRestart` non-null: the ICE-restart task was chosen for that link session (docs/PROTOCOL.md 4.6). */
  'peer-authenticated': (
    peer: number,
    peerKey: BoxPublicKey,
    sessionShared: SharedKey,
    taskData: WebRtcTaskData,
    iceRestart: IceRestartTaskData | null,
  ) => void;
  'peer-message': (peer: number, message: PostAuthMessage) => void;
  'peer-lost': (peer: number, error: SaltyClientError) => void;
  /** The signaling connection is over; `error` says why (handover is code 'saltyrtc.peer-closed', closeCode 3003). */
  closed: (error: SaltyClientError) => void;
  warning: (message: string) => void;
}

export interface SignalingClientOptions {
  /** Base URL of the server, e.g. ws://127.0.0.1:8765 (the path is appended). */
  readonly url: string;
  readonly WebSocket: WebSocketCtor;
  readonly timers?: Timers;
  /** The machine's context minus `sharedWith`, which the driver memoises. */
  readonly context: Omit<ClientContext, 'sharedWith'>;
  /** Initiator's permanent public key: the signaling path (our own key when we are the initiator). */
  readonly pathKey: BoxPublicKey;
}

type Listeners = { [K in keyof SignalingEvents]: SignalingEvents[K][] };

export class SignalingClient {
  private readonly ctx: ClientContext;
  private state: ClientState;
  private ws: WebSocketLike | null = null;
  private readonly timers: Timers;
  private readonly idleTimers = new Map<number, unknown>();
  private readonly listeners: Listeners = {
    'server-ready': [],
    'peer-authenticated': [],
    'peer-message': [],
    'peer-lost': [],
    closed: [],
    warning: [],
  };
  private finished = false;

  constructor(private readonly opts: SignalingClientOptions) {
    const cache = new Map<string, SharedKey>();
    const secret = opts.context.permanent.secretKey;
    this.ctx = {
      ...opts.context,
      sharedWith: (pub) => {
        const k = toHex(pub);
        let shared = cache.get(k);
        if (shared === undefined) {
          shared = boxBefore(pub, secret);
          cache.set(k, shared);
        }
        return shared;
      },
    };
    this.state = initialState(this.ctx);
    this.timers = opts.timers ?? systemTimers;
  }

  on<K extends keyof SignalingEvents>(ev: K, f: SignalingEvents[K]): this {
    this.listeners[ev].push(f);
    return this;
  }

  private emit<K extends keyof SignalingEvents>(ev: K, ...args: Parameters<SignalingEvents[K]>): void {
    for (const f of this.listeners[ev]) (f as (...a: Parameters<SignalingEvents[K]>) => void)(...args);
  }

  start(): void {
    const url = `${this.opts.url.replace(/\/+$/, '')}/${toHex(this.opts.pathKey)}`;
    const ws = new this.opts.WebSocket(url, [SUBPROTOCOL]);
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (ws.protocol !== SUBPROTOCOL) closeSocket(ws, CloseCode.NoSharedSubprotocol);
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) {
        this.dispatch({ type: 'frame', bytes: new Uint8Array(0) }); // text frame: protocol error
        return;
      }
      this.dispatch({ type: 'frame', bytes: new Uint8Array(ev.data) });
    };
    ws.onerror = () => {
      // The close event follows and carries the code; nothing to do here.
    };
    ws.onclose = (ev) => {
      this.ws = null;
      this.dispatch({ type: 'ws-closed', code: ev.code });
    };
  }

  /** Send a post-handshake message (msgpack payload) to an authenticated peer. */
  send(peer: number, payload: Uint8Array): void {
    this.dispatch({ type: 'send', peer, payload });
  }

  handoverDone(peer: number): void {
    this.dispatch({ type: 'handover-done', peer });
  }

  closePeer(peer: number, reason: number = CloseCode.GoingAway): void {
    this.dispatch({ type: 'close-peer', peer, reason });
  }

  /** Leave the server (1001) without a peer 'close'. */
  close(): void {
    const ws = this.ws;
    if (ws !== null) closeSocket(ws, CloseCode.GoingAway);
    else this.finish(new SaltyClientError('saltyrtc.peer-closed', 'closed locally', CloseCode.GoingAway));
  }

  get isOpen(): boolean {
    return !this.finished;
  }

  /** Bytes the WebSocket still buffers (0 when closed). */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  private dispatch(event: ClientEvent): void {
    if (this.finished) return;
    const { state, effects } = step(this.ctx, this.state, event);
    this.state = state;
    for (const e of effects) this.perform(e);
  }

  private perform(e: ClientEffect): void {
    switch (e.type) {
      case 'send':
        this.ws?.send(e.bytes);
        return;
      case 'close-ws':
        if (this.ws !== null) closeSocket(this.ws, e.code);
        return;
      case 'server-ready':
        this.emit('server-ready', e.address, e.initiatorConnected);
        return;
      case 'responder-added': {
        this.clearIdle(e.peer);
        const peer = e.peer;
        this.idleTimers.set(
          peer,
          this.timers.setTimeout(() => {
            this.idleTimers.delete(peer);
            this.dispatch({ type: 'responder-timeout', peer });
          }, RESPONDER_IDLE_MS),
        );
        return;
      }
      case 'peer-authenticated':
        this.clearIdle(e.peer);
        this.emit('peer-authenticated', e.peer, e.peerKey, e.sessionShared, e.taskData, e.iceRestart);
        return;
      case 'peer-message':
        this.clearIdle(e.peer);
        this.emit('peer-message', e.peer, e.message);
        return;
      case 'peer-lost':
        this.clearIdle(e.peer);
        this.emit('peer-lost', e.peer, e.error);
        return;
      case 'warning':
        this.emit('warning', e.message);
        return;
      case 'failed':
        this.finish(e.error);
        return;
    }
  }

  private clearIdle(peer: number): void {
    const h = this.idleTimers.get(peer);
    if (h !== undefined) this.timers.clearTimeout(h);
    this.idleTimers.delete(peer);
  }

  private finish(error: SaltyClientError): void {
    if (this.finished) return;
    this.finished = true;
    for (const h of this.idleTimers.values()) this.timers.clearTimeout(h);
    this.idleTimers.clear();
    this.emit('closed', error);
  }
}

/**
 * Browsers let a page send only 1000 or 3000-4999 (WebSocket.close throws InvalidAccessError for
 * 1001/1002, which the SaltyRTC spec uses for "going away" and "no shared subprotocol"). Those two
 * go out as 1000: to the server both mean the client left, and our own state already holds the reason.
 */
function closeSocket(ws: { close(code?: number): void }, code: number): void {
  ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000);
}
