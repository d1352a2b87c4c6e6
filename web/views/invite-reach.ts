/**
 * Can another device use this invite? An invite whose app or signaling URL names a loopback address
 * (localhost, 127.x, [::1]) opens only on this computer; one over plain http on a LAN address opens
 * on a phone, but the page there is not a secure context (no WebCrypto: it cannot unlock). The
 * invite panel shows such an invite with a warning and the fix instead of a QR code a phone cannot
 * use (docs/OPERATIONS.md, "Trying it with a phone").
 */
import { decodeInviteUrl } from '../../protocol/room/invite.ts';
import { S } from '../strings.ts';

export type InviteReach =
  | { readonly kind: 'ok' }
  | { readonly kind: 'loopback' | 'insecure'; readonly host: string; readonly warning: string; readonly fix: string };

const FIX = S.inviteReachFix;

export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '[::1]' || h === '::1';
}

export function inviteReach(url: string): InviteReach {
  const app = new URL(url);
  const server = new URL(decodeInviteUrl(url).server);
  for (const u of [app, server]) {
    if (isLoopbackHostname(u.hostname)) {
      return {
        kind: 'loopback',
        host: u.hostname,
        warning: S.inviteLoopback(u.host),
        fix: FIX,
      };
    }
  }
  if (app.protocol === 'http:' || server.protocol === 'ws:') {
    return {
      kind: 'insecure',
      host: app.hostname,
      warning: S.inviteInsecure(app.host),
      fix: FIX,
    };
  }
  return { kind: 'ok' };
}
