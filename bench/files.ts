/**
 * bench:files (Node part) — a file through the file path of docs/PROTOCOL.md 5.16 (AES-256-GCM
 * chunks on their own data channel, want-grants on a control channel, the protocol/files machines)
 * against a raw data channel between the same two node-datachannel peers on 127.0.0.1 sending
 * messages of the same size; then the owner relaying one file to three members. Memory: the
 * receivers hash and drop each chunk (a driver writes it to disk), so peak RSS shows the path itself
 * stays bounded. MIB=256 by default. The browser part (two Chromium pages) is not written yet.
 */
import { createHash } from 'node:crypto';
import { generateAeadKey } from '../crypto/index.ts';
import {
  asFileId,
  chunkArrived,
  chunkOpened,
  chunkPlainLength,
  chunkRefused,
  chunkSent,
  decodeFileControl,
  encodeFileControl,
  FILE_CHUNK,
  FileError,
  nextToSend,
  onControl,
  openChunk,
  parseChunkFrame,
  sealChunk,
  startReceive,
  startSend,
  verified,
  type FileOffer,
  type ReceiveEffect,
  type ReceiveState,
  type SendState,
} from '../protocol/files/index.ts';
import { nodeAead } from '../signaling/aead-node.ts';
import { nodeWrtc, releaseNodeWrtc } from '../signaling/node-wrtc.ts';

const TOTAL = Number(process.env.MIB ?? 256) * 1024 * 1024;
const HIGH = 4 * 1024 * 1024;
const wrtc = nodeWrtc({ loopback: true }) as unknown as { RTCPeerConnection: typeof RTCPeerConnection };

interface Pair {
  a: RTCPeerConnection;
  b: RTCPeerConnection;
  /** Channels a -> b: data (files) and control (stands in for the link). */
  data: [RTCDataChannel, RTCDataChannel];
  ctl: [RTCDataChannel, RTCDataChannel];
}

async function connect(): Promise<Pair> {
  const a = new wrtc.RTCPeerConnection({ iceServers: [] });
  const b = new wrtc.RTCPeerConnection({ iceServers: [] });
  a.onicecandidate = (e) => void (e.candidate && b.addIceCandidate(e.candidate).catch(() => undefined));
  b.onicecandidate = (e) => void (e.candidate && a.addIceCandidate(e.candidate).catch(() => undefined));
  const incoming = new Map<string, RTCDataChannel>();
  const got = new Promise<void>((r) => {
    b.ondatachannel = (e) => {
      e.channel.binaryType = 'arraybuffer';
      incoming.set(e.channel.label, e.channel);
      if (incoming.size === 2) r();
    };
  });
  const data = a.createDataChannel('zeroroom-files/1');
  const ctl = a.createDataChannel('control');
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription(answer);
  await Promise.all([data, ctl].map((c) => new Promise((r) => (c.readyState === 'open' ? r(null) : (c.onopen = r)))));
  await got;
  for (const c of [data, ctl]) c.binaryType = 'arraybuffer';
  data.bufferedAmountLowThreshold = 1024 * 1024;
  return { a, b, data: [data, incoming.get('zeroroom-files/1')!], ctl: [ctl, incoming.get('control')!] };
}

/** Deterministic file content: chunk i is a repeated pattern of its index (no 256 MiB in memory). */
function chunkBytes(offer: FileOffer, i: number): Uint8Array {
  const out = new Uint8Array(chunkPlainLength(offer.size, i));
  out.fill(i & 0xff);
  if (out.length >= 4) new DataView(out.buffer).setUint32(0, i);
  return out;
}

function makeOffer(size: number): FileOffer {
  const h = createHash('sha256');
  const probe: FileOffer = {
    file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
    name: 'bench.bin',
    size,
    mime: '',
    chunk: FILE_CHUNK,
    hash: new Uint8Array(32),
    fkey: generateAeadKey(),
    ts: 0,
  };
  const count = Math.max(1, Math.ceil(size / FILE_CHUNK));
  for (let i = 0; i < count; i++) h.update(chunkBytes(probe, i));
  return { ...probe, hash: new Uint8Array(h.digest()) };
}

/** Serve `offer` on `p` (a -> b) from `source(i)`, limited to `available()` chunks. */
function serve(
  p: Pair,
  offer: FileOffer,
  source: (i: number) => Uint8Array,
  available: () => number = () => Infinity,
): { pump: () => void } {
  let s: SendState = startSend(offer);
  let busy = false;
  const pump = (): void => {
    if (busy) return;
    busy = true;
    void (async () => {
      for (let i = nextToSend(s, available()); i !== null && p.data[0].bufferedAmount < HIGH; i = nextToSend(s, available())) {
        const frame = await sealChunk(nodeAead, offer, i, source(i));
        if (nextToSend(s, available()) !== i) continue; // a want restarted the transfer meanwhile
        p.data[0].send(frame as Uint8Array<ArrayBuffer>);
        s = chunkSent(s, i);
      }
      busy = false;
    })();
  };
  p.ctl[0].onmessage = (e: MessageEvent<ArrayBuffer>) => {
    s = onControl(s, decodeFileControl(new Uint8Array(e.data)));
    pump();
  };
  p.data[0].onbufferedamountlow = pump;
  return { pump };
}

