/**
 * bench:files (Node part) — a file through the file path of docs/PROTOCOL.md 5.17 (AES-256-GCM
 * chunks on their own data channel, want-grants on a control channel, the protocol/files machines)
 * against a raw data channel between the same two node-datachannel peers on 127.0.0.1 sending
 * messages of the same size; then the owner relaying one file to three members. Both go through
 * FileTransfers, the driver that CLI and web share. Memory: the
 * receivers hash and drop each chunk (a driver writes it to disk), so peak RSS shows the path itself
 * stays bounded. MIB=256 by default. The browser part (Chromium pages, the link's files channel) is
 * bench/files-browser.ts; `npm run bench:files` runs both.
 */
import { createHash } from 'node:crypto';
import { generateAeadKey } from '../crypto/index.ts';
import { asFileId, chunkPlainLength, FILE_CHUNK, FileTransfers, type FileOffer } from '../protocol/files/index.ts';
import { nodeAead } from '../signaling/aead-node.ts';
import { releaseNodeWrtc } from '../signaling/node-wrtc.ts';
import { connectPair as connect, type RtcPair as Pair } from '../test/files/rtc-pair.ts';

const TOTAL = Number(process.env.MIB ?? 256) * 1024 * 1024;
const HIGH = 4 * 1024 * 1024;
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

/** One transfer a -> b through FileTransfers (the shared driver); `onStored` sees each verified chunk. */
function transfer(
  p: Pair,
  offer: FileOffer,
  source: (i: number) => Uint8Array,
  opts: { available?: () => number; onStored?: (i: number, c: Uint8Array) => void } = {},
): { sender: FileTransfers; done: Promise<void> } {
  const h = createHash('sha256');
  let finish!: () => void;
  let fail!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));
  const common = { aead: nodeAead, fail, verify: () => Promise.resolve(false), store: () => Promise.reject(new Error('not a receiver')) };
  const sender = new FileTransfers({
    ...common,
    sendFrame: (f) => p.files[0].send(f as Uint8Array<ArrayBuffer>),
    channelBuffered: () => p.files[0].bufferedAmount,
    sendControl: (m) => p.ctl[0].send(m as Uint8Array<ArrayBuffer>),
    read: (_o, i) => Promise.resolve(source(i)),
    available: opts.available === undefined ? undefined : () => (opts.available as () => number)(),
    event: () => undefined,
  });
  const receiver = new FileTransfers({
    ...common,
    sendFrame: () => fail(new Error('receiver sends no chunks')),
    channelBuffered: () => 0,
    sendControl: (m) => p.ctl[1].send(m as Uint8Array<ArrayBuffer>),
    read: () => Promise.reject(new Error('not a sender')),
    store: (_o, i, plain) => {
      h.update(plain); // a real host writes it to disk or IndexedDB; here it is hashed and dropped
      opts.onStored?.(i, plain);
      return Promise.resolve();
    },
    verify: (o) => Promise.resolve(Buffer.from(h.digest()).equals(Buffer.from(o.hash))),
    event: (e) => (e.kind === 'received' ? finish() : e.kind === 'failed' ? fail(new Error(e.code)) : undefined),
  });
  p.ctl[0].onmessage = (e: MessageEvent<ArrayBuffer>) => sender.control(new Uint8Array(e.data));
  p.ctl[1].onmessage = (e: MessageEvent<ArrayBuffer>) => receiver.control(new Uint8Array(e.data));
  p.files[1].onmessage = (e: MessageEvent<ArrayBuffer>) => void receiver.frame(new Uint8Array(e.data)).catch(fail);
  p.files[0].onbufferedamountlow = () => sender.pump();
  sender.serve(offer);
  receiver.accept(offer);
  return { sender, done };
}

async function raw(p: Pair, bytes: number): Promise<number> {
  const msg = new Uint8Array(FILE_CHUNK + 37);
  const count = Math.ceil(bytes / FILE_CHUNK);
  let got = 0;
  const all = new Promise<void>((r) => (p.files[1].onmessage = () => ++got === count && r()));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    p.files[0].send(msg);
    if (p.files[0].bufferedAmount > HIGH) await new Promise<void>((r) => (p.files[0].onbufferedamountlow = () => r()));
  }
  await all;
  p.files[0].onbufferedamountlow = null;
  return (count * FILE_CHUNK) / ((performance.now() - t0) / 1000) / 1e6;
}

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

const p = await connect();
const rawMBs = await raw(p, TOTAL);
const offer = makeOffer(TOTAL);
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
await transfer(p, offer, (i) => chunkBytes(offer, i)).done;
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
const kept: Uint8Array[] = []; // the owner's copy (history); a host keeps it on disk
let have = 0;
const t1 = performance.now();
const toMembers = downs.map((d) => transfer(d, relayOffer, (i) => kept[i] as Uint8Array, { available: () => have }));
const toOwner = transfer(up, relayOffer, (i) => chunkBytes(relayOffer, i), {
  onStored: (i, c) => {
    kept[i] = c;
    have = i + 1;
    for (const m of toMembers) m.sender.pump();
  },
});
await Promise.all([toOwner.done, ...toMembers.map((m) => m.done)]);
const relayS = (performance.now() - t1) / 1000;
console.log(
  `owner relay: ${(relayOffer.size / 1024 / 1024).toFixed(0)} MiB to 3 members in ${relayS.toFixed(1)} s (${((3 * relayOffer.size) / relayS / 1e6).toFixed(1)} MB/s delivered in total)`,
);

clearInterval(rssTimer);
for (const x of [p, up, ...downs]) x.close();
await releaseNodeWrtc();
