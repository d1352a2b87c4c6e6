/**
 * The page of bench:files' browser part (bench/files-browser.ts drives it through playwright-core):
 * a real PeerLink (startOwner / joinRoom through our signaling server) and FileTransfers with
 * WebCrypto AES-GCM over the link's files channel (docs/PROTOCOL.md 5.17.3), exactly the path the
 * web app will use, with the file bytes generated and the received bytes hashed and dropped (the
 * app stores them in IndexedDB), so the figures show the path itself. Also a raw mode: the same
 * files RTCDataChannel sending 65,573-byte messages without sealing, for the ratio.
 */
import { createSHA256 } from 'hash-wasm';
import { asBoxPublicKey, fromHex, generateAeadKey, generateBoxKeyPair, toHex, webCryptoAead, type AeadKey } from '../../crypto/index.ts';
import { asFileId, chunkCount, chunkPlainLength, FILE_CHUNK, FileTransfers, type FileOffer } from '../../protocol/files/index.ts';
import { joinRoom, startOwner, type OwnerHandle, type PeerLink } from '../../protocol/link/peer-link.ts';

/** A file offer as it crosses page.evaluate (hex for bytes). */
export interface WireOffer {
  readonly file: string;
  readonly size: number;
  readonly hash: string;
  readonly fkey: string;
}

const RAW_MESSAGE = FILE_CHUNK + 37;
const RAW_HIGH = 4 * 1024 * 1024;

const fromWire = (w: WireOffer): FileOffer => ({
  file: asFileId(fromHex(w.file, 16)),
  name: 'bench.bin',
  size: w.size,
  mime: '',
  chunk: FILE_CHUNK,
  hash: fromHex(w.hash, 32),
  fkey: fromHex(w.fkey, 32) as AeadKey,
  ts: 0,
});

/** Chunk `i` of a generated file: a pattern of its index (no file in memory). */
function generated(size: number, i: number): Uint8Array {
  const out = new Uint8Array(chunkPlainLength(size, i));
  out.fill(i & 0xff);
  if (out.length >= 4) new DataView(out.buffer).setUint32(0, i);
  return out;
}

interface Source {
  read(i: number): Uint8Array;
  available?(): number;
}
interface Sink {
  update(plain: Uint8Array): void;
  digest(): string;
  onStored?(i: number, plain: Uint8Array): void;
  done(ok: boolean, why: string): void;
}

/** Time spent in the page per step, for "where does the time go". */
const spent = { seal: 0, open: 0, sealCalls: 0, openCalls: 0, hash: 0, send: 0, progress: 0, controls: 0 };
const timedAead = {
  name: 'webcrypto (timed)',
  async seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plain: Uint8Array): Promise<Uint8Array> {
    const t = performance.now();
    const r = await webCryptoAead.seal(key, nonce, ad, plain);
    spent.seal += performance.now() - t;
    spent.sealCalls++;
    return r;
  },
  async open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
    const t = performance.now();
    const r = await webCryptoAead.open(key, nonce, ad, sealed);
    spent.open += performance.now() - t;
    spent.openCalls++;
    return r;
  },
};

/** One link end: FileTransfers over its files channel, control messages as link messages. */
class End {
  readonly sources = new Map<string, Source>();
  readonly sinks = new Map<string, Sink>();
  readonly transfers: FileTransfers;
  raw: { count: number; got: number; done: () => void } | null = null;
  errors: string[] = [];

