// npm run bench:room [-- --away] — the room protocol over real peer links, in one process (issue 5, item 11):
//   1. messages per second delivered to all members, for an owner with 20 members: members take turns
//      sending (member seals and signs -> owner checks, orders, forwards the same envelope -> every
//      member checks and opens it), ratio to forwarding payloads of the same size unencrypted over the
//      same links (member -> owner -> every member, no room crypto);
//   2. rotation time with 20 members: owner rotate step until every member has switched epoch.
// Everything (signaling server, owner, 20 members, node-datachannel on 127.0.0.1) shares this process
// and its cores, so the room figure includes the work of all 21 parties.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import {
  asBoxPublicKey,
  equalBytes,
  fromHex,
  generateBoxKeyPair,
  generateIdentity,
  initCrypto,
  systemRandom,
  toHex,
  type BoxKeyPair,
} from '../crypto/index.ts';
import { startOwner } from '../protocol/link/owner.ts';
import { joinRoom } from '../protocol/link/member.ts';
import { nodeWrtc, releaseNodeWrtc } from '../signaling/node-wrtc.ts';
import type { PeerLink } from '../protocol/link/peer-link.ts';
import type { WebSocketCtor } from '../protocol/saltyrtc/client-driver.ts';
import {
  createRoom,
  decodeInviteUrl,
  memberPeerKeys,
  ownerStep,
  pendingAuthTokens,
  saltyAuthToken,
  startJoin,
  memberStep,
} from '../protocol/room/index.ts';
import type { Effect, MemberCtx, MemberState, OwnerCtx, OwnerState, PeerKeyHex, RoomEvent, Step } from '../protocol/room/types.ts';
import { attachSignalingServer } from '../signaling/server.ts';
import { awayBench } from './room-away.ts';

const MEMBERS = 20;
const TEXT = 'x'.repeat(200);
const MESSAGES = 300;
const ROUNDS = 3;
const ROTATIONS = 7;

const wrtc = nodeWrtc({ loopback: true });
const WS = WebSocket as unknown as WebSocketCtor;

type Mode = 'room' | 'raw';
let mode: Mode = 'room';
/** Milliseconds spent inside ownerStep / memberStep for received messages (room mode). */
const stepMs = { owner: 0, members: 0 };
let onRaw: (member: number, bytes: Uint8Array) => void = () => undefined;

interface Member {
  readonly index: number;
  readonly ctx: MemberCtx;
  readonly keys: BoxKeyPair;
  state: MemberState;
  link: PeerLink | null;
  onEvent: (ev: RoomEvent) => void;
}

function apply<S>(step: Step<S>, send: (to: PeerKeyHex, bytes: Uint8Array) => void, onEvent: (ev: RoomEvent) => void): S {
  if (step.error !== undefined) throw step.error;
  for (const e of step.effects as Effect[]) {
    if (e.kind === 'send') send(e.to, e.bytes);
    else if (e.kind === 'event') onEvent(e.event);
  }
  return step.state;
}

