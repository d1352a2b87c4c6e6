/**
 * bench:link — peer-link set-up time and throughput, each with its baseline (issue 4):
 *  1. "invite opened" -> "link open" (joinRoom() call until its data channel is open and the first
 *     frame round trip is possible), vs a bare RTCPeerConnection connected through a plain `ws` relay
 *     (offer/answer/candidates as JSON, no SaltyRTC, no simple-peer).
 *  2. Throughput of 16 KiB messages over a link (encrypted frames, chunking, acks, watermarks) vs a
 *     raw data channel on the same implementation (node-datachannel) with bufferedAmount backpressure.
 * Everything on 127.0.0.1, one process (both ends share the same 2 cores).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { generateBoxKeyPair, systemRandom, toHex } from '../crypto/index.ts';
import { attachSignalingServer } from '../signaling/server.ts';
import { joinRoom, startOwner, type PeerLink } from '../protocol/link/peer-link.ts';
import { nodeWrtc, releaseNodeWrtc } from '../signaling/node-wrtc.ts';
import type { WebSocketCtor } from '../protocol/saltyrtc/client-driver.ts';

const CONNECTS = Number(process.env.CONNECTS ?? 20);
const TOTAL_BYTES = Number(process.env.MIB ?? 64) * 1024 * 1024;
const MSG = Number(process.env.MSG ?? 16 * 1024);
// Typed as the DOM API the bare baseline uses below (the polyfill implements it).
const wrtc = nodeWrtc({ loopback: true }) as unknown as { RTCPeerConnection: typeof RTCPeerConnection };
const WS = WebSocket as unknown as WebSocketCtor;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN;
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
/** libdatachannel/libjuice sometimes needs one ~1 s ICE retransmission: report both modes. */
const SLOW_MS = 500;
const modes = (xs: number[]): string => {
  const fast = xs.filter((x) => x < SLOW_MS);
  return `fast-mode median ${fmt(median(fast))} (${fast.length}/${xs.length}), ${xs.length - fast.length} took ~1 s`;
};

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

// --- 1. set-up time -------------------------------------------------------------------------------

async function linkConnects(url: string): Promise<{ times: number[]; owner: { close(): void }; pair: [PeerLink, PeerLink] }> {
  const ownerKeys = generateBoxKeyPair();
  const tokens = new Set<string>();
  const ownerLinks: PeerLink[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const owner = startOwner({
    signalingUrl: url,
    permanentKeys: ownerKeys,
    iceServers: [],
    wrtc,
    WebSocket: WS,
    pendingTokens: () => [...tokens].map((t) => Buffer.from(t, 'hex')),
    acceptToken: (t) => tokens.delete(toHex(t)),
    onLink: (l) => ownerLinks.push(l),
    onSignalingState: (r) => r && ready(),
  });
  await isReady;
  const times: number[] = [];
  const members: PeerLink[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const token = systemRandom(32);
    tokens.add(toHex(token));
    const t0 = performance.now(); // the invite (owner key + token) has just been opened
    const link = await joinRoom({
      signalingUrl: url,
      ownerKey: ownerKeys.publicKey,
      token,
      permanentKeys: generateBoxKeyPair(),
      iceServers: [],
      wrtc,
      WebSocket: WS,
    });
    times.push(performance.now() - t0);
    members.push(link);
  }
  // Keep the last pair for the throughput run; close the others.
  const last = members.pop()!;
  for (const m of members) m.close();
  while (ownerLinks.length < CONNECTS) await new Promise((r) => setTimeout(r, 5)); // owner side opens a moment later
  const ownerLast = ownerLinks.find((l) => toHex(l.peerKey) === toHex(last.peerKey) || false) ?? ownerLinks[ownerLinks.length - 1]!;
  return { times, owner, pair: [last, ownerLast] };
}

/** Plain ws relay: forwards every message to the other socket of the same room name. */
function startRelay(server: http.Server): WebSocketServer {
  const wss = new WebSocketServer({ server });
  const rooms = new Map<string, WebSocket[]>();
  wss.on('connection', (ws, req) => {
    const room = req.url ?? '/';
    const peers = rooms.get(room) ?? [];
    peers.push(ws);
    rooms.set(room, peers);
    ws.on('message', (data) => {
      for (const p of peers) if (p !== ws && p.readyState === WebSocket.OPEN) p.send(data.toString());
    });
  });
  return wss;
}

interface BarePair {
  a: RTCPeerConnection;
  b: RTCPeerConnection;
  ca: RTCDataChannel;
  cb: RTCDataChannel;
}

async function bareConnect(relayUrl: string, room: string): Promise<{ ms: number; pair: BarePair }> {
  const t0 = performance.now();
  const wsA = new WebSocket(`${relayUrl}/${room}`);
  const wsB = new WebSocket(`${relayUrl}/${room}`);
  await Promise.all([wsA, wsB].map((w) => new Promise((r) => w.once('open', r))));
  const a = new wrtc.RTCPeerConnection({ iceServers: [] });
  const b = new wrtc.RTCPeerConnection({ iceServers: [] });
  /** libdatachannel refuses candidates while its ICE transport is still being created: retry briefly. */
  const addCandidate = async (pc: RTCPeerConnection, c: RTCIceCandidateInit): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await pc.addIceCandidate(c);
      } catch (e) {
        if (attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  };
  const wire = (pc: RTCPeerConnection, ws: WebSocket): void => {
    pc.onicecandidate = (e) => {
      if (e.candidate !== null) ws.send(JSON.stringify({ candidate: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid } }));
    };
    // Candidates that arrive before the descriptions are in place wait for them (as every WebRTC app does).
    const early: RTCIceCandidateInit[] = [];
    let ready = false;
    const flush = async (): Promise<void> => {
      ready = true;
      for (const c of early.splice(0)) await addCandidate(pc, c);
    };
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { sdp?: RTCSessionDescriptionInit; candidate?: RTCIceCandidateInit };
      (async () => {
        if (m.sdp !== undefined) {
          await pc.setRemoteDescription(m.sdp);
          if (m.sdp.type === 'offer') {
            const answer = await pc.createAnswer();
            await pc.setLocalDescription(answer);
            ws.send(JSON.stringify({ sdp: { type: answer.type, sdp: answer.sdp } }));
          }
          await flush();
        } else if (m.candidate !== undefined) {
          if (ready) await addCandidate(pc, m.candidate);
          else early.push(m.candidate);
        }
      })().catch((e: unknown) => console.error('baseline signaling failed:', e));
    });
  };
  wire(a, wsA);
  wire(b, wsB);
  const ca = a.createDataChannel('bench');
  const cbP = new Promise<RTCDataChannel>((r) => (b.ondatachannel = (e) => r(e.channel)));
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  wsA.send(JSON.stringify({ sdp: { type: offer.type, sdp: offer.sdp } }));
  await new Promise((r) => (ca.onopen = r));
  const ms = performance.now() - t0;
  const cb = await cbP;
  wsA.close();
  wsB.close();
  return { ms, pair: { a, b, ca, cb } };
}

