// npm run bench:room -- --away — member-to-member delivery while the owner is away (issue 15,
// docs/PROTOCOL.md 5.16) against the same with the owner present, through the shared drivers
// (OwnerDriver, MemberDriver with its mesh) over real peer links: one owner, MEMBERS members,
// node-datachannel on 127.0.0.1, all in this process (so every figure includes all parties' work).
//   - latency: one member sends, one at a time, until another member shows it (owner present: the
//     room order's `message`; away: the provisional `away-message` over the direct link); median;
//   - rate: a burst of BURST messages from one member until every other member has shown all of them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom } from '../crypto/index.ts';
import { AWAY_AFTER_MS } from '../protocol/room/away.ts';
import type { DriverEnv, DriverEvent } from '../protocol/room/driver-ports.ts';
import { MemberDriver } from '../protocol/room/member-driver.ts';
import { OwnerDriver } from '../protocol/room/owner-driver.ts';
import { createRoom, decodeInviteUrl, startJoin, type MemberState, type OwnerState } from '../protocol/room/index.ts';
import type { RoomIdentity } from '../protocol/room/records.ts';
import { systemTimers } from '../protocol/saltyrtc/client-driver.ts';
import { releaseNodeWrtc } from '../signaling/node-wrtc.ts';
import { ephemeralStore, nodeMemberPort, nodeMeshPort, nodeOwnerPort } from '../signaling/room-cli.ts';
import { attachSignalingServer } from '../signaling/server.ts';

const MEMBERS = 4;
const LATENCY_SAMPLES = 40;
const BURST = 200;
const TEXT = 'x'.repeat(200);

function until(cond: () => boolean, what: string, ms = 120_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`bench: timed out waiting for ${what}`));
      // A benchmark polls its own counters; nothing here is a test assertion.
      setTimeout(check, 2);
    };
    check();
  });
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

export async function awayBench(): Promise<void> {
  await initCrypto();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const signaling = attachSignalingServer({
    server,
    permanentKeys: [generateBoxKeyPair()],
    limits: { maxConnectionsPerIp: 10_000, newConnectionsPerSecondPerIp: 10_000 },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const endpoint = (keys: RoomIdentity['peer']) => ({ server: url, serverKey: '', loopback: true, iceServers: [], keys });
  const env = (events: (e: DriverEvent) => void): DriverEnv => ({ timers: systemTimers, random: systemRandom, log: quiet, events });

  // ---- owner ----
  const ownerId: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  const created = createRoom(
    {
      random: systemRandom,
      identity: ownerId.identity,
      peerKey: ownerId.peer.publicKey,
      invites: { appUrl: 'http://127.0.0.1/', server: url },
    },
    { now: Date.now(), ownerName: 'owner', config: { rotateEveryMessages: Number.MAX_SAFE_INTEGER, rotateAfterMs: 0 } },
  ).state;
  let inviteUrl: string | null = null;
  const owner = new OwnerDriver(
    created,
    ephemeralStore<OwnerState>(),
    env((e) => {
      if (e.kind === 'room' && e.event.type === 'invite') inviteUrl = e.event.url;
    }),
    { identity: ownerId, invites: { appUrl: 'http://127.0.0.1/', server: url }, link: nodeOwnerPort(endpoint(ownerId.peer)) },
  );
  await owner.start();

  // ---- members: each records when it showed which text, in the room order and provisionally ----
  const shown: Map<string, number>[] = [];
  const members: MemberDriver[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    inviteUrl = null;
    await owner.invite();
    const keys: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    const state = startJoin({ random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey }, decodeInviteUrl(inviteUrl!), {
      now: Date.now(),
      name: `m${i}`,
    }).state;
    const seen = new Map<string, number>();
    shown.push(seen);
    const d = new MemberDriver(
      state,
      ephemeralStore<MemberState>(),
      env((e) => {
        const text =
          e.kind === 'room' && e.event.type === 'message'
            ? e.event.text
            : e.kind === 'mesh' && e.event.type === 'away-message'
              ? e.event.entry.text
              : null;
        if (text !== null && !seen.has(text)) seen.set(text, performance.now());
      }),
      { identity: keys, link: nodeMemberPort(endpoint(keys.peer)), mesh: nodeMeshPort(endpoint(keys.peer)) },
    );
    members.push(d);
    await d.start();
    await until(() => d.state.phase === 'member', `m${i} joined`);
  }
  await until(() => members.every((m) => m.state.members.length === MEMBERS + 1), 'everyone knows everyone');

  const sender = members[0]!;
  const receiver = shown[1]!;
  const others = shown.slice(1);

  async function latency(tag: string): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const text = `${tag} latency ${i} ${TEXT}`;
      const t0 = performance.now();
      await sender.send(text);
      await until(() => receiver.has(text), `${tag} latency ${i}`);
      out.push(receiver.get(text)! - t0);
    }
    return out.sort((a, b) => a - b);
  }

  async function rate(tag: string): Promise<number> {
    const texts = Array.from({ length: BURST }, (_, i) => `${tag} burst ${i} ${TEXT}`);
    const t0 = performance.now();
    for (const t of texts) await sender.send(t);
    await until(() => others.every((s) => texts.every((t) => s.has(t))), `${tag} burst`);
    return BURST / ((performance.now() - t0) / 1000);
  }

  const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)]!;
  const p90 = (xs: number[]): number => xs[Math.floor(xs.length * 0.9)]!;

  const presentLatency = await latency('present');
  const presentRate = await rate('present');

  // ---- the owner leaves: members go away-mode and link up directly ----
  const left = performance.now();
  await owner.stop();
  await until(
    () => members.every((m) => m.away!.active && m.away!.peers.filter((p) => p.status === 'ready').length === MEMBERS - 1),
    'mesh up',
  );
  const meshUpMs = performance.now() - left;
  const awayLatency = await latency('away');
  const awayRate = await rate('away');

  console.log(`  member-to-member delivery, ${MEMBERS} members, ${TEXT.length}-char texts, through the shared drivers:`);
  console.log(
    `    owner present (m0 -> owner -> m1): latency median ${median(presentLatency).toFixed(1)} ms, p90 ${p90(presentLatency).toFixed(1)} ms; rate ${presentRate.toFixed(0)} msg/s (burst of ${BURST} to all ${MEMBERS - 1} others)`,
  );
  console.log(
    `    owner away    (m0 -> m1 directly):  latency median ${median(awayLatency).toFixed(1)} ms, p90 ${p90(awayLatency).toFixed(1)} ms; rate ${awayRate.toFixed(0)} msg/s (burst of ${BURST} to all ${MEMBERS - 1} others)`,
  );
  console.log(
    `    ratio away / present: latency ${(median(awayLatency) / median(presentLatency)).toFixed(2)}, rate ${(awayRate / presentRate).toFixed(2)}`,
  );
  console.log(
    `    owner gone -> every member linked to every other: ${meshUpMs.toFixed(0)} ms (of which ${AWAY_AFTER_MS} ms is AWAY_AFTER_MS)`,
  );

  for (const m of members) await m.stop();
  await signaling.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await releaseNodeWrtc();
  setTimeout(() => process.exit(0), 1000).unref();
}
