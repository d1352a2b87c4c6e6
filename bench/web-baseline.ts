/**
 * Baseline for `npm run bench:web`: the smallest possible WebRTC page. Two pages meet in a plain
 * WebSocket relay (no SaltyRTC, no encryption beyond DTLS, no storage, no wasm), exchange offer,
 * answer and candidates, open a data channel, and the waiting page sends one message.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const PAGE = `<!doctype html><meta charset="utf-8"><title>bare</title><body><pre id="log"></pre><script>
const role = location.hash === '#wait' ? 'wait' : 'join';
const ws = new WebSocket('ws://' + location.host + '/relay');
const pc = new RTCPeerConnection({ iceServers: [] });
const send = (m) => ws.send(JSON.stringify(m));
pc.onicecandidate = (e) => { if (e.candidate) send({ candidate: e.candidate.toJSON() }); };
function onChannel(ch) {
  ch.onopen = () => { if (role === 'wait') ch.send('hello from the waiting page'); };
  ch.onmessage = (e) => { window.__received = { text: e.data, at: performance.timeOrigin + performance.now() }; };
}
pc.ondatachannel = (e) => onChannel(e.channel);
ws.onmessage = async (e) => {
  const m = JSON.parse(e.data);
  if (m.hello && role === 'wait') {
    onChannel(pc.createDataChannel('chat'));
    await pc.setLocalDescription(await pc.createOffer());
    send({ sdp: pc.localDescription });
  } else if (m.sdp) {
    await pc.setRemoteDescription(m.sdp);
    if (m.sdp.type === 'offer') { await pc.setLocalDescription(await pc.createAnswer()); send({ sdp: pc.localDescription }); }
  } else if (m.candidate) {
    await pc.addIceCandidate(m.candidate);
  }
};
ws.onopen = () => { if (role === 'join') send({ hello: true }); };
</script>`;

export interface Baseline {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the bare page on 127.0.0.1 and relays every WebSocket message to the other sockets. */
export async function startBaseline(): Promise<Baseline> {
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  const wss = new WebSocketServer({ server, path: '/relay' });
  const sockets = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (data, isBinary) => {
      for (const other of sockets) if (other !== ws) other.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Serves the bare page on `host` (e.g. inside a lab namespace) and relays WebSocket messages. */
export async function startBaselineOn(host: string, port: number): Promise<Baseline> {
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  const wss = new WebSocketServer({ server, path: '/relay' });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      for (const other of wss.clients) if (other !== ws) other.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    url: `http://${host}:${port}/`,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// `tsx bench/web-baseline.ts --serve HOST PORT`: run the baseline alone (bench/web-lab.ts starts it
// inside the owner's lab namespace) until SIGTERM.
if (process.argv[2] === '--serve') {
  const b = await startBaselineOn(process.argv[3] ?? '127.0.0.1', Number(process.argv[4] ?? 0));
  console.log(`baseline: listening on ${b.url}`);
  process.once('SIGTERM', () => void b.close().then(() => process.exit(0)));
}