// --- 2. throughput ----------------------------------------------------------------------------------

async function linkThroughput(from: PeerLink, to: PeerLink): Promise<number> {
  const count = Math.floor(TOTAL_BYTES / MSG);
  const msg = systemRandom(MSG);
  let got = 0;
  const done = new Promise<void>((r) => to.on('message', () => ++got === count && r()));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    from.send(msg);
    if (from.bufferedAmount > 4 * 1024 * 1024)
      await new Promise<void>((r) => {
        const off = from.on('drain', () => {
          off();
          r();
        });
      });
  }
  await done;
  return (count * MSG) / ((performance.now() - t0) / 1000) / 1e6;
}

async function rawThroughput(p: BarePair): Promise<number> {
  const count = Math.floor(TOTAL_BYTES / MSG);
  const msg = systemRandom(MSG);
  let got = 0;
  const done = new Promise<void>((r) => {
    p.cb.onmessage = () => {
      if (++got === count) r();
    };
  });
  p.ca.bufferedAmountLowThreshold = 256 * 1024;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    p.ca.send(msg as Uint8Array<ArrayBuffer>); // RTCDataChannel.send wants an ArrayBuffer-backed view
    if (p.ca.bufferedAmount > 1024 * 1024) await new Promise<void>((r) => (p.ca.onbufferedamountlow = () => r()));
  }
  await done;
  return (count * MSG) / ((performance.now() - t0) / 1000) / 1e6;
}

// --- main ---------------------------------------------------------------------------------------------

const sigHttp = http.createServer();
const signaling = attachSignalingServer({
  server: sigHttp,
  permanentKeys: [generateBoxKeyPair()],
  limits: { maxConnectionsPerIp: 10_000, newConnectionsPerSecondPerIp: 10_000 },
});
const sigUrl = `ws://127.0.0.1:${await listen(sigHttp)}`;
const relayHttp = http.createServer();
const relay = startRelay(relayHttp);
const relayUrl = `ws://127.0.0.1:${await listen(relayHttp)}`;

const bareTimes: number[] = [];
let barePair: BarePair | null = null;
for (let i = 0; i < CONNECTS; i++) {
  const { ms, pair } = await bareConnect(relayUrl, `room${i}`);
  bareTimes.push(ms);
  if (barePair !== null) {
    barePair.a.close();
    barePair.b.close();
  }
  barePair = pair;
}
const { times, owner, pair } = await linkConnects(sigUrl);

console.log(`bench:link — ${CONNECTS} connects each, ${TOTAL_BYTES / 1024 / 1024} MiB in 16 KiB messages, node-datachannel on 127.0.0.1`);
console.log(`invite opened -> link open:          median ${fmt(median(times))}, p90 ${fmt(p90(times))}; ${modes(times)}`);
console.log(`bare RTCPeerConnection via ws relay: median ${fmt(median(bareTimes))}, p90 ${fmt(p90(bareTimes))}; ${modes(bareTimes)}`);
console.log(
  `  ratio (link / bare): median ${(median(times) / median(bareTimes)).toFixed(2)}x, fast-mode medians ${(median(times.filter((x) => x < SLOW_MS)) / median(bareTimes.filter((x) => x < SLOW_MS))).toFixed(2)}x`,
);

const raw = await rawThroughput(barePair!);
const link = await linkThroughput(pair[0], pair[1]);
console.log(`link throughput (member -> owner): ${link.toFixed(1)} MB/s`);
console.log(`raw data channel throughput:        ${raw.toFixed(1)} MB/s`);
console.log(`  ratio (link / raw): ${(link / raw).toFixed(2)}`);

pair[0].close();
owner.close();
barePair!.a.close();
barePair!.b.close();
relay.close();
relayHttp.close();
await signaling.close();
sigHttp.closeAllConnections();
sigHttp.close();
await releaseNodeWrtc();
