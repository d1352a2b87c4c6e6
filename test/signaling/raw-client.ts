/**
 * A hand-driven SaltyRTC client for the raw-protocol tests: frames are built byte by byte with
 * tweetnacl and msgpack-lite (independent of our codecs), so a codec bug cannot cancel itself out.
 */
import msgpack from 'msgpack-lite';
import nacl from 'tweetnacl';
import { WebSocket } from 'ws';

export const SUBPROTOCOL = 'v1.saltyrtc.org';

export interface Closed {
  code: number;
  reason: string;
}

/** A WebSocket whose binary frames are queued, so tests await the next one instead of sleeping. */
export class RawSocket {
  readonly closed: Promise<Closed>;
  private readonly queue: Buffer[] = [];
  private waiters: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  private closedWith: Closed | null = null;
  readonly textFrames: string[] = [];
  pings = 0;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        for (const w of this.waiters) w.reject(new Error(`closed with ${code} while waiting for a frame`));
        this.waiters = [];
        resolve(this.closedWith);
      });
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return void this.textFrames.push(data.toString());
      const w = this.waiters.shift();
      if (w !== undefined) w.resolve(data);
      else this.queue.push(data);
    });
    ws.on('ping', () => this.pings++);
  }

  static open(url: string, opts: { protocols?: string[]; autoPong?: boolean; headers?: Record<string, string> } = {}): Promise<RawSocket> {
    const ws = new WebSocket(url, opts.protocols ?? [SUBPROTOCOL], { autoPong: opts.autoPong ?? true, headers: opts.headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawSocket(ws)));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
        res.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  next(): Promise<Buffer> {
    const b = this.queue.shift();
    if (b !== undefined) return Promise.resolve(b);
    if (this.closedWith !== null) return Promise.reject(new Error(`closed with ${this.closedWith.code}`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  get pending(): number {
    return this.queue.length;
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  close(code = 1000): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }
}

export interface NonceFields {
  cookie: Uint8Array;
  source: number;
  destination: number;
  csn: number;
}

export function nonce(n: NonceFields): Uint8Array {
  const out = new Uint8Array(24);
  out.set(n.cookie, 0);
  out[16] = n.source;
  out[17] = n.destination;
  const v = new DataView(out.buffer);
  v.setUint16(18, Math.floor(n.csn / 2 ** 32));
  v.setUint32(20, n.csn % 2 ** 32);
  return out;
}

export function parseNonce(b: Uint8Array): NonceFields {
  const v = new DataView(b.buffer, b.byteOffset, 24);
  return { cookie: b.slice(0, 16), source: b[16]!, destination: b[17]!, csn: v.getUint16(18) * 2 ** 32 + v.getUint32(20) };
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** msgpack-lite with Buffers for bin (the official client's codec). */
export const pack = (v: unknown): Uint8Array => new Uint8Array(msgpack.encode(v));
export const unpack = (b: Uint8Array): Record<string, unknown> => msgpack.decode(b) as Record<string, unknown>;
export const bin = (b: Uint8Array): Buffer => Buffer.from(b);

export interface HandshakeOptions {
  role: 'initiator' | 'responder';
  /** Initiator: its permanent key pair is the path. Responder: its own key pair. */
  keys?: nacl.BoxKeyPair;
  /** The path's initiator public key (responders). */
  initiatorKey?: Uint8Array;
  pingInterval?: number;
  yourKey?: Uint8Array;
  autoPong?: boolean;
  /** Stop after server-hello (tests that send their own client-hello / client-auth). */
  stopAfterHello?: boolean;
}

/** One client: socket, keys and nonce bookkeeping towards the server. */
export class SaltyTestClient {
  address = 0;
  serverSessionKey: Uint8Array = new Uint8Array(32);
  serverCookie: Uint8Array = new Uint8Array(16);
  serverCsn = 0;
  readonly cookie = nacl.randomBytes(16);
  csn = nacl.randomBytes(4).reduce((n, b) => n * 256 + b, 0);
  serverAuth: Record<string, unknown> = {};
  /** Per-destination outgoing cookie/csn for client-to-client frames. */
  private readonly peers = new Map<number, { cookie: Uint8Array; csn: number }>();

  constructor(
    readonly sock: RawSocket,
    readonly keys: nacl.BoxKeyPair,
    readonly role: 'initiator' | 'responder',
  ) {}

  static async connect(baseUrl: string, o: HandshakeOptions): Promise<SaltyTestClient> {
    const keys = o.keys ?? nacl.box.keyPair();
    const pathKey = o.role === 'initiator' ? keys.publicKey : o.initiatorKey;
    if (pathKey === undefined) throw new Error('responder needs initiatorKey');
    const sock = await RawSocket.open(`${baseUrl}/${Buffer.from(pathKey).toString('hex')}`, { autoPong: o.autoPong ?? true });
    const c = new SaltyTestClient(sock, keys, o.role);
    await c.readServerHello();
    if (o.stopAfterHello === true) return c;
    if (o.role === 'responder') c.sendToServer(pack({ type: 'client-hello', key: bin(keys.publicKey) }), false);
    c.sendToServer(pack(c.clientAuth({ pingInterval: o.pingInterval ?? 0, yourKey: o.yourKey })), true);
    await c.readServerAuth();
    return c;
  }

  clientAuth(o: { pingInterval?: number; yourKey?: Uint8Array; subprotocols?: string[] }): Record<string, unknown> {
    return {
      type: 'client-auth',
      your_cookie: bin(this.serverCookie),
      subprotocols: o.subprotocols ?? [SUBPROTOCOL],
      ping_interval: o.pingInterval ?? 0,
      ...(o.yourKey !== undefined ? { your_key: bin(o.yourKey) } : {}),
    };
  }

  async readServerHello(): Promise<void> {
    const frame = await this.sock.next();
    const n = parseNonce(frame);
    const hello = unpack(frame.subarray(24));
    if (hello.type !== 'server-hello' || n.source !== 0 || n.destination !== 0) throw new Error('expected server-hello');
    this.serverSessionKey = new Uint8Array(hello.key as Buffer);
    this.serverCookie = n.cookie;
    this.serverCsn = n.csn + 1;
  }

  async readServerAuth(): Promise<void> {
    const { nonce: n, msg } = await this.nextServerMessage();
    if (msg.type !== 'server-auth') throw new Error(`expected server-auth, got ${String(msg.type)}`);
    this.address = n.destination;
    this.serverAuth = msg;
  }

  /** Next frame from the server, decrypted with the session keys and csn-checked. */
  async nextServerMessage(): Promise<{ nonce: NonceFields; msg: Record<string, unknown>; raw: Uint8Array }> {
    const frame = await this.sock.next();
    const n = parseNonce(frame);
    if (n.source !== 0) throw new Error(`expected a server message, got one from ${n.source}`);
    if (n.csn !== this.serverCsn) throw new Error(`server csn ${n.csn}, expected ${this.serverCsn}`);
    if (Buffer.compare(Buffer.from(n.cookie), Buffer.from(this.serverCookie)) !== 0) throw new Error('server cookie changed');
    this.serverCsn++;
    const plain = nacl.box.open(frame.subarray(24), frame.subarray(0, 24), this.serverSessionKey, this.keys.secretKey);
    if (plain === null) throw new Error('server message does not decrypt');
    return { nonce: n, msg: unpack(plain), raw: frame };
  }

  /** Next frame whatever its source (relayed frames). */
  nextFrame(): Promise<Buffer> {
    return this.sock.next();
  }

  serverNonce(overrides: Partial<NonceFields> = {}): Uint8Array {
    const n = nonce({ cookie: this.cookie, source: this.address, destination: 0, csn: this.csn, ...overrides });
    if (overrides.csn === undefined) this.csn++;
    return n;
  }

  sendToServer(plaintext: Uint8Array, encrypt: boolean, overrides: Partial<NonceFields> = {}): void {
    const n = this.serverNonce(overrides);
    const data = encrypt ? nacl.box(plaintext, n, this.serverSessionKey, this.keys.secretKey) : plaintext;
    this.sock.send(concat(n, data));
  }

  /** A client-to-client frame (opaque data: the server must relay it verbatim). */
  relayFrame(destination: number, data: Uint8Array): Uint8Array {
    let p = this.peers.get(destination);
    if (p === undefined) {
      p = { cookie: nacl.randomBytes(16), csn: 1000 };
      this.peers.set(destination, p);
    }
    const frame = concat(nonce({ cookie: p.cookie, source: this.address, destination, csn: p.csn++ }), data);
    this.sock.send(frame);
    return frame;
  }
}
