/**
 * ICE restart of one open session (docs/PROTOCOL.md 4.6): notices ICE trouble, holds a 'failed'
 * back from simple-peer while a restart may repair it, runs the restart's signaling machine
 * (ice-restart.ts) over a RestartPort, and ends the session when the deadline passes. The data
 * channel, frame key, cookies and CSNs of the session are untouched.
 */
import { equalBytes, type SharedKey } from '../../crypto/index.ts';
import * as pm from '../saltyrtc/peer-messages.ts';
import type { Timers } from '../saltyrtc/client-driver.ts';
import {
  descriptionsDone,
  IceRestartError,
  MEMBER_RESTART_DEADLINE_MS,
  newRestart,
  OWNER_RESTART_DEADLINE_MS,
  restartIdOf,
  restartStep,
  type RestartEvent,
  type RestartState,
} from './ice-restart.ts';
import type { Signal, SimplePeerTransport } from './simple-peer-adapter.ts';

/** How an ICE restart of a session talks to the other client (the ICE-restart task's SaltyRTC session). */
export interface RestartPort {
  send(payload: Uint8Array): void;
  /** The restart is done (ICE connected again); the member leaves that SaltyRTC session. */
  done(): void;
}

export interface RestartHost {
  readonly timers: Timers;
  /** The owner offers; the member answers. */
  readonly initiator: boolean;
  readonly transport: SimplePeerTransport;
  isOpen(): boolean;
  /** End the session with this error. */
  end(e: Error): void;
  /** ICE went down on the open session and a restart may repair it. */
  onIceTrouble(): void;
  /** ICE is connected again: by a restart (`restarted`) or by itself. */
  onIceRecovered(restarted: boolean): void;
}

export class SessionRestart {
  /** Names this session in an ICE-restart request (ice-restart.ts restartIdOf). */
  readonly restartId: Uint8Array;
  /** Whether the peer connection can restart ICE; probed once, when first needed. */
  private support: boolean | null = null;
  /** ICE went disconnected/failed while open and has not recovered yet. */
  private iceTrouble = false;
  /** The last restart's signaling state (kept after it is done, to judge late messages). */
  private restart: RestartState | null = null;
  /** A restart is running (its port set, not done yet). */
  private active = false;
  private port: RestartPort | null = null;
  private deadline: unknown = null;

  constructor(
    private readonly host: RestartHost,
    key: SharedKey,
  ) {
    this.restartId = restartIdOf(key);
    host.transport.interceptStateChanges(
      () => this.onStateChange(),
      () => this.failureHeld(),
    );
  }

  /** Hold a 'failed' back only in an ICE-trouble episode of a restartable open session. */
  private failureHeld(): boolean {
    const pc = this.host.transport.peerConnection;
    if (pc === null) return false;
    const failed = pc.iceConnectionState === 'failed' || pc.connectionState === 'failed';
    return failed && this.host.isOpen() && this.iceTrouble && this.support === true;
  }

  private onStateChange(): void {
    const pc = this.host.transport.peerConnection;
    if (pc === null || !this.host.isOpen()) return;
    const st = pc.iceConnectionState;
    if (st === 'disconnected' || st === 'failed') {
      if (this.iceTrouble || !this.supported()) return; // unsupported (libdatachannel): as before, 'failed' ends it
      this.iceTrouble = true;
      this.armDeadline(false);
      this.host.onIceTrouble();
    } else if (st === 'connected' || st === 'completed') {
      this.maybeRecovered();
    }
  }

  /**
   * RTCPeerConnection.restartIce() where it works. libdatachannel (node-datachannel's polyfill)
   * throws "Not implemented": such a session is never restarted (a new peer connection instead).
   * The call itself only marks the local ICE credentials for replacement at the next negotiation,
   * which is the restart's own next step.
   */
  private supported(): boolean {
    if (this.support === null) {
      const pc = this.host.transport.peerConnection;
      try {
        if (pc === null || typeof pc.restartIce !== 'function') this.support = false;
        else {
          pc.restartIce();
          this.support = true;
        }
      } catch {
        // The probe's answer is the throw itself (DOMException "Not implemented"): unsupported.
        this.support = false;
      }
    }
    return this.support;
  }

  /** A restart is running: local descriptions and candidates belong to it. */
  get running(): boolean {
    return this.active;
  }

  /** Owner: can this session be restarted for a request naming `id`? */
  accepts(id: Uint8Array): boolean {
    return this.host.isOpen() && !this.active && equalBytes(id, this.restartId) && this.supported();
  }

