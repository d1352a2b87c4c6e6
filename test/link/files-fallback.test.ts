/**
 * The files channel and fallback (docs/PROTOCOL.md 4.8, 5.17.3), real WebRTC (node-datachannel) with
 * ICE forced to fail: a link in fallback has no files channel and sends no 'files-open'; when a
 * probe's data channel opens (ICE works again) the link is direct and its files channel opens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, systemRandom } from '../../crypto/index.ts';
import { joinRoom, startOwner, type OwnerHandle, type PeerLink } from '../../protocol/link/peer-link.ts';
import { releaseNodeWrtc } from '../../signaling/node-wrtc.ts';
import { pattern, TestServer, untilState, wrtc, WS } from './harness.ts';

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

let server: TestServer;
const owners: OwnerHandle[] = [];
const members: PeerLink[] = [];

beforeAll(async () => {
  server = await new TestServer().start();
});

afterAll(async () => {
  for (const m of members) m.close();
  for (const o of owners) o.close();
  await server.stop();
  await releaseNodeWrtc();
});

describe('files channel and fallback (node-datachannel, ICE forced to fail)', () => {
  it("a link in fallback has no files channel; a probe that goes direct brings one ('files-open')", async () => {
    ice.blocked = true;
    const ownerKeys = generateBoxKeyPair();
    const token = systemRandom(32);
    let onLink: (l: PeerLink) => void = () => undefined;
    const ownerLink = new Promise<PeerLink>((r) => (onLink = r));
    owners.push(
      startOwner({
        signalingUrl: server.url,
        permanentKeys: ownerKeys,
        iceServers: [],
        wrtc: blockable,
        WebSocket: WS,
        fallback: FALLBACK,
        pendingTokens: () => [token],
        acceptToken: () => true,
        onLink: (l) => onLink(l),
      }),
    );
    const member = await joinRoom({
      signalingUrl: server.url,
      ownerKey: ownerKeys.publicKey,
      token,
      permanentKeys: generateBoxKeyPair(),
      iceServers: [],
      wrtc: blockable,
      WebSocket: WS,
      fallback: FALLBACK,
    });
    members.push(member);
    const owner = await ownerLink;
    expect(member.state).toBe('fallback');
    expect(owner.state).toBe('fallback');
    const opened: string[] = [];
    member.on('files-open', () => opened.push('member'));
    owner.on('files-open', () => opened.push('owner'));
    // Messages still flow through the server; no files channel appears for it.
    const got = new Promise<Uint8Array>((r) => owner.on('message', r));
    member.send(pattern(1000, 3));
    expect((await got).length).toBe(1000);
    await new Promise((r) => setImmediate(r));
    expect(member.files).toBeNull();
    expect(owner.files).toBeNull();
    expect(opened).toEqual([]);

    // ICE works again: the next probe's channel opens, the link goes direct with a files channel.
    const bothOpen = Promise.all(
      [member, owner].map((l) => new Promise<void>((r) => (l.files !== null ? r() : l.on('files-open', () => r())))),
    );
    ice.blocked = false;
    await untilState(member, ['direct', 'relayed'], 60_000);
    await untilState(owner, ['direct', 'relayed'], 60_000);
    await bothOpen;
    expect(member.files).not.toBeNull();
    const frame = new Promise<Uint8Array>((r) => owner.on('files-frame', r));
    member.files?.send(Uint8Array.of(1, 2, 3));
    expect([...(await frame)]).toEqual([1, 2, 3]);
  }, 120_000);
});
