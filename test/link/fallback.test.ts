/**
 * Fallback through the signaling server (docs/PROTOCOL.md 4.8) with real WebRTC (node-datachannel)
 * where ICE is forced to fail: the peer connections never see a remote candidate. The link comes
 * up in 'fallback', carries messages both ways exactly once, goes back to 'direct' when a probe's
 * ICE works again, and survives a signaling-server restart; the server sees only ciphertext.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, systemRandom, type BoxKeyPair } from '../../crypto/index.ts';
import { joinRoom, startOwner, type OwnerHandle, type PeerLink } from '../../protocol/link/peer-link.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { RelayBudget } from '../../signaling/relay-budget.ts';
import { collect, pattern, TestServer, until, untilState, wrtc, WS } from './harness.ts';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** ICE can be switched off: remote candidates (trickled or inside the SDP) are dropped while it is. */
const ice = { blocked: true };
type Description = { type: string; sdp?: string };
class BlockablePeerConnection extends wrtc.RTCPeerConnection {
  override setRemoteDescription(d: Parameters<InstanceType<typeof wrtc.RTCPeerConnection>['setRemoteDescription']>[0]): Promise<void> {
    const desc = d as Description;
    if (!ice.blocked || desc.sdp === undefined) return super.setRemoteDescription(d);
    const sdp = desc.sdp
      .split('\r\n')
      .filter((l) => !l.startsWith('a=candidate'))
      .join('\r\n');
    return super.setRemoteDescription({ ...desc, sdp } as typeof d);
  }
  override addIceCandidate(c?: Parameters<InstanceType<typeof wrtc.RTCPeerConnection>['addIceCandidate']>[0]): Promise<void> {
    return ice.blocked ? Promise.resolve() : super.addIceCandidate(c);
  }
}
const blockable = { ...wrtc, RTCPeerConnection: BlockablePeerConnection };
const FALLBACK = { afterMs: 1500, probeAfterMs: 1500 };

/** Everything the clients hand to the server, to show it only ever sees ciphertext. */
const toServer: Buffer[] = [];
class RecordingWebSocket extends (WS as unknown as new (url: string, protocols: string[]) => { send(d: Uint8Array): void }) {
  override send(d: Uint8Array): void {
    toServer.push(Buffer.from(d));
    super.send(d);
  }
}
const RecWS = RecordingWebSocket as unknown as typeof WS;

/** A tight budget (docs/PROTOCOL.md 3.9): 64 KiB/s per path, 64 KiB burst. */
const budget = new RelayBudget({ bytesPerSecond: 64 * 1024, burstBytes: 64 * 1024, framesPerSecond: 200 });
let server: TestServer;
const owners: OwnerHandle[] = [];
const members: PeerLink[] = [];

beforeAll(async () => {
  server = await new TestServer(undefined, budget).start();
});

afterAll(async () => {
  for (const m of members) m.close();
  for (const o of owners) o.close();
  await server.stop();
  await releaseNodeWrtc();
});

async function room(): Promise<{ owner: OwnerHandle; ownerKeys: BoxKeyPair; ownerLink: Promise<PeerLink>; member: Promise<PeerLink> }> {
  const ownerKeys = generateBoxKeyPair();
  const token = systemRandom(32);
  let onLink: (l: PeerLink) => void = () => undefined;
  const ownerLink = new Promise<PeerLink>((r) => (onLink = r));
  let ready: () => void = () => undefined;
  const isReady = new Promise<void>((r) => (ready = r));
  const owner = startOwner({
    signalingUrl: server.url,
    permanentKeys: ownerKeys,
    iceServers: [],
    wrtc: blockable,
    WebSocket: RecWS,
    fallback: FALLBACK,
    pendingTokens: () => [token],
    acceptToken: () => true,
    onLink: (l) => onLink(l),
    onSignalingState: (r) => {
      if (r) ready();
    },
  });
  owners.push(owner);
  await isReady;
  const member = joinRoom({
    signalingUrl: server.url,
    ownerKey: ownerKeys.publicKey,
    token,
    permanentKeys: generateBoxKeyPair(),
    iceServers: [],
    wrtc: blockable,
    WebSocket: RecWS,
    fallback: FALLBACK,
  }).then((l) => {
    members.push(l);
    return l;
  });
  return { owner, ownerKeys, ownerLink, member };
}

