/**
 * The owner driver's side of its own key update (docs/PROTOCOL.md 5.8.1 step 5): the link handles
 * of the paths the owner left, listened on for members that have not moved (`previousPaths` of the
 * state). Its keys and pending keys are PendingKeys (key-update-driver.ts), as a member's are.
 */
import { asBoxSecretKey, asBoxPublicKey, boxKeyPairFromSecret, fromHex } from '../../crypto/index.ts';
import type { OwnerHandle } from '../link/owner.ts';
import type { PeerLink } from '../link/peer-link.ts';
import type { DriverEnv, OwnerLinkPort } from './driver-ports.ts';
import { removedPeerKeys, retiredAuthTokens } from './owner.ts';
import { previousPathsOf } from './owner-update.ts';
import type { OwnerState, PeerKeyHex } from './types.ts';

/**
 * One link handle per path in `previousPaths`: no invites there, only the waiting members' peer
 * keys are trusted; retired invites and removed members get the authenticated refusal (4.1).
 */
export class PreviousPathHandles {
  private readonly handles = new Map<PeerKeyHex, OwnerHandle>();

  constructor(
    private readonly port: OwnerLinkPort,
    private readonly env: DriverEnv,
    private readonly state: () => OwnerState,
    private readonly onLink: (link: PeerLink) => void,
  ) {}

  /** Starts handles for paths the state lists, closes those it no longer lists. */
  sync(): void {
    const paths = previousPathsOf(this.state());
    for (const { path } of paths) {
      if (this.handles.has(path.peer)) continue;
      const permanentKeys = boxKeyPairFromSecret(asBoxSecretKey(path.secret));
      const trusted = (): PeerKeyHex[] => previousPathsOf(this.state()).find((p) => p.path.peer === path.peer)?.trusted ?? [];
      const handle = this.port(
        {
          pendingTokens: () => [],
          acceptToken: () => false,
          trustedKeys: () => trusted().map((hex) => asBoxPublicKey(fromHex(hex, 32))),
          refusedTokens: () => retiredAuthTokens(this.state(), this.env.timers.now()),
          refusedKeys: () => removedPeerKeys(this.state()).map((hex) => asBoxPublicKey(fromHex(hex, 32))),
          onLink: (link) => this.onLink(link),
          onWarning: (m) => this.env.log.warn(`previous path ${path.peer.slice(0, 8)}: ${m}`),
        },
        { permanentKeys },
      );
      this.handles.set(path.peer, handle);
      this.env.log.info(`listening on the previous path ${path.peer.slice(0, 8)} for members that have not moved`);
    }
    for (const [peer, handle] of this.handles) {
      if (paths.some((p) => p.path.peer === peer)) continue;
      handle.close();
      this.handles.delete(peer);
      this.env.log.info(`previous path ${peer.slice(0, 8)} closed: every member moved, or its time is up`);
    }
  }

  /** The open link to `peer` on a previous path, if any. */
  link(peer: PeerKeyHex): PeerLink | undefined {
    for (const h of this.handles.values()) {
      const l = h.links.get(peer);
      if (l !== undefined && l.state !== 'closed') return l;
    }
    return undefined;
  }

  /** Takes over a running handle (the path the owner just left): it keeps its links open. */
  adopt(peer: PeerKeyHex, handle: OwnerHandle): void {
    this.handles.get(peer)?.close();
    this.handles.set(peer, handle);
  }

  get paths(): PeerKeyHex[] {
    return [...this.handles.keys()];
  }

  close(): void {
    for (const h of this.handles.values()) h.close();
    this.handles.clear();
  }
}