  constructor(readonly link: PeerLink) {
    this.transfers = new FileTransfers({
      aead: timedAead,
      sendFrame: (f) => {
        const t = performance.now();
        link.files?.send(f);
        spent.send += performance.now() - t;
      },
      channelBuffered: () => link.files?.bufferedAmount ?? 0,
      sendControl: (m) => void link.send(m),
      read: (o, i) => {
        const s = this.sources.get(toHex(o.file));
        return s === undefined ? Promise.reject(new Error('not our file')) : Promise.resolve(s.read(i));
      },
      available: (o) => this.sources.get(toHex(o.file))?.available?.() ?? chunkCount(o.size),
      store: (o, i, plain) => {
        const s = this.sinks.get(toHex(o.file));
        if (s === undefined) return Promise.reject(new Error('not receiving that file'));
        const t = performance.now();
        s.update(plain);
        spent.hash += performance.now() - t;
        s.onStored?.(i, plain);
        return Promise.resolve();
      },
      verify: (o) => Promise.resolve(this.sinks.get(toHex(o.file))?.digest() === toHex(o.hash)),
      event: (e) => {
        if (e.kind === 'progress') spent.progress = e.done;
        if (e.kind === 'received') this.sinks.get(toHex(e.offer.file))?.done(true, 'received');
        if (e.kind === 'failed') this.sinks.get(toHex(e.offer.file))?.done(false, e.code);
      },
      fail: (e) => this.errors.push(String(e)),
    });
    link.on('message', (m) => {
      spent.controls++;
      try {
        this.transfers.control(m);
      } catch (e) {
        this.errors.push(String(e));
      }
    });
    link.on('files-frame', (f) => {
      const raw = this.raw;
      if (raw !== null) {
        if (++raw.got === raw.count) raw.done();
        return;
      }
      this.transfers.frame(f).catch((e: unknown) => this.errors.push(String(e)));
    });
    link.on('files-drain', () => this.transfers.pump());
    link.on('files-open', () => {
      this.transfers.resume();
      this.transfers.pump();
    });
  }
}

const state: { owner: OwnerHandle | null; ends: Map<string, End>; kept: Uint8Array[]; have: number } = {
  owner: null,
  ends: new Map(),
  kept: [],
  have: 0,
};
const filesOpen = (link: PeerLink): Promise<void> => new Promise((r) => (link.files !== null ? r() : link.on('files-open', () => r())));

