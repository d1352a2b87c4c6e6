/**
 * The one place that knows simple-peer (9.x) from the inside. The link needs a few things
 * simple-peer keeps private — its RTCPeerConnection (`_pc`) and data channel (`_channel`) for ICE
 * states, SCTP size and buffering; `offerOptions` + `negotiate()` for an ICE-restart offer; its
 * state handlers, to hold a 'failed' back during an ICE restart — and every such access is here,
 * so a simple-peer upgrade is checked in one file. The second data channel of a session (the files
 * channel, docs/PROTOCOL.md 5.17.3) is made on that RTCPeerConnection here too: the offerer creates
 * it, and the answerer takes it out of the `datachannel` events before simple-peer sees them
 * (simple-peer would adopt any incoming channel as its own).
 */
import Peer from 'simple-peer';
import type { Instance as PeerInstance, SignalData } from 'simple-peer';
import type { CandidateInit, DataChannelLike, IceServer, IceTransportPolicy, MessageChannelLike, PeerConnectionLike } from './rtc.ts';

export interface TransportOptions {
  /** The offerer (the owner); the member answers. */
  readonly initiator: boolean;
  readonly iceServers: readonly IceServer[];
  readonly iceTransportPolicy?: IceTransportPolicy;
  /** WebRTC implementation (Node: signaling/node-wrtc.ts); browsers use their own. */
  readonly wrtc?: object;
  /** Data channel label. */
  readonly channelName: string;
  /**
   * Label of a second data channel on the same peer connection (ordered, reliable), or undefined
   * for none. The offerer creates it; the answerer accepts exactly one incoming channel of that label.
   */
  readonly extraChannel?: string;
}

/** A local description or candidate to send to the other side, or one of theirs to apply. */
export type Signal =
  { readonly type: 'offer' | 'answer'; readonly sdp: string } | { readonly type: 'candidate'; readonly candidate: CandidateInit };

export interface TransportEvents {
  signal(s: Signal): void;
  connect(): void;
  data(bytes: Uint8Array): void;
  close(): void;
  error(e: Error): void;
}

/** simple-peer's private surface, as used below (simple-peer 9.11). */
interface PeerInternals {
  _pc: (PeerConnectionLike & PcHandlers & ChannelFactory) | null;
  _channel: DataChannelLike | null;
  /** Its data channel's bufferedAmount (a public getter missing from @types/simple-peer). */
  bufferSize: number;
  /** Set by destroy() and by simple-peer itself on ICE or connection 'failed' (it then emits close). */
  destroyed: boolean;
  /** What _createOffer passes to createOffer. */
  offerOptions: { iceRestart?: boolean };
  negotiate(): void;
}

type StateHandler = ((ev: unknown) => unknown) | null;
type DataChannelHandler = ((ev: { readonly channel: MessageChannelLike }) => unknown) | null | undefined;
/** RTCPeerConnection's channel creation and the `ondatachannel` handler simple-peer sets on the answerer. */
interface ChannelFactory {
  createDataChannel(label: string, init: { ordered: boolean }): MessageChannelLike;
  ondatachannel: DataChannelHandler;
}
/** The RTCPeerConnection handlers simple-peer installs (it destroys the peer on 'failed' in each). */
interface PcHandlers {
  oniceconnectionstatechange: StateHandler;
  onicegatheringstatechange: StateHandler;
  onconnectionstatechange: StateHandler;
}

export class SimplePeerTransport {
  private readonly peer: PeerInstance;
  private extra: MessageChannelLike | null = null;
  private extraListener: ((c: MessageChannelLike) => void) | null = null;

  constructor(opts: TransportOptions, events: TransportEvents) {
    const config: { iceServers: IceServer[]; iceTransportPolicy?: IceTransportPolicy } = { iceServers: [...opts.iceServers] };
    if (opts.iceTransportPolicy !== undefined) config.iceTransportPolicy = opts.iceTransportPolicy;
    this.peer = new Peer({
      initiator: opts.initiator,
      trickle: true,
      config,
      channelName: opts.channelName,
      // Without a short wait simple-peer keeps the process alive ~5 s after destroy (platform notes).
      iceCompleteTimeout: 300,
      ...(opts.wrtc !== undefined ? { wrtc: opts.wrtc } : {}),
    });
    this.peer.on('signal', (d: SignalData) => {
      const s = fromSignalData(d);
      if (s !== null) events.signal(s);
    });
    this.peer.on('connect', () => events.connect());
    this.peer.on('data', (d: Uint8Array) => events.data(d));
    this.peer.on('close', () => events.close());
    this.peer.on('error', (e: Error) => events.error(e));
    if (opts.extraChannel !== undefined) this.setUpExtraChannel(opts.initiator, opts.extraChannel);
  }