  /** See LinkSession.beginIceRestart. */
  begin(port: RestartPort): void {
    if (!this.host.isOpen()) throw new IceRestartError('link.ice-restart', 'ICE restart of a session that is not open');
    if (this.active) throw new IceRestartError('link.ice-restart', 'an ICE restart of this session is already running');
    if (!this.supported()) throw new IceRestartError('link.ice-restart', 'this peer connection cannot restart ICE');
    this.restart = newRestart(this.host.initiator ? 'offerer' : 'answerer');
    this.active = true;
    this.port = port;
    this.armDeadline(this.host.initiator);
    if (this.host.initiator) this.host.transport.offerIceRestart();
  }

  /** See LinkSession.onRestartMessage. */
  onMessage(msg: pm.PostAuthMessage): void {
    if (msg.type === 'close') return; // the SaltyRTC machine handles it (peer-lost)
    const refuse = (why: string): never => {
      const e = new IceRestartError('link.ice-restart', why);
      this.host.end(e);
      throw e;
    };
    if (!this.host.isOpen()) return refuse(`restart ${msg.type} for a session that is not open`);
    if (this.restart === null) return refuse(`restart ${msg.type} before any restart began`);
    if (msg.type === 'application') return refuse("'application' in an ICE restart");
    this.step({ type: 'remote', message: msg });
  }

  /** A local description or candidate while a restart runs. */
  onLocalSignal(s: Signal): void {
    if (s.type === 'candidate') this.step({ type: 'local-candidate', candidate: s.candidate });
    else this.step({ type: 'local-description', sdpType: s.type, sdp: s.sdp });
  }

  /** See LinkSession.restartSignalingClosed. */
  signalingClosed(error: Error, chosen: boolean): void {
    this.port = null;
    if (this.active || (!chosen && this.iceTrouble))
      this.host.end(new IceRestartError('link.ice-restart', `restart signaling closed: ${error.message}`));
  }

  /** Owner: the restart's SaltyRTC session is gone (the member left it); the deadline still applies. */
  detachPort(): void {
    this.port = null;
  }

  /** The session ended. */
  stop(): void {
    this.clearDeadline();
    this.active = false;
    this.port = null;
  }

  /** A refused event ends the session; a remote one also throws (its driver leaves that signaling). */
  private step(ev: RestartEvent): void {
    const state = this.restart;
    if (state === null || !this.host.isOpen()) return;
    let step;
    try {
      step = restartStep(state, ev);
    } catch (e) {
      if (!(e instanceof IceRestartError)) throw e;
      this.host.end(e);
      if (ev.type === 'remote') throw e;
      return; // local: inside simple-peer's 'signal' event, where a throw would only reach simple-peer
    }
    this.restart = step.state;
    for (const eff of step.effects) {
      switch (eff.type) {
        case 'send-description':
          this.port?.send(
            eff.sdpType === 'offer' ? pm.encodeOffer({ type: 'offer', sdp: eff.sdp }) : pm.encodeAnswer({ type: 'answer', sdp: eff.sdp }),
          );
          break;
        case 'send-candidate':
          this.port?.send(pm.encodeCandidates([eff.candidate]));
          break;
        case 'apply-description':
          this.host.transport.signal({ type: eff.sdpType, sdp: eff.sdp });
          break;
        case 'apply-candidate':
          this.host.transport.signal({ type: 'candidate', candidate: eff.candidate });
          break;
      }
    }
    if (this.active && descriptionsDone(step.state)) this.maybeRecovered();
  }

  private maybeRecovered(): void {
    if (!this.host.isOpen() || (!this.iceTrouble && !this.active)) return;
    const pc = this.host.transport.peerConnection;
    if (pc === null || (pc.iceConnectionState !== 'connected' && pc.iceConnectionState !== 'completed')) return;
    // A running restart is done only once both descriptions are through (the new ICE generation).
    if (this.active && (this.restart === null || !descriptionsDone(this.restart))) return;
    const restarted = this.active;
    const port = this.port;
    this.iceTrouble = false;
    this.active = false;
    this.port = null;
    this.clearDeadline();
    if (restarted && this.host.initiator) this.host.transport.endIceRestart();
    port?.done();
    this.host.onIceRecovered(restarted);
  }

  /** `reset`: start the deadline again (owner, on a restart request); else only if none runs. */
  private armDeadline(reset: boolean): void {
    if (this.deadline !== null && !reset) return;
    this.clearDeadline();
    const ms = this.host.initiator ? OWNER_RESTART_DEADLINE_MS : MEMBER_RESTART_DEADLINE_MS;
    this.deadline = this.host.timers.setTimeout(() => {
      this.deadline = null;
      this.host.end(new IceRestartError('link.ice-restart-timeout', `ICE not connected again ${ms} ms after it went down`));
    }, ms);
  }

  private clearDeadline(): void {
    if (this.deadline !== null) this.host.timers.clearTimeout(this.deadline);
    this.deadline = null;
  }
}
