// signaling/lan.ts: LAN address discovery, the local CA made once, and server certificates it re-issues only when needed.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServeConfig } from '../../signaling/config.ts';
import {
  LAN_CA_KEY,
  LAN_SERVER_KEY,
  certificateNames,
  fingerprintOf,
  lanAddresses,
  loadOrCreateLanCertificate,
} from '../../signaling/lan.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-lan-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const iface = (address: string, family: 'IPv4' | 'IPv6' = 'IPv4', internal = false) => ({ address, family, internal });

describe('LAN addresses', () => {
  it('lists non-loopback IPv4 addresses, private ranges first, without link-local or IPv6', () => {
    const found = lanAddresses({
      lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
      eth0: [iface('203.0.113.7'), iface('fe80::1', 'IPv6')],
      wlan0: [iface('192.168.1.20'), iface('169.254.3.4')],
      docker0: [iface('172.17.0.1')],
    });
    expect(found).toEqual(['192.168.1.20', '172.17.0.1', '203.0.113.7']);
    expect(lanAddresses({ lo: [iface('127.0.0.1', 'IPv4', true)] })).toEqual([]);
  });

  it('names the addresses, localhost and 127.0.0.1 in the certificate', () => {
    expect(certificateNames(['192.168.1.20', 'laptop.local'])).toEqual({
      ips: ['192.168.1.20', '127.0.0.1'],
      dns: ['laptop.local', 'localhost'],
    });
  });
});

describe('--lan flag', () => {
  it('listens on all interfaces, takes an optional address, and refuses flags it replaces', () => {
    expect(parseServeConfig(['--lan'], {}).lan).toEqual({ address: undefined });
    expect(parseServeConfig(['--lan'], {}).host).toBe('0.0.0.0');
    expect(parseServeConfig(['--lan', '10.1.2.3', '--port', '0'], {}).lan).toEqual({ address: '10.1.2.3' });
    expect(parseServeConfig(['--lan=10.1.2.3'], {}).lan).toEqual({ address: '10.1.2.3' });
    expect(parseServeConfig([], { ZEROROOM_LAN: 'true' }).lan).toEqual({ address: undefined });
    expect(parseServeConfig([], { ZEROROOM_LAN: '10.9.9.9' }).lan).toEqual({ address: '10.9.9.9' });
    expect(parseServeConfig([], { ZEROROOM_LAN: 'false' }).lan).toBeUndefined();
    expect(parseServeConfig([], {}).lan).toBeUndefined();
    expect(() => parseServeConfig(['--lan', '--host', '0.0.0.0'], {})).toThrow(/--lan sets what --host would/);
    expect(() => parseServeConfig(['--lan', '--app-url', 'https://x.example'], {})).toThrow(/--app-url/);
    expect(() => parseServeConfig(['--lan', 'a b'], {})).toThrow(/not an IPv4 address or host name/);
  });
});

describe('local CA and server certificate', () => {
  it('creates the CA once, issues a server certificate for the addresses, keeps both on a restart', async () => {
    const first = await loadOrCreateLanCertificate(dir, ['10.1.2.3']);
    expect(first.createdCa).toBe(true);
    expect(first.issuedServer).toBe(true);
    const [serverPem, caPem] = first.cert.split(/(?<=-----END CERTIFICATE-----\r?\n)/);
    const server = new X509Certificate(serverPem as string);
    const ca = new X509Certificate(caPem as string);
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('10.1.2.4')).toBeUndefined();
    expect(fingerprintOf(first.caDer)).toBe(first.caFingerprint);
    expect(first.caFingerprint).toBe(ca.fingerprint256);
    for (const f of [LAN_CA_KEY, LAN_SERVER_KEY]) expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);

    const again = await loadOrCreateLanCertificate(dir, ['10.1.2.3']);
    expect(again.createdCa).toBe(false);
    expect(again.issuedServer).toBe(false);
    expect(again.cert).toBe(first.cert);

    // A new network: same CA (a phone that installed it keeps trusting), new server certificate.
    const moved = await loadOrCreateLanCertificate(dir, ['192.168.7.7']);
    expect(moved.createdCa).toBe(false);
    expect(moved.issuedServer).toBe(true);
    expect(moved.caFingerprint).toBe(first.caFingerprint);
    expect(new X509Certificate(moved.cert).checkIP('192.168.7.7')).toBe('192.168.7.7');

    // Close to expiry: re-issued.
    const later = await loadOrCreateLanCertificate(dir, ['192.168.7.7'], Date.now() + 380 * 86_400_000);
    expect(later.issuedServer).toBe(true);
  });

  it('replaces a server certificate that the CA did not issue', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'zeroroom-lan-other-'));
    try {
      await loadOrCreateLanCertificate(other, ['10.0.0.1']);
      const foreign = await readFile(path.join(other, 'lan-server.crt'));
      await rm(path.join(dir, 'lan-server.crt'));
      await writeFile(path.join(dir, 'lan-server.crt'), foreign);
      const fixed = await loadOrCreateLanCertificate(dir, ['10.0.0.1']);
      expect(fixed.issuedServer).toBe(true);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
