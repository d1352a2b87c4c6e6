/**
 * Invites (docs/PROTOCOL.md section 5.3): a msgpack map carried in the fragment of an app URL,
 * `<appUrl>/#join=<base64url>`. One strict decoder, shared by the web app and the CLI.
 */
import { EncodingError, fromBase64url, toBase64url, type BoxPublicKey, type EcPublicKey } from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import { Fields, encode } from '../msgpack.ts';
import { boxPublicField, ecPublicField } from './wire-keys.ts';
import { InviteError } from './errors.ts';

export interface Invite {
  readonly v: 1;
  readonly room: Uint8Array;
  readonly token: Uint8Array;
  /** Owner's identity public key (Themis EC). */
  readonly opub: EcPublicKey;
  /** Owner's SaltyRTC permanent public key: the SaltyRTC path is its hex. */
  readonly npub: BoxPublicKey;
  readonly server: string;
  readonly spub?: Uint8Array;
  /** Expiry, ms since the Unix epoch. */
  readonly exp: number;
  readonly name?: string;
}

const INVITE_FIELDS = ['v', 'room', 'token', 'opub', 'npub', 'server', 'spub', 'exp', 'name'] as const;
const MAX_INVITE_BYTES = 2048;
const FRAGMENT_PREFIX = '#join=';

export function encodeInvite(invite: Invite): Uint8Array {
  return encode({
    v: 1,
    room: invite.room,
    token: invite.token,
    opub: invite.opub,
    npub: invite.npub,
    server: invite.server,
    spub: invite.spub,
    exp: invite.exp,
    name: invite.name,
  });
}

function checkServerUrl(server: string): void {
  let u: URL;
  try {
    u = new URL(server);
  } catch (e) {
    throw new DecodeError('invite: server is not a URL', { cause: e });
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new DecodeError('invite: server must be a ws: or wss: URL');
}

/** Strict decoder of the invite map; throws DecodeError. Expiry is not checked here. */
export function decodeInvite(bytes: Uint8Array): Invite {
  if (bytes.length > MAX_INVITE_BYTES) throw new DecodeError('invite: too large');
  const f = Fields.fromBytes(bytes, 'invite').only(INVITE_FIELDS);
  const v = f.int('v', { min: 1, max: 1 });
  const server = f.str('server', 512);
  checkServerUrl(server);
  const spub = f.optional('spub', (k) => f.bin(k, 32));
  const name = f.optional('name', (k) => f.str(k, 64));
  const npub = boxPublicField(f, 'npub', 'invite');
  return {
    v: v as 1,
    room: f.bin('room', 16),
    token: f.bin('token', 32),
    opub: ecPublicField(f, 'opub', 'invite'),
    npub,
    server,
    exp: f.int('exp', { min: 0, max: Number.MAX_SAFE_INTEGER }),
    ...(spub === undefined ? {} : { spub }),
    ...(name === undefined ? {} : { name }),
  };
}

/** `<appUrl>#join=<base64url(msgpack(invite))>`; any fragment of appUrl is replaced. */
export function inviteUrl(appUrl: string, invite: Invite): string {
  const u = new URL(appUrl);
  u.hash = FRAGMENT_PREFIX.slice(1) + toBase64url(encodeInvite(invite));
  return u.toString();
}

/** Strict decoder of an invite URL; throws InviteError('room.invite-malformed') for anything off. */
export function decodeInviteUrl(url: string): Invite {
  if (typeof url !== 'string' || url.length > 4096) throw new InviteError('room.invite-malformed', 'invite URL: not a string or too long');
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new InviteError('room.invite-malformed', 'invite URL: does not parse', { cause: e });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InviteError('room.invite-malformed', 'invite URL: not http(s)');
  if (!u.hash.startsWith(FRAGMENT_PREFIX)) throw new InviteError('room.invite-malformed', 'invite URL: no #join= fragment');
  try {
    return decodeInvite(fromBase64url(u.hash.slice(FRAGMENT_PREFIX.length)));
  } catch (e) {
    if (e instanceof DecodeError || e instanceof EncodingError) {
      throw new InviteError('room.invite-malformed', `invite URL: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** Joiner-side expiry check against the caller's clock. */
export function checkInviteFresh(invite: Invite, now: number): void {
  if (now > invite.exp) throw new InviteError('room.invite-expired', 'the invite has expired');
}
