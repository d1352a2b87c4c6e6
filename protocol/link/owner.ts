/**
 * Owner side of the peer link: the SaltyRTC initiator of the path hex(owner key). It keeps its
 * signaling connection open to admit members, runs one client handshake per responder
 * concurrently, and recognises returning members by their permanent key (trusted-key path): the
 * existing PeerLink gets a new session, so nothing queued on it is lost. If the signaling
 * connection drops (server restart), established links keep working and the owner reconnects to
 * the server with backoff.
 *
 * ICE restart (docs/PROTOCOL.md 4.6): a member whose open session lost ICE comes back through
 * signaling offering the ICE-restart task for that session. If the session is still open here and
 * its peer connection can restart ICE, the owner chooses that task and restarts ICE on it (its
 * offer, the member's answer and both sides' candidates travel through this new SaltyRTC session);
 * otherwise it chooses the WebRTC task and the handshake makes a new peer connection as usual.
 */
import { systemRandom, toHex, type BoxPublicKey, type RandomBytes } from '../../crypto/index.ts';
import { SignalingClient, systemTimers, type Timers } from '../saltyrtc/client-driver.ts';
import { CloseCode } from '../saltyrtc/close-codes.ts';
import type { PostAuthMessage } from '../saltyrtc/peer-messages.ts';
import { backoffDelay } from './backoff.ts';
import { IceRestartError } from './ice-restart.ts';
import { webSocketOf, type EndpointOptions } from './endpoint.ts';
import { PeerLinkImpl, type PeerLink } from './peer-link.ts';
import type { LinkSession } from './session.ts';

export interface OwnerOptions extends EndpointOptions {
  /** Tokens of all currently pending invites; each responder's first message is tried against them. */
  readonly pendingTokens: () => Iterable<Uint8Array>;
  /** A token opened a joiner's 'token' message: return true to admit (and mark it used), false to refuse. */
  readonly acceptToken: (token: Uint8Array, memberKey: BoxPublicKey) => boolean;
  /** Keys admitted without a token, in addition to members with a live (not closed) link. */
  readonly trustedKeys?: () => Iterable<BoxPublicKey>;
  /**
   * Auth tokens of invites the owner issued and refuses now (used, revoked, expired): their holders
   * get the owner's authenticated refusal (docs/PROTOCOL.md 4.1), final for them. The link layer adds
   * the tokens it saw pending in this run that are no longer pending (REMEMBERED_TOKENS).
   */
  readonly refusedTokens?: () => Iterable<Uint8Array>;
  /** Peer keys the owner refuses (e.g. removed members): authenticated refusal, final for them. */
  readonly refusedKeys?: () => Iterable<BoxPublicKey>;
  /** A member's link opened for the first time in this owner session. */
  readonly onLink: (link: PeerLink) => void;
  /** The signaling connection became ready (true) or dropped (false; the owner reconnects). */
  readonly onSignalingState?: (ready: boolean) => void;
  /** Signaling trouble the owner recovers from by itself (for logs). */
  readonly onWarning?: (message: string) => void;
  /**
   * A responder authenticated with the permanent key of a link whose session is open (direct or
   * relayed, not restarting): a second device presents that member's key, or the member came back
   * before its drop was seen here (docs/PROTOCOL.md 4.6). The new session replaces the old one.
   */
  readonly onSecondSession?: (key: BoxPublicKey) => void;
}

export interface OwnerHandle {
  /** Links by hex of the member's key (including offline ones waiting for their member). */
  readonly links: ReadonlyMap<string, PeerLink>;
  /** True while the signaling connection is authenticated towards the server. */
  readonly signalingReady: boolean;
  /** Close every link and leave the server. */
  close(): void;
}

/** Auth tokens seen pending in this owner run that the link layer keeps to refuse them later (4.1). */
export const REMEMBERED_TOKENS = 256;

export function startOwner(opts: OwnerOptions): OwnerHandle {
  const owner = new Owner(opts);
  owner.connect();
  return owner;
}