const bench = {
  /** Owner: start on the server and admit these tokens; returns our key (hex). */
  owner(url: string, serverKey: string, tokens: string[]): string {
    const keys = generateBoxKeyPair();
    const pending = new Set(tokens);
    state.owner = startOwner({
      signalingUrl: url,
      serverKey: asBoxPublicKey(fromHex(serverKey, 32)),
      permanentKeys: keys,
      iceServers: [],
      pendingTokens: () => [...pending].map((t) => fromHex(t, 32)),
      acceptToken: (t) => pending.delete(toHex(t)),
      onLink: (l) => state.ends.set(toHex(l.peerKey), new End(l)),
    });
    return toHex(keys.publicKey);
  },

  /** Owner: wait until the link of `member` (hex key) has its files channel. */
  async ownerLinkReady(member: string): Promise<void> {
    while (!state.ends.has(member)) await new Promise((r) => setTimeout(r, 20));
    await filesOpen((state.ends.get(member) as End).link);
  },

  /** Member: join the owner; resolves with our key (hex) once the files channel is open. */
  async member(url: string, serverKey: string, ownerKey: string, token: string): Promise<string> {
    const keys = generateBoxKeyPair();
    const link = await joinRoom({
      signalingUrl: url,
      serverKey: asBoxPublicKey(fromHex(serverKey, 32)),
      ownerKey: asBoxPublicKey(fromHex(ownerKey, 32)),
      token: fromHex(token, 32),
      permanentKeys: keys,
      iceServers: [],
    });
    state.ends.set('owner', new End(link));
    await filesOpen(link);
    return toHex(keys.publicKey);
  },

  /** A generated file of `size` bytes: its offer (hashed here, before any timing). */
  async makeOffer(size: number): Promise<WireOffer> {
    const h = await createSHA256();
    const count = chunkCount(size);
    for (let i = 0; i < count; i++) h.update(generated(size, i));
    return { file: toHex(crypto.getRandomValues(new Uint8Array(16))), size, hash: h.digest('hex'), fkey: toHex(generateAeadKey()) };
  },

  /** Serve a generated file on the link to `peer` ('owner' on a member page). */
  serve(peer: string, w: WireOffer): void {
    const end = state.ends.get(peer) as End;
    end.sources.set(w.file, { read: (i) => generated(w.size, i) });
    end.transfers.serve(fromWire(w));
  },

  /** Receive a file on the link from `peer`; resolves when it is verified. `keep`: keep the chunks (relay). */
  async receive(peer: string, w: WireOffer, keep = false): Promise<{ ms: number; errors: string[] }> {
    const end = state.ends.get(peer) as End;
    const h = await createSHA256();
    const offer = fromWire(w);
    const t0 = performance.now();
    const done = new Promise<void>((resolve, reject) =>
      end.sinks.set(w.file, {
        update: (p) => h.update(p),
        digest: () => h.digest('hex'),
        onStored: keep
          ? (i, plain) => {
              state.kept[i] = plain;
              state.have = i + 1; // chunks are stored in order
              for (const e of state.ends.values()) if (e !== end && e.sources.has(w.file)) e.transfers.pump();
            }
          : undefined,
        done: (ok, why) => (ok ? resolve() : reject(new Error(why))),
      }),
    );
    end.transfers.accept(offer);
    await done;
    return { ms: performance.now() - t0, errors: end.errors };
  },

  /** Owner relay: serve to `peer` what the owner has verified so far of `w` (kept by receive(..., true)). */
  relay(peer: string, w: WireOffer): void {
    const end = state.ends.get(peer) as End;
    end.sources.set(w.file, {
      read: (i) => state.kept[i] as Uint8Array,
      available: () => state.have,
    });
    end.transfers.serve(fromWire(w));
  },

  /** Raw: expect `count` messages on the files channel of the link to `peer`. */
  rawReceive(peer: string, count: number): Promise<number> {
    const end = state.ends.get(peer) as End;
    const t0 = performance.now();
    return new Promise((resolve) => {
      end.raw = {
        count,
        got: 0,
        done: () => {
          end.raw = null;
          resolve(performance.now() - t0);
        },
      };
    });
  },

  /** Raw: send `count` 65,573-byte messages on the files channel to `peer`, pausing above 4 MiB buffered. */
  async rawSend(peer: string, count: number): Promise<void> {
    const link = (state.ends.get(peer) as End).link;
    const msg = new Uint8Array(RAW_MESSAGE);
    for (let i = 0; i < count; i++) {
      const files = link.files;
      if (files === null) throw new Error('files channel gone');
      files.send(msg);
      if (files.bufferedAmount > RAW_HIGH)
        await new Promise<void>((r) => {
          const off = link.on('files-drain', () => (off(), r()));
        });
    }
  },

  /** AES-256-GCM through WebCrypto on 64 KiB, alone (MB/s), seal and open. */
  async aeadRate(mib: number): Promise<{ seal: number; open: number }> {
    const key = generateAeadKey();
    const nonce = new Uint8Array(12);
    const ad = new Uint8Array(46);
    const plain = new Uint8Array(FILE_CHUNK);
    const n = (mib * 1024 * 1024) / FILE_CHUNK;
    let t = performance.now();
    let sealed: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < n; i++) sealed = await webCryptoAead.seal(key, nonce, ad, plain);
    const seal = (n * FILE_CHUNK) / ((performance.now() - t) / 1000) / 1e6;
    t = performance.now();
    for (let i = 0; i < n; i++) await webCryptoAead.open(key, nonce, ad, sealed);
    const open = (n * FILE_CHUNK) / ((performance.now() - t) / 1000) / 1e6;
    return { seal, open };
  },

  /** SHA-256 (hash-wasm) on 64 KiB pieces alone (MB/s): what the receiver's check costs. */
  async hashRate(mib: number): Promise<number> {
    const h = await createSHA256();
    const plain = new Uint8Array(FILE_CHUNK);
    const n = (mib * 1024 * 1024) / FILE_CHUNK;
    const t = performance.now();
    for (let i = 0; i < n; i++) h.update(plain);
    h.digest('hex');
    return (n * FILE_CHUNK) / ((performance.now() - t) / 1000) / 1e6;
  },

  /** Time spent per step so far, without reset. */
  peek(): typeof spent & { errors: string[]; buffered: number[] } {
    const ends = [...state.ends.values()];
    return { ...spent, errors: ends.flatMap((e) => e.errors), buffered: ends.map((e) => e.link.files?.bufferedAmount ?? -1) };
  },

  /** Time spent per step so far, then reset. */
  spent(): typeof spent {
    const out = { ...spent };
    for (const k of Object.keys(spent) as (keyof typeof spent)[]) spent[k] = 0;
    return out;
  },

  /** Let the relay's kept copy go (the next measurement starts clean). */
  dropKept(): void {
    state.kept = [];
    state.have = 0;
  },
};

(globalThis as unknown as { bench: typeof bench }).bench = bench;
export type Bench = typeof bench;
