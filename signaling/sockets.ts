/**
 * The socket side of a connection registry: one entry per accepted WebSocket, the listeners shared
 * by every socket, the handshake and ping timers, closing and the shutdown grace period. What a
 * frame or a close means is up to the registry that owns the table (signaling/registry.ts for one
 * node, signaling/cluster/ for several).
 */
import { WebSocket } from 'ws';
import { CloseCode } from '../protocol/saltyrtc/close-codes.ts';
import type { ConnId } from '../protocol/saltyrtc/server-machine.ts';
import type { SignalingObserver } from './observer.ts';

const MAX_TIMER_MS = 2 ** 31 - 1;
const SHUTDOWN_GRACE_MS = 2000;

export interface SocketEntry {
  readonly id: ConnId;
  readonly ws: WebSocket;
  readonly ip: string;
  /** We closed it (or the machine did): frames are no longer fed in. */
  closing: boolean;
  handshakeTimer: NodeJS.Timeout | null;
  pingTimer: NodeJS.Timeout | null;
  pongTimer: NodeJS.Timeout | null;
}

export interface SocketHandlers<E extends SocketEntry> {
  frame(entry: E, data: Buffer): void;
  /** A text frame (SaltyRTC is binary only). */
  textFrame(entry: E): void;
  timeout(entry: E, kind: 'handshake' | 'ping'): void;
  /** The socket has closed; the entry is already out of the table and its timers are stopped. */
  closed(entry: E, code: number): void;
  /** ws reported an error (it closes the socket itself: 1009 oversized, 1002 framing). */
  error(entry: E, code: string): void;
}

export class SocketTable<E extends SocketEntry> {
  readonly conns = new Map<ConnId, E>();
  // The shared socket listeners find their entry here. A Map entry is a few words; a property
  // added to each WebSocket gave every socket a PropertyArray (~90 B per idle connection).
  private readonly bySocket = new Map<WebSocket, E>();
  private nextConnId = 1;
  private shuttingDown = false;
  private shutdownResolve: (() => void) | null = null;
  private shutdownPromise: Promise<void> | null = null;

  constructor(
    private readonly handlers: SocketHandlers<E>,
    private readonly handshakeTimeoutMs: number,
    private readonly pingTimeoutMs: number,
    private readonly observer: SignalingObserver,
  ) {
    // One set of listeners shared by every socket instead of four closures per connection: idle
    // connections are most of the server's memory (bench:signaling). `this` is the socket.
    const table = this;
    this.onMessage = function (this: WebSocket, data: Buffer, isBinary: boolean): void {
      const entry = table.bySocket.get(this)!;
      if (entry.closing) return;
      if (!isBinary) return handlers.textFrame(entry);
      handlers.frame(entry, data);
    };
    this.onPong = function (this: WebSocket): void {
      table.clearTimer(table.bySocket.get(this)!, 'pongTimer');
    };
    this.onError = function (this: WebSocket, err: Error & { code?: string }): void {
      const entry = table.bySocket.get(this)!;
      handlers.error(entry, err.code ?? 'unknown');
      if (!entry.closing) table.observer.rejected('bad-message');
      entry.closing = true;
    };
    this.onClose = function (this: WebSocket, code: number): void {
      table.onSocketClosed(table.bySocket.get(this)!, code);
    };
  }

  private readonly onMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onPong: (this: WebSocket) => void;
  private readonly onError: (this: WebSocket, err: Error & { code?: string }) => void;
  private readonly onClose: (this: WebSocket, code: number) => void;

  get size(): number {
    return this.conns.size;
  }

  get closing(): boolean {
    return this.shuttingDown;
  }

  newId(): ConnId {
    return this.nextConnId++;
  }

  /** Track an accepted socket: listeners, the handshake timer. */
  add(entry: E): void {
    this.conns.set(entry.id, entry);
    this.observer.connectionOpened();
    this.bySocket.set(entry.ws, entry);
    entry.ws.on('message', this.onMessage);
    entry.ws.on('pong', this.onPong);
    entry.ws.on('error', this.onError);
    entry.ws.on('close', this.onClose);
    entry.handshakeTimer = setTimeout(() => this.handlers.timeout(entry, 'handshake'), this.handshakeTimeoutMs);
  }

  get(id: ConnId): E | undefined {
    return this.conns.get(id);
  }

  /** Close with `code` (once); frames that still arrive are no longer fed in. */
  close(entry: E, code: number): void {
    if (entry.closing) return;
    entry.closing = true;
    this.clearTimers(entry);
    entry.ws.close(code);
  }

  handshakeDone(entry: E): void {
    this.clearTimer(entry, 'handshakeTimer');
  }

  startPings(entry: E, seconds: number): void {
    if (seconds <= 0) return;
    const everyMs = Math.min(seconds * 1000, MAX_TIMER_MS);
    entry.pingTimer = setInterval(() => {
      if (entry.pongTimer !== null || entry.ws.readyState !== WebSocket.OPEN) return;
      entry.ws.ping();
      entry.pongTimer = setTimeout(() => {
        entry.pongTimer = null;
        this.handlers.timeout(entry, 'ping');
      }, this.pingTimeoutMs);
    }, everyMs);
  }

  clearTimers(entry: E): void {
    this.clearTimer(entry, 'handshakeTimer');
    this.clearTimer(entry, 'pingTimer');
    this.clearTimer(entry, 'pongTimer');
  }

  private clearTimer(entry: E, which: 'handshakeTimer' | 'pingTimer' | 'pongTimer'): void {
    const t = entry[which];
    if (t === null) return;
    if (which === 'pingTimer') clearInterval(t);
    else clearTimeout(t);
    entry[which] = null;
  }

  private onSocketClosed(entry: E, code: number): void {
    this.clearTimers(entry);
    this.conns.delete(entry.id);
    this.bySocket.delete(entry.ws);
    this.observer.connectionClosed(code);
    this.handlers.closed(entry, code);
    if (this.shuttingDown && this.conns.size === 0) this.shutdownResolve?.();
  }

  /** Close every client with `code` (1001 by default) and resolve once all sockets are gone. */
  shutDown(code: number = CloseCode.GoingAway): Promise<void> {
    this.shutdownPromise ??= this.startShutdown(code);
    return this.shutdownPromise;
  }

  private startShutdown(code: number): Promise<void> {
    this.shuttingDown = true;
    if (this.conns.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // Clients that do not answer the close frame are cut off after a grace period.
      const grace = setTimeout(() => {
        for (const c of this.conns.values()) c.ws.terminate();
      }, SHUTDOWN_GRACE_MS);
      this.shutdownResolve = () => {
        clearTimeout(grace);
        resolve();
      };
      for (const c of this.conns.values()) {
        this.clearTimers(c);
        if (!c.closing) {
          c.closing = true;
          c.ws.close(code);
        }
      }
    });
  }
}
