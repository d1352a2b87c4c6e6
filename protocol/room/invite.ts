/**
 * Invites (docs/PROTOCOL.md section 5.3), carried in the fragment of an app URL,
 * `<appUrl>#join=<base64url>`. Owners write version 2 (positional bytes: short enough for a small
 * QR code); version 1 (a msgpack map, written before) is still read. One strict decoder, shared by
 * the web app and the CLI.
 */
import {
  EncodingError,
  asBoxPublicKey,
  equalBytes,
  fromBase64url,
  toBase64url,
  utf8Decode,
  utf8Encode,
  type BoxPublicKey,
  type EcPublicKey,
} from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../errors.ts';
import { Fields, encode } from '../msgpack.ts';
import { boxPublicField, ecPublicField } from './wire-keys.ts';
import { InviteError } from './errors.ts';
import { ownerKeyCommit, roomIdOf } from './ids.ts';

/** What the owner puts in an invite (it knows its full identity key). */
export interface InviteParams {
  /** Ignored: links are always written as version 2 (section 5.3). */
  readonly v?: 1 | 2;
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
  /** Room name: only version 1 carried it; a v2 joiner learns it from join-accept. */
  readonly name?: string;
}

/** A decoded invite, either version. */
export interface Invite {
  readonly v: 1 | 2;
  readonly room: Uint8Array;
  readonly token: Uint8Array;
  /** The owner's identity key: in a v1 invite; a v2 joiner gets it over the link (owner-key). */
  readonly opub: EcPublicKey | null;
  /** The 16-byte commitment to the owner's identity key (computed from opub for v1). */
  readonly ocommit: Uint8Array;
  readonly npub: BoxPublicKey;
  /** Always filled in: a v2 invite that left it out names the app URL's WebSocket equivalent. */
  readonly server: string;
  readonly spub?: Uint8Array;
  /** Expiry, ms since the Unix epoch (a v2 invite has whole seconds). */
  readonly exp: number;
  readonly name?: string;
}

const V1_FIELDS = ['v', 'room', 'token', 'opub', 'npub', 'server', 'spub', 'exp', 'name'] as const;
const MAX_INVITE_BYTES = 2048;
const MAX_SERVER_BYTES = 512;
const FRAGMENT_PREFIX = '#join=';
const V2 = 0x02;
const FLAG_SPUB = 1;
const FLAG_SERVER = 2;
const FLAG_ROOM = 4;
/** version, flags, token, npub, ocommit, exp (section 5.3). */
const V2_FIXED = 1 + 1 + 32 + 32 + 16 + 4;
const MAX_EXP_SECONDS = 0xffffffff;

