/**
 * Member side of the peer link: a SaltyRTC responder on the owner's path. The first join uses the
 * invite's one-time token; every reconnect uses the trusted-key path (the owner knows our key),
 * with exponential backoff and jitter. The signaling connection is closed (3003) after handover.
 *
 * ICE restart (docs/PROTOCOL.md 4.6): when the open session's ICE goes down and its peer connection
 * can restart ICE, the member connects to signaling again on the trusted-key path offering the
 * ICE-restart task for that session (the WebRTC task as fallback). If the owner chooses it, the
 * restart's answer and candidates go through that SaltyRTC session, which the member leaves once ICE
 * is connected again. If the owner chooses the WebRTC task, that handshake makes a new peer
 * connection at once. A restart that fails or misses its deadline ends the session: the usual
 * reconnect (new peer connection) follows.
 */
import { systemRandom, type BoxPublicKey } from '../../crypto/index.ts';
import { ZeroRoomError } from '../errors.ts';
import { SignalingClient, systemTimers } from '../saltyrtc/client-driver.ts';
import type { SaltyClientError } from '../saltyrtc/client-errors.ts';
import { CloseCode } from '../saltyrtc/close-codes.ts';
import { backoffDelay } from './backoff.ts';
import { probeDelay } from './fallback.ts';
import { IceRestartError } from './ice-restart.ts';
import { webSocketOf, type EndpointOptions } from './endpoint.ts';
import { PeerLinkImpl, type PeerLink } from './peer-link.ts';
import type { LinkSession } from './session.ts';

export interface JoinOptions extends EndpointOptions {
  /** The owner's SaltyRTC permanent public key (from the invite): path and initiator identity. */
  readonly ownerKey: BoxPublicKey;
  /** The invite's 32-byte one-time token; leave out when the owner already trusts our key. */
  readonly token?: Uint8Array;
  /** The invite's `exp` (ms since the epoch): with `token`, past it a refused join is final (`link.invite-expired`). */
  readonly inviteExpiresAt?: number;
  /** Clock for the invite expiry (default Date.now). */
  readonly now?: () => number;
  /**
   * Each signaling connection's server handshake is done: `ownerConnected` says whether the owner
   * (initiator) is on the path right now. Lets a user interface tell "the owner is offline" from
   * "the signaling server is unreachable" while the link waits.
   */
  readonly onServerReady?: (ownerConnected: boolean) => void;
  /** The first server handshake is done (for join-latency measurements). */
  readonly onSignalingReady?: () => void;
}

/** Attempts (with backoff) before joinRoom rejects when the first link never opens. */
export const FIRST_JOIN_ATTEMPTS = 4;

/**
 * The only errors after which a member stops trying to reach its owner (docs/PROTOCOL.md 4.1, 4.6):
 * - `saltyrtc.initiator-refused`: the owner's authenticated refusal of our token or key;
 * - `link.invite-expired`: our own clock says the invite expired before the owner admitted us.
 * Every close code the signaling server can send (3000, 3004, 3005, 3006, 3007, 1001, 1006, ...) can
 * be forged by the server or by anyone who fills the owner's path, so none of them is final: retry
 * those with backoff, and show them as a connection problem, not as a refusal.
 */
export const FATAL_JOIN_CODES: ReadonlySet<string> = new Set(['saltyrtc.initiator-refused', 'link.invite-expired']);

/** True when `e` (a joinRoom rejection or a link 'close' error) means: stop, do not retry. */
export function isFinalJoinError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && FATAL_JOIN_CODES.has(code);
}

/** The joiner's clock is past its invite's expiry and the owner has not admitted it (final). */
export class InviteExpiredError extends ZeroRoomError {
  constructor(expiresAt: number) {
    super('link.invite-expired', `the invite expired at ${new Date(expiresAt).toISOString()} before the owner let us in`);
  }
}

/**
 * Join the owner's room. Resolves with the link once its data channel is open for the first time;
 * rejects with the first failure (SaltyClientError 'saltyrtc.refused' for a wrong or reused token).
 * Afterwards drops are repaired by reconnecting until close() or a fatal refusal (link 'close' event).
 */
