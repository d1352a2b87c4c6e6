/**
 * The real MeshLinkPort (docs/PROTOCOL.md 5.16) over the link layer, for the browser and the CLI:
 * a member hosts its own path as a SaltyRTC initiator that takes no invite tokens and admits only
 * the roster keys the driver names, and dials a peer's path as a responder with its trusted key.
 */
import type { EndpointOptions } from '../link/endpoint.ts';
import { joinRoom } from '../link/member.ts';
import { startOwner } from '../link/owner.ts';
import type { MeshLinkPort } from './driver-ports.ts';

export function meshLinkPort(endpoint: EndpointOptions): MeshLinkPort {
  return {
    host: (hooks, keys) => startOwner({ ...endpoint, ...keys, pendingTokens: () => [], acceptToken: () => false, ...hooks }),
    dial: (peer, keys) => joinRoom({ ...endpoint, ...keys, ownerKey: peer }),
  };
}