class Owner implements OwnerHandle {
  readonly links = new Map<string, PeerLinkImpl>();
  private readonly pending = new Map<number, LinkSession>();
  /** Responder addresses signaling an ICE restart, and the open session each restarts. */
  private readonly restarts = new Map<number, LinkSession>();
  private client: SignalingClient | null = null;
  private attempt = 0;
  private reconnectTimer: unknown = null;
  private closed = false;
  signalingReady = false;
  private readonly timers: Timers;
  private readonly random: RandomBytes;
  /** Auth tokens seen pending (hex -> token), oldest first; those no longer pending are refused. */
  private readonly seenTokens = new Map<string, Uint8Array>();

  constructor(private readonly opts: OwnerOptions) {
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? systemRandom;
  }

  connect(): void {
    this.reconnectTimer = null;
    if (this.closed) return;
    const opts = this.opts;
    const WS = webSocketOf(opts);
    const client = new SignalingClient({
      url: opts.signalingUrl,
      WebSocket: WS,
      timers: this.timers,
      pathKey: opts.permanentKeys.publicKey,
      context: {
        role: 'initiator',
        permanent: opts.permanentKeys,
        ...(opts.serverKey !== undefined ? { serverKey: opts.serverKey } : {}),
        random: this.random,
        taskData: { exclude: [], handover: true },
        pendingTokens: () => this.pendingTokens(),
        acceptToken: opts.acceptToken,
        trustedKeys: () => this.trusted(),
        refusedTokens: () => this.refusedTokens(),
        ...(opts.refusedKeys !== undefined ? { refusedKeys: opts.refusedKeys } : {}),
        acceptIceRestart: (key, request) => this.links.get(toHex(key))?.session?.acceptsIceRestart(request.session) === true,
      },
    });
    this.client = client;
    client.on('server-ready', () => {
      this.attempt = 0;
      this.signalingReady = true;
      opts.onSignalingState?.(true);
    });
    client.on('peer-authenticated', (peer, key, shared, _taskData, iceRestart) => {
      if (iceRestart !== null) return this.beginRestart(client, peer, key);
      const existing = this.links.get(toHex(key));
      if (existing?.state === 'direct' || existing?.state === 'relayed') opts.onSecondSession?.(key);
      // The member gave up restarting ICE and makes a new peer connection: the old session ends
      // first, as if its drop had been seen here (the application may then replace the link).
      if (existing?.state === 'restarting')
        existing.dropSession(new IceRestartError('link.ice-restart', 'the member reconnected with a new peer connection'));
      const link = this.linkFor(key);
      // A link in fallback (4.8) gets this session as a probe; the fallback one carries on meanwhile.
      const session: LinkSession = link.attach(shared, true, {
        send: (payload) => client.send(peer, payload),
        handoverDone: () => {
          // The address may belong to a newer responder by now (addresses are reused, lowest free).
          if (this.pending.get(peer) !== session) return;
          this.pending.delete(peer);
          client.handoverDone(peer);
        },
        close: () => {
          if (this.pending.get(peer) !== session) return;
          this.pending.delete(peer);
          client.closePeer(peer, CloseCode.DroppedByInitiator);
        },
        bufferedAmount: () => client.bufferedAmount,
      });
      this.pending.set(peer, session);
    });
    client.on('peer-message', (peer, msg) => this.onPeerMessage(client, peer, msg));
    client.on('peer-lost', (peer, error) => {
      const restarting = this.restarts.get(peer);
      if (restarting !== undefined) {
        // The member leaves the restart's signaling when it is done (or gave up): nothing more comes.
        this.restarts.delete(peer);
        restarting.detachRestartPort();
        return;
      }
      const s = this.pending.get(peer);
      this.pending.delete(peer);
      if (s === undefined) return;
      // Its address is free for the next responder: nothing of this session may go there.
      s.detachPort(error);
      if (!s.isOpen) s.end(error);
    });
    client.on('warning', (m) => opts.onWarning?.(m));
    client.on('closed', (error) => {
      if (this.signalingReady) opts.onSignalingState?.(false);
      this.signalingReady = false;
      if (this.client === client) this.client = null;
      // Sessions still signaling lose their path; open ones continue on their data channels (those in
      // fallback end: the server was their transport).
      for (const s of [...this.pending.values()]) s.detachPort(error);
      this.pending.clear();
      for (const s of this.restarts.values()) s.detachRestartPort();
      this.restarts.clear();
      if (this.closed) return;
      opts.onWarning?.(`signaling closed: ${error.message}; reconnecting`);
      const delay = backoffDelay(this.attempt++, this.random);
      this.reconnectTimer = this.timers.setTimeout(() => this.connect(), delay);
    });
    client.start();
  }

