/**
 * Node-only WebRTC for simple-peer: node-datachannel's polyfill with the two fixes simple-peer needs
 * (see /work/shared/notes/platform.md). Never imported by browser code.
 *
 * - simple-peer assigns `offer.sdp`; the polyfill's descriptions are read-only, so createOffer and
 *   createAnswer return plain {type, sdp} objects.
 * - WebRTC chains addIceCandidate behind a pending setRemoteDescription (the "operations chain");
 *   the polyfill does not, so a candidate that arrives while the answer is still being applied
 *   fails with "Got a remote candidate without ICE transport" and simple-peer destroys the peer
 *   (seen in ~1 of 15 connects). The shim chains them.
 * - libdatachannel gathers no loopback candidates unless `bindAddress` is set; `loopback: true`
 *   binds to 127.0.0.1 (tests, benchmarks).
 */
import ndc from 'node-datachannel';
import polyfill from 'node-datachannel/polyfill';

/** Peer connections made here that have not reached 'closed' yet (releaseNodeWrtc waits for them). */
const live = new Set<EventTarget>();
let liveChanged: (() => void)[] = [];

export interface NodeWrtcOptions {
  /** Bind ICE to 127.0.0.1 (tests and benchmarks on one machine). */
  readonly loopback?: boolean;
}

// The polyfill's own parameter types (signaling/ is compiled without lib.dom).
type PcConfig = ConstructorParameters<typeof polyfill.RTCPeerConnection>[0];
type DescriptionInit = Parameters<InstanceType<typeof polyfill.RTCPeerConnection>['setRemoteDescription']>[0];
type CandidateInit = Parameters<InstanceType<typeof polyfill.RTCPeerConnection>['addIceCandidate']>[0];

/** What simple-peer's `wrtc` option takes. */
export interface NodeWrtc {
  readonly RTCPeerConnection: typeof polyfill.RTCPeerConnection;
  readonly RTCSessionDescription: typeof polyfill.RTCSessionDescription;
  readonly RTCIceCandidate: typeof polyfill.RTCIceCandidate;
}

/** The object to pass as simple-peer's `wrtc` option (and as `wrtc` to startOwner/joinRoom). */
export function nodeWrtc(opts: NodeWrtcOptions = {}): NodeWrtc {
  const Base = polyfill.RTCPeerConnection;
  class ShimPeerConnection extends Base {
    constructor(config?: PcConfig) {
      super(opts.loopback === true ? ({ ...config, bindAddress: '127.0.0.1' } as PcConfig) : config);
      live.add(this);
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState !== 'closed' || !live.delete(this)) return;
        const waiting = liveChanged;
        liveChanged = [];
        for (const f of waiting) f();
      });
    }
    private remoteApplied: Promise<void> = Promise.resolve();
    override setRemoteDescription(description: DescriptionInit): Promise<void> {
      const applying = super.setRemoteDescription(description);
      // Later candidates wait for this, whether it succeeds or not (the error goes to the caller).
      this.remoteApplied = applying.then(
        () => undefined,
        () => undefined,
      );
      return applying;
    }
    override async addIceCandidate(candidate?: CandidateInit | null): Promise<void> {
      await this.remoteApplied;
      return super.addIceCandidate(candidate);
    }
    override async createOffer(): Promise<DescriptionInit> {
      const d = await super.createOffer();
      return { type: d.type, sdp: d.sdp ?? '' };
    }
    override async createAnswer(): Promise<DescriptionInit> {
      const d = await super.createAnswer();
      return { type: d.type, sdp: d.sdp ?? '' };
    }
  }
  return {
    RTCPeerConnection: ShimPeerConnection,
    RTCSessionDescription: polyfill.RTCSessionDescription,
    RTCIceCandidate: polyfill.RTCIceCandidate,
  };
}

/**
 * Release libdatachannel's threads (without this the process never exits). It waits until every
 * peer connection made here has closed: links flush for up to CLOSE_FLUSH_MS before closing theirs,
 * and releasing the threads under a live connection can block the process for good. After
 * `deadlineMs` it releases anyway.
 */
export async function releaseNodeWrtc(deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (live.size > 0 && Date.now() < end) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, end - Date.now());
      liveChanged.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  ndc.cleanup();
}