/** Receive `offer` on `p` (b side); `onChunk` sees each verified chunk. Resolves when the hash matched. */
function receive(p: Pair, offer: FileOffer, onChunk: (i: number, c: Uint8Array) => void = () => undefined): Promise<void> {
  const h = createHash('sha256');
  let st: ReceiveState;
  let done!: () => void;
  let fail!: (e: Error) => void;
  const finished = new Promise<void>((res, rej) => ((done = res), (fail = rej)));
  const apply = (effects: readonly ReceiveEffect[]): void => {
    for (const e of effects) {
      if (e.kind === 'send') p.ctl[1].send(encodeFileControl(e.msg) as Uint8Array<ArrayBuffer>);
      if (e.kind === 'store') {
        h.update(e.plaintext);
        onChunk(e.index, e.plaintext);
      }
      if (e.kind === 'verify') {
        const v = verified(st, Buffer.from(h.digest()).equals(Buffer.from(offer.hash)));
        st = v.state;
        apply(v.effects);
      }
      if (e.kind === 'finished') (e.ok ? done : () => fail(new Error(`transfer failed: ${e.code}`)))();
    }
  };
  let queue = Promise.resolve();
  p.data[1].onmessage = (ev: MessageEvent<ArrayBuffer>) => {
    const frame = new Uint8Array(ev.data);
    queue = queue.then(async () => {
      const c = parseChunkFrame(frame);
      const a = chunkArrived(st, c.index);
      st = a.state;
      apply(a.effects);
      if (!a.open) return;
      try {
        const plain = await openChunk(nodeAead, offer, c);
        const s = chunkOpened(st, c.index, plain);
        st = s.state;
        apply(s.effects);
      } catch (e) {
        if (!(e instanceof FileError)) throw e;
        const s = chunkRefused(st, e);
        st = s.state;
        apply(s.effects);
      }
    });
  };
  const s0 = startReceive(offer);
  st = s0.state;
  apply(s0.effects);
  return finished;
}

async function raw(p: Pair, bytes: number): Promise<number> {
  const msg = new Uint8Array(FILE_CHUNK + 37);
  const count = Math.ceil(bytes / FILE_CHUNK);
  let got = 0;
  const all = new Promise<void>((r) => (p.data[1].onmessage = () => ++got === count && r()));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    p.data[0].send(msg);
    if (p.data[0].bufferedAmount > HIGH) await new Promise<void>((r) => (p.data[0].onbufferedamountlow = () => r()));
  }
  await all;
  p.data[0].onbufferedamountlow = null;
  return (count * FILE_CHUNK) / ((performance.now() - t0) / 1000) / 1e6;
}

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

const p = await connect();
const rawMBs = await raw(p, TOTAL);
const offer = makeOffer(TOTAL);
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const got = receive(p, offer);
serve(p, offer, (i) => chunkBytes(offer, i));
await got;
const fileMBs = TOTAL / ((performance.now() - t0) / 1000) / 1e6;
console.log(`bench:files (Node, node-datachannel on 127.0.0.1, one process for both ends), ${TOTAL / 1024 / 1024} MiB in 64 KiB chunks`);
console.log(`raw data channel (65,573-byte messages): ${rawMBs.toFixed(1)} MB/s`);
console.log(`file path (AES-256-GCM chunks, grants, SHA-256 check): ${fileMBs.toFixed(1)} MB/s`);
console.log(`  ratio (file / raw): ${(fileMBs / rawMBs).toFixed(2)}`);
console.log(`  peak RSS ${(peakRss / 1e6).toFixed(0)} MB (before the transfer ${(rssBefore / 1e6).toFixed(0)} MB)`);

// Owner relaying one file to three members: sender -> owner, owner -> 3 members, as it verifies.
const up = await connect();
const downs = [await connect(), await connect(), await connect()];
const relayOffer = makeOffer(TOTAL / 4);
const kept: Uint8Array[] = []; // the owner's copy (history); a driver keeps it on disk
let have = 0;
const servers = downs.map((d) =>
  serve(
    d,
    relayOffer,
    (i) => kept[i] as Uint8Array,
    () => have,
  ),
);
const t1 = performance.now();
const ownerGot = receive(up, relayOffer, (i, c) => {
  kept[i] = c;
  have = i + 1;
  for (const s of servers) s.pump();
});
serve(up, relayOffer, (i) => chunkBytes(relayOffer, i));
await Promise.all([ownerGot, ...downs.map((d) => receive(d, relayOffer))]);
const relayS = (performance.now() - t1) / 1000;
console.log(
  `owner relay: ${(relayOffer.size / 1024 / 1024).toFixed(0)} MiB to 3 members in ${relayS.toFixed(1)} s (${((3 * relayOffer.size) / relayS / 1e6).toFixed(1)} MB/s delivered in total)`,
);

clearInterval(rssTimer);
for (const x of [p, up, ...downs]) {
  x.a.close();
  x.b.close();
}
await releaseNodeWrtc();
