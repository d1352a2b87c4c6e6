/**
 * `zeroroom serve --lan`: the machine's LAN addresses, and a local certificate authority plus a
 * server certificate for those addresses and localhost, so that a phone on the same Wi-Fi gets a
 * secure context (WebCrypto, camera) on https://<lan address>:PORT.
 *
 * The CA is made once and kept next to the server key (a device that installed it keeps trusting
 * this server); the server certificate is re-issued by that CA whenever the addresses it must
 * cover change (a new network) or it is about to expire. Certificates are built with node-forge
 * (X.509/ASN.1), keys with Node's native RSA key generation.
 */
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';

export const LAN_CA_CERT = 'lan-ca.crt';
export const LAN_CA_KEY = 'lan-ca.key';
export const LAN_SERVER_CERT = 'lan-server.crt';
export const LAN_SERVER_KEY = 'lan-server.key';

/** Server certificates live 397 days (the most browsers accept); the CA ten years. */
const SERVER_DAYS = 397;
const CA_DAYS = 3650;
/** Re-issue the server certificate when it has less than this left. */
const RENEW_BEFORE_MS = 30 * 86_400_000;

const PRIVATE_V4 = [/^10\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./];

/**
 * Non-loopback IPv4 addresses of this machine, private (RFC 1918) ranges first: the addresses a
 * phone on the same network can reach. IPv6 is left out (link-local ones need a zone id in URLs,
 * and every home network that has IPv6 has IPv4 too).
 */
export function lanAddresses(
  interfaces: Readonly<Record<string, ReadonlyArray<{ address: string; family: string; internal: boolean }> | undefined>>,
): string[] {
  const found: string[] = [];
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (info.internal || info.family !== 'IPv4' || info.address.startsWith('169.254.')) continue;
      if (!found.includes(info.address)) found.push(info.address);
    }
  }
  const rank = (a: string): number => (PRIVATE_V4.some((r) => r.test(a)) ? 0 : 1);
  return found.sort((a, b) => rank(a) - rank(b));
}

/** Addresses the server certificate names: the LAN addresses, then localhost and 127.0.0.1. */
export function certificateNames(addresses: readonly string[]): { ips: string[]; dns: string[] } {
  const ips = [...new Set([...addresses.filter((a) => isIP(a) !== 0), '127.0.0.1'])];
  const dns = [...new Set([...addresses.filter((a) => isIP(a) === 0), 'localhost'])];
  return { ips, dns };
}

export interface LanCertificate {
  /** PEM chain for the TLS server: server certificate, then the CA. */
  readonly cert: string;
  readonly key: string;
  /** The CA certificate, DER, served at /ca.crt for devices that want to install it. */
  readonly caDer: Uint8Array;
  /** SHA-256 of the CA certificate (DER) as colon-separated upper-case hex, as phones show it. */
  readonly caFingerprint: string;
  /** True when this start created the CA (first run with --lan in this key directory). */
  readonly createdCa: boolean;
  /** True when this start issued a new server certificate. */
  readonly issuedServer: boolean;
}

function serial(): string {
  // Positive 16-byte serial (leading nibble < 8), as RFC 5280 asks.
  const bytes = forge.random.getBytesSync(16);
  const hex = forge.util.bytesToHex(bytes);
  return (parseInt(hex[0] as string, 16) & 0x7).toString(16) + hex.slice(1);
}

function rsaKeyPair(): { pem: string; forgeKey: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { pem, forgeKey, forgePublic: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

function issueCa(): { certPem: string; keyPem: string } {
  const keys = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.forgePublic;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + CA_DAYS * 86_400_000);
  const name = [
    { name: 'commonName', value: 'ZeroRoom local CA' },
    { name: 'organizationName', value: 'ZeroRoom (this computer only)' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgeKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem };
}

function issueServer(caCertPem: string, caKeyPem: string, addresses: readonly string[]): { certPem: string; keyPem: string } {
  const ca = forge.pki.certificateFromPem(caCertPem);
  const caKey = forge.pki.privateKeyFromPem(caKeyPem);
  const keys = rsaKeyPair();
  const { ips, dns } = certificateNames(addresses);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.forgePublic;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + SERVER_DAYS * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: ips[0] ?? dns[0] ?? 'localhost' }]);
  cert.setIssuer(ca.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...dns.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))] },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem };
}

/** Does `certPem` (issued by `caPem`) name every address we need and live long enough? */
function serverCertFits(certPem: string, caPem: string, addresses: readonly string[], nowMs: number): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.verify(ca.publicKey) || !cert.checkIssued(ca)) return false;
    if (Date.parse(cert.validTo) - nowMs < RENEW_BEFORE_MS || Date.parse(cert.validFrom) > nowMs) return false;
    const { ips, dns } = certificateNames(addresses);
    return ips.every((ip) => cert.checkIP(ip) !== undefined) && dns.every((d) => cert.checkHost(d) !== undefined);
  } catch {
    return false; // unreadable or foreign file: issue a new one
  }
}

async function writePrivate(file: string, text: string): Promise<void> {
  // Write beside and rename: a crash never leaves half a key behind.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** colon-separated upper-case hex of SHA-256(der). */
export function fingerprintOf(der: Uint8Array): string {
  return createHash('sha256')
    .update(der)
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
}

/**
 * The CA in `dir` (created on first use) and a server certificate from it that covers `addresses`
 * plus localhost (re-issued only when needed). Files are mode 0600 (keys) and 0644 (certificates).
 */
export async function loadOrCreateLanCertificate(dir: string, addresses: readonly string[], nowMs = Date.now()): Promise<LanCertificate> {
  const caCertFile = path.join(dir, LAN_CA_CERT);
  const caKeyFile = path.join(dir, LAN_CA_KEY);
  const certFile = path.join(dir, LAN_SERVER_CERT);
  const keyFile = path.join(dir, LAN_SERVER_KEY);
  let createdCa = false;
  if (!existsSync(caCertFile) || !existsSync(caKeyFile)) {
    const ca = issueCa();
    await writePrivate(caKeyFile, ca.keyPem);
    await writeFile(caCertFile, ca.certPem, { mode: 0o644 });
    createdCa = true;
  }
  const caCertPem = await readFile(caCertFile, 'utf8');
  const caKeyPem = await readFile(caKeyFile, 'utf8');
  let issuedServer = false;
  const existing = existsSync(certFile) && existsSync(keyFile) ? await readFile(certFile, 'utf8') : null;
  if (existing === null || !serverCertFits(existing, caCertPem, addresses, nowMs)) {
    const server = issueServer(caCertPem, caKeyPem, addresses);
    await writePrivate(keyFile, server.keyPem);
    await writeFile(certFile, server.certPem, { mode: 0o644 });
    issuedServer = true;
  }
  const certPem = await readFile(certFile, 'utf8');
  const keyPem = await readFile(keyFile, 'utf8');
  const caDer = new Uint8Array(new X509Certificate(caCertPem).raw);
  return { cert: certPem + caCertPem, key: keyPem, caDer, caFingerprint: fingerprintOf(caDer), createdCa, issuedServer };
}
