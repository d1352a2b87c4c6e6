/**
 * Join latency (issue #10): a new member's link needs nothing from storage (fresh keys, the
 * invite's token and server), so it is started as soon as the app has loaded, while the user
 * chooses a password and the storage key is derived. Session.join takes the prepared key pair and
 * link for the same invite; anything else (another invite, custom ICE settings) discards it.
 * performance marks `zr:prewarm`, `zr:signaling-ready`, `zr:link-open` feed bench:web's split.
 */
import { generateBoxKeyPair, toHex, type BoxKeyPair } from '../../crypto/index.ts';
import { joinRoom } from '../../protocol/link/member.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';
import { saltyAuthToken } from '../../protocol/room/ids.ts';
import { checkInviteFresh, decodeInviteUrl } from '../../protocol/room/invite.ts';
import { browserWebSocket } from './browser-websocket.ts';
import type { IceServerSetting } from './types.ts';

export interface Prewarmed {
  readonly inviteUrl: string;
  readonly peer: BoxKeyPair;
  readonly link: Promise<PeerLink>;
}

let current: Prewarmed | null = null;

function mark(name: string): void {
  try {
    performance.mark(name);
  } catch {
    // marks are for measurements only
  }
}

/** Start joining the room of `inviteUrl` now; a malformed or expired invite is left to the join. */
export function prewarmJoin(inviteUrl: string, iceServers: readonly IceServerSetting[]): void {
  let invite: ReturnType<typeof decodeInviteUrl>;
  try {
    invite = decodeInviteUrl(inviteUrl);
    checkInviteFresh(invite, Date.now());
  } catch {
    return; // the join itself reports it, with the app's wording
  }
  discardPrewarmed();
  mark('zr:prewarm');
  const peer = generateBoxKeyPair();
  const link = joinRoom({
    signalingUrl: invite.server,
    ...(invite.spub !== undefined ? { serverKey: invite.spub as never } : {}),
    ownerKey: invite.npub,
    token: saltyAuthToken(invite.token),
    permanentKeys: peer,
    WebSocket: browserWebSocket(),
    iceServers: iceServers.map((s) => ({
      urls: [...s.urls],
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.credential !== undefined ? { credential: s.credential } : {}),
    })),
    onSignalingReady: () => mark('zr:signaling-ready'),
  }).then((l) => {
    mark('zr:link-open');
    return l;
  });
  // The runtime that takes it over reports failures (and retries); nobody may see an unhandled one.
  link.catch(() => undefined);
  current = { inviteUrl, peer, link };
  console.info(`prewarm: joining ${toHex(invite.room).slice(0, 8)} while the app unlocks`);
}

/** The prepared join for exactly this invite URL, once; null when there is none. */
export function takePrewarmed(inviteUrl: string): Prewarmed | null {
  if (current === null || current.inviteUrl !== inviteUrl) return null;
  const c = current;
  current = null;
  return c;
}

/** Drop a prepared join that will not be used (its link is closed). */
export function discardPrewarmed(): void {
  const c = current;
  current = null;
  c?.link.then(
    (l) => l.close(),
    () => undefined,
  );
}