  private setUpExtraChannel(initiator: boolean, label: string): void {
    const pc = this.internals._pc;
    if (pc === null || pc === undefined) return;
    if (initiator) {
      this.extra = pc.createDataChannel(label, { ordered: true });
      return;
    }
    const simplePeers = pc.ondatachannel;
    pc.ondatachannel = (ev) => {
      if (ev.channel.label !== label) return simplePeers?.call(pc, ev);
      // One such channel per session: a second one is not ours to serve.
      if (this.extra !== null) return ev.channel.close();
      this.extra = ev.channel;
      this.extraListener?.(ev.channel);
    };
  }

  /**
   * `f` gets the second data channel (TransportOptions.extraChannel) once it exists: at once on the
   * offerer, when the offerer's channel announcement arrives on the answerer. It may not be open yet.
   */
  onExtraChannel(f: (c: MessageChannelLike) => void): void {
    this.extraListener = f;
    if (this.extra !== null) f(this.extra);
  }

  private get internals(): PeerInternals {
    return this.peer as unknown as PeerInternals;
  }

  get peerConnection(): PeerConnectionLike | null {
    return this.internals._pc ?? null;
  }

  get dataChannel(): DataChannelLike | null {
    return this.internals._channel ?? null;
  }

  /** Bytes buffered on the data channel. */
  get bufferedAmount(): number {
    return this.internals.bufferSize;
  }

  signal(s: Signal): void {
    // The peer may have destroyed itself ('failed') while its 'close' is still on the way to the
    // session; a candidate or answer the other side sent meanwhile is moot, and simple-peer would
    // throw ERR_DESTROYED out of the signaling client's message handler (it took a host down).
    if (this.internals.destroyed) return;
    if (s.type === 'candidate') {
      const c = s.candidate;
      this.peer.signal({
        type: 'candidate',
        candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? '0', sdpMLineIndex: c.sdpMLineIndex ?? 0 },
      } as SignalData);
    } else {
      this.peer.signal({ type: s.type, sdp: s.sdp });
    }
  }

  /**
   * A frame for a destroyed peer is dropped (same reason as in signal()): the link's reliable
   * layer re-sends every unacknowledged message on the next session (4.5).
   */
  send(frame: Uint8Array): void {
    if (this.internals.destroyed) return;
    this.peer.send(frame);
  }

  destroy(): void {
    this.extraListener = null;
    this.extra?.close();
    this.peer.destroy();
  }

  /** Offerer: make a new offer with fresh ICE credentials on the existing connection. */
  offerIceRestart(): void {
    if (this.internals.destroyed) return; // its 'close' ends the restart with the session
    this.internals.offerOptions = { iceRestart: true };
    this.internals.negotiate();
  }

  /** Offerer: later offers (none are planned) go without iceRestart again. */
  endIceRestart(): void {
    this.internals.offerOptions = {};
  }

  /**
   * simple-peer destroys the peer as soon as ICE or the connection reports 'failed'. `observe` runs
   * first on every ICE / connection state change; while `hold()` is true a state change is kept
   * from simple-peer (so a 'failed' that an ICE restart may still repair does not destroy it).
   */
  interceptStateChanges(observe: () => void, hold: () => boolean): void {
    const pc = this.internals._pc;
    if (pc === null || pc === undefined) return;
    const wrap = (name: keyof PcHandlers, withObserve: boolean): void => {
      const original = pc[name];
      pc[name] = (ev: unknown) => {
        if (withObserve) observe();
        if (!hold()) original?.call(pc, ev);
      };
    };
    wrap('oniceconnectionstatechange', true);
    wrap('onicegatheringstatechange', false);
    // The connection state may report 'failed' first: look at ICE before simple-peer does.
    wrap('onconnectionstatechange', true);
  }
}

function fromSignalData(d: SignalData): Signal | null {
  if (d.type === 'offer' || d.type === 'answer') return { type: d.type, sdp: d.sdp ?? '' };
  if (d.type === 'candidate' && d.candidate !== undefined) {
    const c = d.candidate;
    return { type: 'candidate', candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null } };
  }
  // 'renegotiate' / 'transceiverRequest' never happen: we add no media and never renegotiate.
  return null;
}