  /** The application's pending tokens, remembered so that a later use of one is refused with authentication. */
  private pendingTokens(): Uint8Array[] {
    const tokens = [...this.opts.pendingTokens()];
    for (const t of tokens) {
      const id = toHex(t);
      this.seenTokens.delete(id); // re-insert: newest last
      this.seenTokens.set(id, t.slice());
    }
    while (this.seenTokens.size > REMEMBERED_TOKENS) this.seenTokens.delete(this.seenTokens.keys().next().value as string);
    return tokens;
  }

  /** Tried after pending tokens and trusted keys: a pending one never reaches this (it opened before). */
  private *refusedTokens(): Iterable<Uint8Array> {
    yield* this.seenTokens.values();
    yield* this.opts.refusedTokens?.() ?? [];
  }

  private *trusted(): Iterable<BoxPublicKey> {
    for (const link of this.links.values()) if (link.state !== 'closed') yield link.peerKey;
    yield* this.opts.trustedKeys?.() ?? [];
  }

  private linkFor(key: BoxPublicKey): PeerLinkImpl {
    const id = toHex(key);
    const existing = this.links.get(id);
    if (existing !== undefined && existing.state !== 'closed') return existing;
    const link = new PeerLinkImpl(key, {
      random: this.random,
      timers: this.timers,
      rtc: {
        iceServers: this.opts.iceServers,
        ...(this.opts.iceTransportPolicy !== undefined ? { iceTransportPolicy: this.opts.iceTransportPolicy } : {}),
        ...(this.opts.wrtc !== undefined ? { wrtc: this.opts.wrtc } : {}),
        ...(this.opts.fallback !== undefined ? { fallback: this.opts.fallback } : {}),
      },
    });
    let announced = false;
    link.onOpened = () => {
      if (announced) return;
      announced = true;
      this.opts.onLink(link);
    };
    link.onClosed = () => {
      if (this.links.get(id) === link) this.links.delete(id);
    };
    this.links.set(id, link);
    return link;
  }

  /** The machine chose the ICE-restart task for `key`'s open session (acceptIceRestart, same step). */
  private beginRestart(client: SignalingClient, peer: number, key: BoxPublicKey): void {
    const session = this.links.get(toHex(key))?.session ?? null;
    try {
      if (session === null) throw new IceRestartError('link.ice-restart', 'no session to restart');
      // The member leaves this SaltyRTC session when the restart is done; the owner has nothing to close.
      session.beginIceRestart({ send: (payload) => client.send(peer, payload), done: () => undefined });
      this.restarts.set(peer, session);
    } catch (e) {
      if (!(e instanceof IceRestartError)) throw e;
      this.opts.onWarning?.(`ICE restart for responder ${peer} refused: ${e.message}`);
      client.closePeer(peer, CloseCode.InternalError);
    }
  }

  private onPeerMessage(client: SignalingClient, peer: number, msg: PostAuthMessage): void {
    const restarting = this.restarts.get(peer);
    if (restarting !== undefined) {
      try {
        restarting.onRestartMessage(msg);
      } catch (e) {
        if (!(e instanceof IceRestartError)) throw e;
        // The session ended with this error (the link reconnects); the restart's signaling is over.
        this.opts.onWarning?.(`ICE restart with responder ${peer} failed: ${e.message}`);
        this.restarts.delete(peer);
        client.closePeer(peer, CloseCode.ProtocolError);
      }
      return;
    }
    const s = this.pending.get(peer);
    if (s === undefined) return;
    if (msg.type === 'application') {
      s.onApplication(msg.data); // fallback through the server (4.8)
      return;
    }
    if (msg.type === 'close') return; // handled by the machine (peer-lost)
    s.onTaskMessage(msg);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    for (const link of [...this.links.values()]) link.close();
    for (const s of this.pending.values()) s.end(null);
    this.pending.clear();
    this.restarts.clear();
    this.client?.close();
  }
}