function checkServerUrl(server: string): void {
  let u: URL;
  try {
    u = new URL(server);
  } catch (e) {
    throw new DecodeError('invite: server is not a URL', { cause: e });
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new DecodeError('invite: server must be a ws: or wss: URL');
}

/**
 * The signaling URL a v2 invite leaves out: the app URL's WebSocket equivalent (http -> ws,
 * https -> wss, same host and port, path "/"). Null for an app URL that has none.
 */
export function defaultServerFor(appUrl: string | URL): string | null {
  const u = new URL(appUrl);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}/`;
}

/** Does `server` name the same server as `fallback` (trailing slashes do not matter, section 3)? */
function sameServer(server: string, fallback: string | null): boolean {
  if (fallback === null) return false;
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    return false;
  }
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return false;
  const f = new URL(fallback);
  return u.protocol === f.protocol && u.host === f.host && u.pathname.replace(/\/+$/, '') === '';
}

/** Version 1: the msgpack map written before version 2 (kept for tests of the decoder). */
export function encodeInviteV1(p: InviteParams): Uint8Array {
  return encode({
    v: 1,
    room: p.room,
    token: p.token,
    opub: p.opub,
    npub: p.npub,
    server: p.server,
    spub: p.spub,
    exp: p.exp,
    name: p.name,
  });
}

/**
 * Version 2 (section 5.3). `appUrl`: the link's app URL; when `server` is its WebSocket
 * equivalent it is left out. The room is left out when it is the id derived from `npub`.
 */
export function encodeInviteV2(p: InviteParams, appUrl?: string): Uint8Array {
  if (p.token.length !== 32 || p.room.length !== 16 || p.npub.length !== 32)
    throw new RangeError('invite: wrong token, room or npub length');
  if (p.spub !== undefined && p.spub.length !== 32) throw new RangeError('invite: spub must be 32 bytes');
  const seconds = Math.floor(p.exp / 1000);
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_EXP_SECONDS) throw new RangeError('invite: expiry out of range');
  const withRoom = !equalBytes(p.room, roomIdOf(p.npub));
  const withServer = !sameServer(p.server, appUrl === undefined ? null : defaultServerFor(appUrl));
  const server = withServer ? utf8Encode(p.server) : new Uint8Array(0);
  if (withServer) {
    checkServerUrl(p.server);
    if (server.length < 1 || server.length > MAX_SERVER_BYTES) throw new RangeError('invite: server URL longer than 512 bytes');
  }
  const out = new Uint8Array(V2_FIXED + (withRoom ? 16 : 0) + (p.spub !== undefined ? 32 : 0) + server.length);
  out[0] = V2;
  out[1] = (p.spub !== undefined ? FLAG_SPUB : 0) | (withServer ? FLAG_SERVER : 0) | (withRoom ? FLAG_ROOM : 0);
  out.set(p.token, 2);
  out.set(p.npub, 34);
  out.set(ownerKeyCommit(p.opub), 66);
  new DataView(out.buffer).setUint32(82, seconds);
  let at = V2_FIXED;
  if (withRoom) {
    out.set(p.room, at);
    at += 16;
  }
  if (p.spub !== undefined) {
    out.set(p.spub, at);
    at += 32;
  }
  out.set(server, at);
  return out;
}

function decodeV1(bytes: Uint8Array): Invite {
  const f = Fields.fromBytes(bytes, 'invite').only(V1_FIELDS);
  f.int('v', { min: 1, max: 1 });
  const server = f.str('server', MAX_SERVER_BYTES);
  checkServerUrl(server);
  const spub = f.optional('spub', (k) => f.bin(k, 32));
  const name = f.optional('name', (k) => f.str(k, 64));
  const npub = boxPublicField(f, 'npub', 'invite');
  const opub = ecPublicField(f, 'opub', 'invite');
  return {
    v: 1,
    room: f.bin('room', 16),
    token: f.bin('token', 32),
    opub,
    ocommit: ownerKeyCommit(opub),
    npub,
    server,
    exp: f.int('exp', { min: 0, max: Number.MAX_SAFE_INTEGER }),
    ...(spub === undefined ? {} : { spub }),
    ...(name === undefined ? {} : { name }),
  };
}

function decodeV2(bytes: Uint8Array, fallbackServer: string | null): Invite {
  if (bytes.length < V2_FIXED) throw new DecodeError('invite: shorter than the fixed fields');
  const flags = bytes[1]!;
  if ((flags & ~(FLAG_SPUB | FLAG_SERVER | FLAG_ROOM)) !== 0) throw new DecodeError('invite: unknown flags');
  const fixed = V2_FIXED + (flags & FLAG_ROOM ? 16 : 0) + (flags & FLAG_SPUB ? 32 : 0);
  const serverBytes = bytes.length - fixed;
  if (flags & FLAG_SERVER ? serverBytes < 1 || serverBytes > MAX_SERVER_BYTES : serverBytes !== 0) {
    throw new DecodeError('invite: length does not match the flags');
  }
  const copy = (at: number, n: number) => bytes.slice(at, at + n);
  let npub: BoxPublicKey;
  try {
    npub = asBoxPublicKey(copy(34, 32), 'npub');
  } catch (e) {
    if (e instanceof ZeroRoomError) throw new DecodeError('invite: npub is not a NaCl public key', { cause: e });
    throw e;
  }
  let at = V2_FIXED;
  const room = flags & FLAG_ROOM ? copy(at, 16) : roomIdOf(npub);
  if (flags & FLAG_ROOM) at += 16;
  const spub = flags & FLAG_SPUB ? copy(at, 32) : undefined;
  if (spub !== undefined) at += 32;
  let server: string;
  if (flags & FLAG_SERVER) {
    try {
      server = utf8Decode(bytes.subarray(at));
    } catch (e) {
      if (e instanceof EncodingError) throw new DecodeError('invite: server is not UTF-8', { cause: e });
      throw e;
    }
    checkServerUrl(server);
  } else {
    if (fallbackServer === null) throw new DecodeError('invite: no server, and no app URL to derive it from');
    server = fallbackServer;
  }
  return {
    v: 2,
    room,
    token: copy(2, 32),
    opub: null,
    ocommit: copy(66, 16),
    npub,
    server,
    exp: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(82) * 1000,
    ...(spub === undefined ? {} : { spub }),
  };
}

/**
 * Strict decoder of the invite bytes, either version; throws DecodeError. Expiry is not checked
 * here. `appUrl`: the URL the invite came in, to fill in a server a v2 invite left out.
 */
export function decodeInvite(bytes: Uint8Array, appUrl?: string): Invite {
  if (bytes.length > MAX_INVITE_BYTES) throw new DecodeError('invite: too large');
  if (bytes.length > 0 && bytes[0] === V2) return decodeV2(bytes, appUrl === undefined ? null : defaultServerFor(appUrl));
  return decodeV1(bytes);
}

/** `<appUrl>#join=<base64url(invite v2)>`; any fragment of appUrl is replaced. */
export function inviteUrl(appUrl: string, invite: InviteParams): string {
  const u = new URL(appUrl);
  u.hash = FRAGMENT_PREFIX.slice(1) + toBase64url(encodeInviteV2(invite, u.toString()));
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
    return decodeInvite(fromBase64url(u.hash.slice(FRAGMENT_PREFIX.length)), u.toString());
  } catch (e) {
    if (e instanceof DecodeError || e instanceof EncodingError) {
      throw new InviteError('room.invite-malformed', `invite URL: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** Joiner-side expiry check against the caller's clock. */
export function checkInviteFresh(invite: Pick<Invite, 'exp'>, now: number): void {
  if (now > invite.exp) throw new InviteError('room.invite-expired', 'the invite has expired');
}
