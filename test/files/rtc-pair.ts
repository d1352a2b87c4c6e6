/**
 * Two node-datachannel peer connections in one process on 127.0.0.1, joined directly (no
 * signaling server), with a files channel and a control channel a -> b. For file-path tests.
 */
import { nodeWrtc } from '../../signaling/node-wrtc.ts';

const wrtc = nodeWrtc({ loopback: true }) as unknown as { RTCPeerConnection: typeof RTCPeerConnection };

export interface RtcPair {
  a: RTCPeerConnection;
  b: RTCPeerConnection;
  /** [a's end, b's end] */
  files: [RTCDataChannel, RTCDataChannel];
  ctl: [RTCDataChannel, RTCDataChannel];
  close(): void;
}

export async function connectPair(): Promise<RtcPair> {
  const a = new wrtc.RTCPeerConnection({ iceServers: [] });
  const b = new wrtc.RTCPeerConnection({ iceServers: [] });
  a.onicecandidate = (e) => void (e.candidate && b.addIceCandidate(e.candidate));
  b.onicecandidate = (e) => void (e.candidate && a.addIceCandidate(e.candidate));
  const incoming = new Map<string, RTCDataChannel>();
  const got = new Promise<void>((r) => {
    b.ondatachannel = (e) => {
      e.channel.binaryType = 'arraybuffer';
      incoming.set(e.channel.label, e.channel);
      if (incoming.size === 2) r();
    };
  });
  const files = a.createDataChannel('zeroroom-files/1');
  const ctl = a.createDataChannel('control');
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription(answer);
  await Promise.all(
    [files, ctl].map((c) => new Promise((r) => (c.readyState === 'open' ? r(null) : c.addEventListener('open', r, { once: true })))),
  );
  await got;
  for (const c of [files, ctl]) c.binaryType = 'arraybuffer';
  files.bufferedAmountLowThreshold = 1024 * 1024;
  return {
    a,
    b,
    files: [files, incoming.get('zeroroom-files/1') as RTCDataChannel],
    ctl: [ctl, incoming.get('control') as RTCDataChannel],
    close: () => {
      a.close();
      b.close();
    },
  };
}
