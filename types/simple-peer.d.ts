// The part of simple-peer 9 that protocol/link/simple-peer-adapter.ts uses. Declared here instead of
// @types/simple-peer, which references Node's types: protocol/ must compile without them (it runs in
// browsers too). Options and payloads are what simple-peer 9.11 accepts.
declare module 'simple-peer' {
  export interface Options {
    initiator?: boolean;
    trickle?: boolean;
    /** RTCConfiguration. */
    config?: object;
    channelName?: string;
    iceCompleteTimeout?: number;
    /** {RTCPeerConnection, RTCSessionDescription, RTCIceCandidate} for non-browser use. */
    wrtc?: object;
  }
  export interface SignalData {
    type?: 'offer' | 'answer' | 'candidate' | 'renegotiate' | 'transceiverRequest' | 'pranswer' | 'rollback';
    sdp?: string;
    candidate?: { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null };
  }
  export interface Instance {
    on(event: 'signal', listener: (data: SignalData) => void): this;
    on(event: 'connect' | 'close', listener: () => void): this;
    on(event: 'data', listener: (data: Uint8Array) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    signal(data: SignalData): void;
    send(data: Uint8Array): void;
    destroy(): void;
  }
  const Peer: new (opts?: Options) => Instance;
  export default Peer;
}