function waitUntil(cond: () => boolean, what: string, ms = 60_000, detail: () => string = () => ''): Promise<void> {
  // Polls: completion is spread over 21 parties' callbacks in this process.
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (cond()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out: ${what} ${detail()}`));
      setImmediate(check);
    };
    check();
  });
}

async function main(): Promise<void> {
  await initCrypto();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const signaling = attachSignalingServer({
    server,
    permanentKeys: [generateBoxKeyPair()],
    limits: { maxConnectionsPerIp: 10_000, newConnectionsPerSecondPerIp: 10_000 },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // ---- owner ----
  const ownerKeys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  const octx: OwnerCtx = {
    random: systemRandom,
    identity: ownerKeys.identity,
    peerKey: ownerKeys.peer.publicKey,
    invites: { appUrl: 'http://127.0.0.1/', server: url },
  };
  let owner: OwnerState = createRoom(octx, {
    now: Date.now(),
    ownerName: 'owner',
    config: { rotateEveryMessages: Number.MAX_SAFE_INTEGER, rotateAfterMs: 0 },
  }).state;
  const ownerLinks = new Map<string, PeerLink>();
  const ownerSend = (to: PeerKeyHex, bytes: Uint8Array): void => {
    ownerLinks.get(to)?.send(bytes);
  };
  const handle = startOwner({
    signalingUrl: url,
    permanentKeys: ownerKeys.peer,
    iceServers: [],
    wrtc,
    WebSocket: WS,
    pendingTokens: () => pendingAuthTokens(owner, Date.now()),
    acceptToken: (t) => pendingAuthTokens(owner, Date.now()).some((p) => equalBytes(p, t)),
    trustedKeys: () => memberPeerKeys(owner).map((h) => asBoxPublicKey(fromHex(h, 32))),
    onLink: (link) => {
      const from = toHex(link.peerKey) as PeerKeyHex;
      ownerLinks.set(from, link);
      link.on('message', (bytes) => {
        if (mode === 'raw') {
          for (const l of ownerLinks.values()) l.send(bytes);
          return;
        }
        const t = performance.now();
        const step = ownerStep(octx, owner, { kind: 'received', from, bytes, now: Date.now() });
        stepMs.owner += performance.now() - t;
        owner = apply(step, ownerSend, () => undefined);
      });
    },
  });
  await waitUntil(() => handle.signalingReady, 'owner on the signaling server');

  // ---- 20 members join through invites ----
  const invites: string[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    owner = apply(ownerStep(octx, owner, { kind: 'invite', now: Date.now() }), ownerSend, (ev) => {
      if (ev.type === 'invite') invites.push(ev.url);
    });
  }
  const t0 = performance.now();
  const members: Member[] = invites.map((u, index) => {
    const invite = decodeInviteUrl(u);
    const keys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    const ctx: MemberCtx = { random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey };
    return {
      index,
      ctx,
      keys: keys.peer,
      state: startJoin(ctx, invite, { now: Date.now(), name: `m${index}` }).state,
      link: null,
      onEvent: () => undefined,
    };
  });
  const memberSend = (m: Member) => (_to: PeerKeyHex, bytes: Uint8Array) => m.link?.send(bytes);
  await Promise.all(
    members.map(async (m) => {
      const link = await joinRoom({
        signalingUrl: url,
        ownerKey: decodeInviteUrl(invites[m.index]!).npub,
        token: saltyAuthToken(m.state.join!.token),
        permanentKeys: m.keys,
        iceServers: [],
        wrtc,
        WebSocket: WS,
      });
      m.link = link;
      link.on('message', (bytes) => {
        if (mode === 'raw') return onRaw(m.index, bytes);
        const t = performance.now();
        const step = memberStep(m.ctx, m.state, { kind: 'received', bytes, now: Date.now() });
        stepMs.members += performance.now() - t;
        m.state = apply(step, memberSend(m), (ev) => m.onEvent(ev));
      });
      m.state = apply(memberStep(m.ctx, m.state, { kind: 'connected', now: Date.now() }), memberSend(m), () => undefined);
    }),
  );
  await waitUntil(() => members.every((m) => m.state.phase === 'member') && owner.members.length === MEMBERS + 1, 'all members joined');
  console.log(`room bench: owner + ${MEMBERS} members, node-datachannel on 127.0.0.1, one process`);
  console.log(`  join of ${MEMBERS} members through invites (links + room join): ${(performance.now() - t0).toFixed(0)} ms`);

  // ---- 1. messages delivered to all members, room vs raw forwarding ----
  const probe = memberStep(members[0]!.ctx, members[0]!.state, { kind: 'send', text: TEXT, now: Date.now() });
  const wireSize = (probe.effects.find((e) => e.kind === 'send') as { bytes: Uint8Array }).bytes.length;
  const payload = new Uint8Array(wireSize).fill(7);

  async function roomRun(): Promise<number> {
    mode = 'room';
    const got = new Array<number>(MEMBERS).fill(0);
    for (const m of members) m.onEvent = (ev) => void (ev.type === 'message' && got[m.index]!++);
    stepMs.owner = 0;
    stepMs.members = 0;
    const start = performance.now();
    for (let k = 0; k < MESSAGES; k++) {
      const m = members[k % MEMBERS]!;
      m.state = apply(memberStep(m.ctx, m.state, { kind: 'send', text: TEXT, now: Date.now() }), memberSend(m), () => undefined);
      // Let deliveries interleave with sending, as in a live room.
      if (k % MEMBERS === MEMBERS - 1) await new Promise((r) => setImmediate(r));
    }
    await waitUntil(() => got.every((n) => n === MESSAGES), 'room messages delivered');
    for (const m of members) m.onEvent = () => undefined;
    return MESSAGES / ((performance.now() - start) / 1000);
  }

  async function rawRun(): Promise<number> {
    mode = 'raw';
    const got = new Array<number>(MEMBERS).fill(0);
    // Room messages still in flight from the join (member-added) are not payloads: those start with a msgpack map byte.
    onRaw = (i, bytes) => void (bytes[0] === 7 && got[i]!++);
    const start = performance.now();
    for (let k = 0; k < MESSAGES; k++) {
      members[k % MEMBERS]!.link!.send(payload);
      if (k % MEMBERS === MEMBERS - 1) await new Promise((r) => setImmediate(r));
    }
    await waitUntil(
      () => got.every((n) => n === MESSAGES),
      'raw payloads delivered',
      20_000,
      () => got.join(','),
    );
    mode = 'room';
    return MESSAGES / ((performance.now() - start) / 1000);
  }

  const roomRates: number[] = [];
  const rawRates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rawRates.push(await rawRun());
    roomRates.push(await roomRun());
  }
  const ownerMsPerMessage = stepMs.owner / MESSAGES;
  const memberMsPerMessage = stepMs.members / (MESSAGES * MEMBERS);
  const room = Math.max(...roomRates);
  const raw = Math.max(...rawRates);
  console.log(
    `  messages delivered to all ${MEMBERS} members (${TEXT.length}-char text, ${wireSize}-byte send message, ${MESSAGES} per run, best of ${ROUNDS}):`,
  );
  console.log(
    `    room protocol (sign + seal, owner verify + order, ${MEMBERS}x verify + open): ${room.toFixed(0)} msg/s  (runs: ${roomRates.map((x) => x.toFixed(0)).join(', ')})`,
  );
  console.log(
    `    unencrypted forwarding over the same links:                          ${raw.toFixed(0)} msg/s  (runs: ${rawRates.map((x) => x.toFixed(0)).join(', ')})`,
  );
  console.log(`    ratio room / unencrypted: ${(room / raw).toFixed(3)}`);
  console.log(
    `    CPU per message (last room run): owner step ${ownerMsPerMessage.toFixed(2)} ms (verify + order), each member's step ${memberMsPerMessage.toFixed(2)} ms (verify + open);`,
  );
  console.log(
    `    so with every party on its own core the owner step alone would allow ~${(1000 / ownerMsPerMessage).toFixed(0)} msg/s (link encryption not included)`,
  );
  console.log(
    `    per member: ${(room * MEMBERS).toFixed(0)} deliveries/s (room), ${(raw * MEMBERS).toFixed(0)} deliveries/s (unencrypted)`,
  );

  // ---- 2. rotation with 20 members ----
  const times: number[] = [];
  for (let r = 0; r < ROTATIONS; r++) {
    const target = owner.epoch + 1;
    const start = performance.now();
    owner = apply(ownerStep(octx, owner, { kind: 'rotate', now: Date.now() }), ownerSend, () => undefined);
    const stepMs = performance.now() - start;
    await waitUntil(() => members.every((m) => m.state.epoch === target), 'rotation applied');
    const total = performance.now() - start;
    times.push(total);
    if (r === 0)
      console.log(
        `  rotation with ${MEMBERS} members: owner step ${stepMs.toFixed(1)} ms (fresh key, signed announcement, ${MEMBERS} sealed rekeys)`,
      );
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `  rotation until all ${MEMBERS} members switched: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms (runs: ${times.map((t) => t.toFixed(0)).join(', ')} ms)`,
  );

  handle.close();
  for (const m of members) m.link?.close();
  await signaling.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await releaseNodeWrtc(); // after CLOSE frames flushed and every peer connection closed
  setTimeout(() => process.exit(0), 1000).unref();
}

// --away: member-to-member delivery while the owner is away vs present (bench/room-away.ts, issue 15).
if (process.argv.includes('--away')) await awayBench();
else await main();
