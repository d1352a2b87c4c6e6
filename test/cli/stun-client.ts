// A tiny STUN/TURN client (RFC 5389 / RFC 5766) for tests: just enough to do an Allocate with the
// long-term credential mechanism against coturn over UDP on 127.0.0.1.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

const MAGIC_COOKIE = 0x2112a442;
export const METHOD = { binding: 0x001, allocate: 0x003, refresh: 0x004 } as const;
export const ATTR = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  lifetime: 0x000d,
  realm: 0x0014,
  nonce: 0x0015,
  xorRelayedAddress: 0x0016,
  requestedTransport: 0x0019,
  xorMappedAddress: 0x0020,
  fingerprint: 0x8028,
} as const;

export interface StunMessage {
  readonly cls: 'request' | 'success' | 'error' | 'indication';
  readonly method: number;
  readonly transactionId: Buffer;
  readonly attrs: ReadonlyMap<number, Buffer>;
}

function typeField(method: number, cls: number): number {
  // The class bits C0/C1 sit at positions 4 and 8 of the 14-bit type (RFC 5389 section 6).
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

function attribute(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(value.length, 2);
  const pad = Buffer.alloc((4 - (value.length % 4)) % 4);
  return Buffer.concat([header, value, pad]);
}

/** Encodes a request; with `key`, appends MESSAGE-INTEGRITY (HMAC-SHA1 over the message with its length fixed up). */
export function encodeRequest(
  method: number,
  attrs: ReadonlyArray<[number, Buffer]>,
  key?: Buffer,
): { bytes: Buffer; transactionId: Buffer } {
  const transactionId = randomBytes(12);
  let body = Buffer.concat(attrs.map(([t, v]) => attribute(t, v)));
  const header = Buffer.alloc(20);
  header.writeUInt16BE(typeField(method, 0), 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  if (key !== undefined) {
    header.writeUInt16BE(body.length + 24, 2); // length as if MESSAGE-INTEGRITY were already there
    const mac = createHmac('sha1', key)
      .update(Buffer.concat([header, body]))
      .digest();
    body = Buffer.concat([body, attribute(ATTR.messageIntegrity, mac)]);
  }
  header.writeUInt16BE(body.length, 2);
  return { bytes: Buffer.concat([header, body]), transactionId };
}

export function decodeMessage(bytes: Buffer): StunMessage {
  if (bytes.length < 20 || bytes.readUInt32BE(4) !== MAGIC_COOKIE) throw new Error('not a STUN message');
  const type = bytes.readUInt16BE(0);
  const length = bytes.readUInt16BE(2);
  if (20 + length !== bytes.length) throw new Error('bad STUN length');
  const cls = ((type >> 4) & 1) | ((type >> 7) & 2);
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const attrs = new Map<number, Buffer>();
  for (let off = 20; off + 4 <= bytes.length;) {
    const t = bytes.readUInt16BE(off);
    const len = bytes.readUInt16BE(off + 2);
    attrs.set(t, bytes.subarray(off + 4, off + 4 + len));
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return {
    cls: (['request', 'indication', 'success', 'error'] as const)[cls] as StunMessage['cls'],
    method,
    transactionId: bytes.subarray(8, 20),
    attrs,
  };
}

export function errorCode(msg: StunMessage): number | undefined {
  const v = msg.attrs.get(ATTR.errorCode);
  return v === undefined ? undefined : (v[2] as number) * 100 + (v[3] as number);
}

export function xorAddress(msg: StunMessage, attr: number): { address: string; port: number } | undefined {
  const v = msg.attrs.get(attr);
  if (v === undefined || v[1] !== 0x01) return undefined; // IPv4 only; the test runs on 127.0.0.1
  const port = v.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  const ip = (v.readUInt32BE(4) ^ MAGIC_COOKIE) >>> 0;
  return { address: [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.'), port };
}

/** One UDP socket talking to one STUN server; `transact` retransmits until an answer or the deadline. */
export class StunClient {
  private readonly socket = dgram.createSocket('udp4');
  private readonly waiting = new Map<string, (m: StunMessage) => void>();

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.socket.on('message', (bytes) => {
      const msg = decodeMessage(bytes);
      this.waiting.get(msg.transactionId.toString('hex'))?.(msg);
    });
  }

  async open(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
  }

  /** UDP may drop datagrams, so resend every 200 ms (RFC 5389 uses backoff; fixed is fine on loopback). */
  transact(req: { bytes: Buffer; transactionId: Buffer }, timeoutMs = 3000): Promise<StunMessage> {
    const id = req.transactionId.toString('hex');
    return new Promise((resolve, reject) => {
      const send = () => this.socket.send(req.bytes, this.port, this.host);
      const resend = setInterval(send, 200);
      const deadline = setTimeout(() => {
        clearInterval(resend);
        this.waiting.delete(id);
        reject(new Error(`no STUN answer from ${this.host}:${this.port} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearInterval(resend);
        clearTimeout(deadline);
        this.waiting.delete(id);
        resolve(m);
      });
      send();
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Long-term credential key (RFC 5389 section 15.4): MD5(username ":" realm ":" password). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`).digest();
}

const UDP_TRANSPORT = Buffer.from([17, 0, 0, 0]);

/**
 * TURN Allocate with the long-term credential mechanism: a first request without credentials gets
 * 401 with REALM and NONCE, the second carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
 * Returns the final answer; on success the allocation is released again (Refresh, lifetime 0).
 */
export async function allocate(client: StunClient, username: string, password: string): Promise<StunMessage> {
  const challenge = await client.transact(encodeRequest(METHOD.allocate, [[ATTR.requestedTransport, UDP_TRANSPORT]]));
  if (challenge.cls !== 'error' || errorCode(challenge) !== 401)
    throw new Error(`expected a 401 challenge, got ${challenge.cls} ${errorCode(challenge)}`);
  const realm = challenge.attrs.get(ATTR.realm);
  const nonce = challenge.attrs.get(ATTR.nonce);
  if (realm === undefined || nonce === undefined) throw new Error('401 without REALM or NONCE');
  const key = longTermKey(username, realm.toString('utf8'), password);
  const auth: Array<[number, Buffer]> = [
    [ATTR.username, Buffer.from(username, 'utf8')],
    [ATTR.realm, realm],
    [ATTR.nonce, nonce],
  ];
  const answer = await client.transact(encodeRequest(METHOD.allocate, [[ATTR.requestedTransport, UDP_TRANSPORT], ...auth], key));
  if (answer.cls === 'success') {
    const lifetimeZero = Buffer.alloc(4);
    const released = await client.transact(encodeRequest(METHOD.refresh, [[ATTR.lifetime, lifetimeZero], ...auth], key));
    if (released.cls !== 'success') throw new Error(`Refresh(0) failed: ${errorCode(released)}`);
  }
  return answer;
}
