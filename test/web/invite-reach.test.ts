// Which invites another device can use (web/views/invite-reach.ts): the owner is warned about
// loopback and plain-http invites instead of being shown a QR code a phone cannot use.
import { describe, expect, it } from 'vitest';
import { generateBoxKeyPair, generateIdentity, initCrypto } from '../../crypto/index.ts';
import { inviteUrl, type InviteParams } from '../../protocol/room/invite.ts';
import { inviteReach, isLoopbackHostname } from '../../web/views/invite-reach.ts';

await initCrypto();
const base: InviteParams = {
  room: new Uint8Array(16),
  token: new Uint8Array(32),
  opub: generateIdentity().publicKey,
  npub: generateBoxKeyPair().publicKey,
  server: 'wss://192.168.1.20:8765',
  exp: 1,
};
const url = (app: string, server: string): string => inviteUrl(app, { ...base, server });

describe('invite reach', () => {
  it('accepts https/wss invites on a LAN or public address', () => {
    expect(inviteReach(url('https://192.168.1.20:8765', 'wss://192.168.1.20:8765')).kind).toBe('ok');
    expect(inviteReach(url('https://chat.example.com', 'wss://chat.example.com')).kind).toBe('ok');
  });

  it('warns about an app or signaling URL on a loopback address', () => {
    for (const [app, server] of [
      ['http://localhost:8765', 'ws://localhost:8765'],
      ['https://192.168.1.20:8765', 'wss://127.0.0.1:8765'],
      ['http://127.0.0.1:8765', 'wss://chat.example.com'],
      ['https://[::1]:8765', 'wss://chat.example.com'],
      ['https://app.localhost', 'wss://chat.example.com'],
    ] as const) {
      const r = inviteReach(url(app, server));
      expect(r.kind, `${app} ${server}`).toBe('loopback');
      if (r.kind !== 'ok') expect(r.fix).toContain('npm run start:lan');
    }
  });

  it('warns about plain http on a LAN address (no secure context on the phone)', () => {
    expect(inviteReach(url('http://192.168.1.20:8765', 'ws://192.168.1.20:8765')).kind).toBe('insecure');
    expect(inviteReach(url('https://192.168.1.20:8765', 'ws://192.168.1.20:8765')).kind).toBe('insecure');
  });

  it('knows loopback host names', () => {
    for (const h of ['localhost', 'LOCALHOST.', 'a.localhost', '127.0.0.1', '127.1.2.3', '[::1]'])
      expect(isLoopbackHostname(h), h).toBe(true);
    for (const h of ['192.168.1.2', 'localhost.example', '128.0.0.1', 'mylocalhost']) expect(isLoopbackHostname(h), h).toBe(false);
  });
});