describe('fallback through the signaling server (node-datachannel, ICE forced to fail)', () => {
  it('connects via the server, chats both ways exactly once, and goes back to direct when ICE works again', async () => {
    ice.blocked = true;
    const r = await room();
    const member = await r.member;
    const owner = await r.ownerLink;
    expect(member.state).toBe('fallback');
    expect(owner.state).toBe('fallback');
    // The member keeps its signaling connection: it is the transport now.
    expect(server.connectionCount).toBe(2);

    const atOwner = collect(owner, 3, 30_000);
    const atMember = collect(member, 2, 30_000);
    const big = pattern(300 * 1024, 7);
    member.send(new TextEncoder().encode('hello through the server'));
    member.send(big);
    owner.send(new TextEncoder().encode('and back'));
    member.send(new TextEncoder().encode('last one'));
    owner.send(new TextEncoder().encode('welcome'));
    const fromMember = await atOwner;
    expect(new TextDecoder().decode(fromMember[0])).toBe('hello through the server');
    expect(sha(fromMember[1] as Uint8Array)).toBe(sha(big));
    expect(new TextDecoder().decode(fromMember[2])).toBe('last one');
    expect((await atMember).map((m) => new TextDecoder().decode(m))).toEqual(['and back', 'welcome']);
    // The server relayed all of it (300 KiB and more) and never saw a plaintext byte string of it.
    const seen = Buffer.concat(toServer);
    expect(seen.length).toBeGreaterThan(big.length);
    expect(seen.includes(Buffer.from('hello through the server'))).toBe(false);
    expect(seen.includes(Buffer.from(big.subarray(1000, 1064)))).toBe(false);

    // ICE works again: the next probe's data channel opens and both sides promote it.
    ice.blocked = false;
    const sentDuring: string[] = [];
    const gotDuring = collect(owner, 20, 60_000);
    for (let i = 0; i < 20; i++) {
      sentDuring.push(`during the switch ${i}`);
      member.send(new TextEncoder().encode(sentDuring[i]));
      if (i % 5 === 4) await new Promise((res) => setTimeout(res, 400));
    }
    await untilState(member, ['direct', 'relayed'], 30_000);
    await untilState(owner, ['direct', 'relayed'], 30_000);
    expect((await gotDuring).map((m) => new TextDecoder().decode(m))).toEqual(sentDuring);
    // Back on a data channel: the member left the server (handover), only the owner stays.
    await until(() => server.connectionCount === 1, 'member left the signaling server after the probe', 15_000);
    const after = collect(member, 1);
    owner.send(new TextEncoder().encode('direct again'));
    expect(new TextDecoder().decode((await after)[0])).toBe('direct again');
  }, 90_000);

  it('the server relay budget slows a bulk transfer down (the sender is paused) without losing a byte', async () => {
    ice.blocked = true;
    const r = await room();
    const member = await r.member;
    const owner = await r.ownerLink;
    expect(member.state).toBe('fallback');
    const before = budget.stats.throttled;
    const bulk = pattern(512 * 1024, 11);
    const got = collect(owner, 1, 60_000);
    member.send(bulk);
    expect(sha((await got)[0] as Uint8Array)).toBe(sha(bulk));
    expect(budget.stats.throttled).toBeGreaterThan(before);
    expect(member.state).toBe('fallback');
  }, 90_000);

  it('a restart of the signaling server ends the fallback session; the link comes back and nothing is lost', async () => {
    ice.blocked = true;
    const r = await room();
    const member = await r.member;
    const owner = await r.ownerLink;
    expect(member.state).toBe('fallback');
    const got = collect(owner, 3, 60_000);
    member.send(new TextEncoder().encode('before'));
    await server.stop();
    await untilState(member, ['offline'], 15_000);
    member.send(new TextEncoder().encode('while the server is down'));
    await server.start(server.port);
    await untilState(member, ['fallback'], 30_000);
    member.send(new TextEncoder().encode('after'));
    expect((await got).map((m) => new TextDecoder().decode(m))).toEqual(['before', 'while the server is down', 'after']);
    expect(owner.state).toBe('fallback');
  }, 90_000);
});