export function joinRoom(opts: JoinOptions): Promise<PeerLink> {
  const timers = opts.timers ?? systemTimers;
  const random = opts.random ?? systemRandom;
  const WS = webSocketOf(opts);
  const link = new PeerLinkImpl(opts.ownerKey, {
    random,
    timers,
    rtc: {
      iceServers: opts.iceServers,
      ...(opts.iceTransportPolicy !== undefined ? { iceTransportPolicy: opts.iceTransportPolicy } : {}),
      ...(opts.wrtc !== undefined ? { wrtc: opts.wrtc } : {}),
      ...(opts.fallback !== undefined ? { fallback: opts.fallback } : {}),
    },
  });
  const now = opts.now ?? Date.now;
  let token = opts.token;
  /** 4.1 stale tokens: after a 3005 on the token path, the next attempt goes without the token. */
  let skipToken = false;
  /** Probes for a direct path while the link runs in fallback (4.8): timer and failed-probe count. */
  let probeTimer: unknown = null;
  let probes = 0;
  let attempt = 0;
  let opened = false;
  let client: SignalingClient | null = null;
  let retryTimer: unknown = null;

  return new Promise<PeerLink>((resolve, reject) => {
    const giveUp = (error: Error): void => {
      if (!opened) reject(error);
      link.fail(error);
    };
    const retry = (error: Error | null): void => {
      if (link.state === 'closed' || retryTimer !== null) return;
      // Before the first open, a few quick retries absorb WebRTC set-up failures; then give up.
      if (!opened && attempt >= FIRST_JOIN_ATTEMPTS - 1) return giveUp(error ?? new Error('link dropped before it opened'));
      retryTimer = timers.setTimeout(
        () => {
          retryTimer = null;
          connect();
        },
        backoffDelay(attempt++, random),
      );
    };
    /** A normal join (restartOf null) or a request to restart ICE on the open session `restartOf`. */
    const connect = (restartOf: LinkSession | null = null): void => {
      if (link.state === 'closed') return;
      // The client of a session in fallback is its transport: it stays (the session closes it).
      client?.close();
      const useToken = restartOf === null && token !== undefined && !skipToken ? token : undefined;
      const c = new SignalingClient({
        url: opts.signalingUrl,
        WebSocket: WS,
        timers,
        pathKey: opts.ownerKey,
        context: {
          role: 'responder',
          permanent: opts.permanentKeys,
          ...(opts.serverKey !== undefined ? { serverKey: opts.serverKey } : {}),
          random,
          taskData: { exclude: [], handover: true },
          initiatorKey: opts.ownerKey,
          ...(useToken !== undefined ? { token: useToken } : {}),
          ...(restartOf !== null ? { iceRestart: { session: restartOf.restartId } } : {}),
        },
      });
      client = c;
      if (opts.onServerReady !== undefined) {
        const report = opts.onServerReady;
        c.on('server-ready', (_address, initiatorConnected) => {
          if (client === c) report(initiatorConnected);
        });
      }
      if (opts.onSignalingReady !== undefined && attempt === 0 && !opened) c.on('server-ready', () => opts.onSignalingReady?.());
      let session: LinkSession | null = null;
      /** The owner chose the ICE-restart task: this SaltyRTC session signals `restartOf`'s restart. */
      let restarting = false;
      c.on('peer-authenticated', (peer, _key, shared, _taskData, iceRestart) => {
        token = undefined; // spent: reconnects use the trusted-key path
        if (iceRestart !== null && restartOf !== null) {
          restarting = true;
          try {
            restartOf.beginIceRestart({ send: (p) => c.send(peer, p), done: () => c.closePeer(peer, CloseCode.GoingAway) });
          } catch (e) {
            if (!(e instanceof IceRestartError)) throw e;
            // The session ended meanwhile (its drop already started a reconnect): leave.
            c.close();
          }
          return;
        }
        session = link.attach(shared, false, {
          send: (p) => c.send(peer, p),
          handoverDone: () => c.handoverDone(peer),
          close: () => c.close(),
          bufferedAmount: () => c.bufferedAmount,
          fallbackStarted: () => {
            if (client === c) client = null;
          },
        });
      });
      c.on('peer-message', (_peer, msg) => {
        if (restarting && restartOf !== null) {
          try {
            restartOf.onRestartMessage(msg);
          } catch (e) {
            if (!(e instanceof IceRestartError)) throw e;
            c.close(); // the session ended with this error; the reconnect replaces it
          }
          return;
        }
        if (session === null || msg.type === 'close') return;
        if (msg.type === 'application')
          session.onApplication(msg.data); // fallback (4.8)
        else session.onTaskMessage(msg);
      });
      c.on('closed', (error: SaltyClientError) => {
        const replaced = client !== c;
        if (client === c) client = null;
        if (restartOf !== null && session === null) {
          // Restart signaling over: after a done restart nothing happens; before, the restart failed
          // and the session ends (its reconnect makes a new peer connection). A newer client replaced
          // this one on purpose: nothing to do.
          if (!replaced) restartOf.restartSignalingClosed(error, restarting);
          return;
        }
        const s: LinkSession | null = session;
        if (s !== null) {
          s.detachPort(error); // a session in fallback ends with it
          // Closed before the data channel opened (not a handover): this session cannot finish.
          if (!s.isOpen) s.end(error);
          return;
        }
        if (link.state === 'closed') return;
        if (isFinalJoinError(error)) return giveUp(error);
        if (token !== undefined) {
          // Not admitted yet (the token is unspent): an invite past its expiry by our clock is final.
          if (opts.inviteExpiresAt !== undefined && now() > opts.inviteExpiresAt)
            return giveUp(new InviteExpiredError(opts.inviteExpiresAt));
          // A 3005 may mean the owner admitted us and deleted the token: alternate with the trusted-key path.
          if (error.code === 'saltyrtc.refused') skipToken = !skipToken;
        }
        retry(error);
      });
      c.start();
    };
    const clearProbe = (): void => {
      if (probeTimer !== null) timers.clearTimeout(probeTimer);
      probeTimer = null;
    };
    const scheduleProbe = (): void => {
      clearProbe();
      probeTimer = timers.setTimeout(
        () => {
          probeTimer = null;
          if (link.state === 'fallback' && retryTimer === null) connect();
        },
        probeDelay(probes, opts.fallback !== false ? opts.fallback?.probeAfterMs : undefined),
      );
    };
    link.onOpened = () => {
      attempt = 0;
      if (link.state === 'fallback') scheduleProbe();
      else {
        clearProbe();
        probes = 0;
      }
      if (!opened) {
        opened = true;
        resolve(link);
      }
    };
    link.onProbeEnded = () => {
      probes++;
      if (link.state === 'fallback') scheduleProbe();
    };
    link.onDropped = (error) => retry(error);
    link.onIceTrouble = (s) => {
      if (retryTimer === null) connect(s);
    };
    link.onClosed = () => {
      clearProbe();
      if (retryTimer !== null) timers.clearTimeout(retryTimer);
      retryTimer = null;
      client?.close();
      client = null;
    };
    connect();
  });
}
