import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BoxKeyPair } from '../crypto/nacl.ts';
import { formatFlagHelp } from './cli-args.ts';
import { CliError, type CliIo, type Command, EXIT_OK } from './cli.ts';
import { SERVE_FLAGS, type ServeConfig, parseServeConfig } from './config.ts';
import { createHttpHandler, securityHeaders } from './http.ts';
import { KeyFileError, loadOrCreateKeyFile } from './keyfile.ts';
import { type LanCertificate, lanAddresses, loadOrCreateLanCertificate } from './lan.ts';
import { SignalingMetrics } from './metrics.ts';
import { RelayBudget } from './relay-budget.ts';
import { attachSignalingServer, behindProxy, defaultLimits, type SignalingServerOptions } from './server.ts';
import { type StaticSite, openStaticSite } from './static-files.ts';
import { type IceServer, turnCredentials } from './turn-credentials.ts';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILT_APP = path.join(PACKAGE_ROOT, 'web', 'dist');
const PLACEHOLDER = path.join(PACKAGE_ROOT, 'signaling', 'placeholder');
const NO_APP = path.join(PACKAGE_ROOT, 'signaling', 'no-app');

export const command: Command = {
  help: () =>
    [
      'usage: zeroroom serve [options]',
      '',
      'Runs the SaltyRTC 1.0 signaling server on ws(s)://HOST:PORT/<64 hex> and, on the same port, the web app,',
      'GET /healthz, GET /metrics (Prometheus) and GET /config.json (ICE servers for the app).',
      'Every option can also be set with the ZEROROOM_* variable named next to it; options win.',
      '',
      formatFlagHelp(SERVE_FLAGS),
    ].join('\n'),
  run: async (args, io) => {
    const config = parseServeConfig(args, io.env);
    // Handlers go in before the start lines are printed: a supervisor may signal right after them.
    const signalled = waitForSignal(io);
    const running = await startServer(config, io);
    await signalled;
    // A stuck close must not keep a stopping service alive forever.
    setTimeout(() => {
      io.err('zeroroom: shutdown took longer than 10 s, exiting');
      process.exit(1);
    }, 10_000).unref();
    await running.close();
    io.out('zeroroom: stopped');
    return EXIT_OK;
  },
};

export interface RunningServer {
  readonly url: string;
  readonly publicKeyHex: string;
  close(): Promise<void>;
}

export async function startServer(config: ServeConfig, io: CliIo): Promise<RunningServer> {
  const keys: BoxKeyPair[] = [];
  for (const file of config.keyFiles) keys.push(await loadKey(file));
  const primary = keys[0] as BoxKeyPair;
  const publicKeyHex = Buffer.from(primary.publicKey).toString('hex');
  const turnSecret = config.turn === undefined ? undefined : await readTurnSecret(config.turn.secret);
  const { site, placeholder } = await openSite(config);

  const lan = config.lan === undefined ? undefined : await lanSetup(config.lan.address, config.keyFiles[0] as string);
  const tlsOptions =
    lan !== undefined
      ? { cert: lan.certificate.cert, key: lan.certificate.key }
      : config.tls === undefined
        ? undefined
        : await readTls(config.tls);
  const relayBudget = new RelayBudget(config.relayBudget);
  const metrics = new SignalingMetrics();
  metrics.relayBudget = relayBudget.stats;
  const scheme = tlsOptions === undefined ? 'http' : 'https';
  // Filled in once the port is known (port 0 picks a free one).
  let listenOrigin = '';
  let port = 0;
  /** --lan: https://<first LAN address>:PORT, for invites and /config.json whatever host the browser used. */
  let lanOrigin: string | undefined;
  const headers: Record<string, string> = {};
  const wildcard = isWildcard(config.host);
  const handler = createHttpHandler({
    site,
    metrics,
    headers,
    ...(lan !== undefined ? { caCertificate: lan.certificate.caDer } : {}),
    configJson: (host) => {
      // Without configured public URLs, answer with the address the browser used (e.g. localhost vs
      // 127.0.0.1, or the LAN name when listening on 0.0.0.0); the listening address is the fallback.
      // A loopback name is no use in an invite: when listening on all interfaces, a LAN address
      // of this machine stands in for it.
      const lanHost = wildcard && (host === undefined || isLoopbackHost(host)) ? lanAddresses(os.networkInterfaces())[0] : undefined;
      const origin =
        lanOrigin ?? (lanHost !== undefined ? `${scheme}://${lanHost}:${port}` : host !== undefined ? `${scheme}://${host}` : listenOrigin);
      const iceServers: IceServer[] = config.iceServerUrls.map((urls) => ({ urls }));
      let iceServersExpireAt: number | undefined;
      if (config.turn !== undefined && turnSecret !== undefined) {
        const turn = turnCredentials({ secret: turnSecret, urls: config.turn.urls, ttlSeconds: config.turn.ttlSeconds, nowMs: Date.now() });
        iceServers.push(turn.server);
        iceServersExpireAt = turn.expiresAt;
      }
      return {
        iceServers,
        ...(iceServersExpireAt !== undefined ? { iceServersExpireAt } : {}),
        appUrl: config.appUrl ?? origin,
        signalingUrl: config.signalingUrl ?? wsOf(origin),
        serverKey: publicKeyHex,
      };
    },
    onError: (what, e) => io.err(`zeroroom: ${what} error: ${e instanceof Error ? e.message : String(e)}`),
  });
  let server: http.Server | https.Server;
  try {
    server = tlsOptions === undefined ? http.createServer(handler) : https.createServer(tlsOptions, handler);
  } catch (e) {
    // OpenSSL refuses a file that is not a PEM certificate/key, or a key that does not match.
    throw new CliError(`--tls-cert/--tls-key: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  // Several nodes: only with --redis is the cluster code (and the Redis client) loaded at all.
  const cluster = config.redis === undefined ? undefined : await startCluster(config.redis, config, io);
  const signaling = attachSignalingServer({
    ...(cluster !== undefined ? { registry: cluster.registry } : {}),
    server,
    permanentKeys: keys,
    limits: config.limits,
    observer: metrics,
    relayBudget,
    ...(config.trustedProxies.length > 0 ? { clientAddress: behindProxy(config.trustedProxies) } : {}),
    log: config.quiet ? () => {} : (event, fields) => io.err(formatLog(event, fields)),
  });

  await listen(server, config.host, config.port).catch(async (e: unknown) => {
    await signaling.close();
    await cluster?.close();
    throw new CliError(`cannot listen on ${config.host}:${config.port}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  });
  port = (server.address() as AddressInfo).port;
  listenOrigin = `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (lan !== undefined) lanOrigin = `https://${lan.addresses[0] as string}:${port}`;
  // connect-src names the origins clients really open WebSockets to: for a wildcard bind, every
  // address of this machine (and localhost), never 0.0.0.0 itself.
  const reachable = wildcard
    ? [...(lan?.addresses ?? []), ...lanAddresses(os.networkInterfaces()), '127.0.0.1', 'localhost'].map((h) => `${scheme}://${h}:${port}`)
    : [listenOrigin];
  const connectOrigins = [
    ...reachable.map(wsOf),
    ...(config.signalingUrl !== undefined ? [new URL(config.signalingUrl).origin] : []),
    ...config.connectOrigins,
  ];
  Object.assign(headers, securityHeaders({ connectOrigins: [...new Set(connectOrigins)], tls: tlsOptions !== undefined }));

  io.out(`zeroroom: listening on ${listenOrigin}`);
  io.out(`zeroroom: server public key ${publicKeyHex}`);
  for (const extra of keys.slice(1)) io.out(`zeroroom: also accepting server key ${Buffer.from(extra.publicKey).toString('hex')}`);
  if (cluster !== undefined) io.out(`zeroroom: cluster node ${cluster.nodeId} on Redis ${cluster.where}`);
  io.out(
    `zeroroom: serving ${config.webRoot === 'none' ? 'no web app (--web none: it is hosted elsewhere)' : placeholder ? 'the placeholder page (web app not built)' : `web app from ${site.root}`}`,
  );
  if (lan !== undefined && lanOrigin !== undefined) await printLanBanner(io, lanOrigin, lan);

  return {
    url: listenOrigin,
    publicKeyHex,
    close: async () => {
      // Signaling first: it closes every client with 1001 (going away); then the HTTP side.
      await signaling.close();
      await cluster?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function startCluster(
  redis: { url: string; leaseMs: number },
  config: ServeConfig,
  io: CliIo,
): Promise<{ registry: NonNullable<SignalingServerOptions['registry']>; nodeId: string; where: string; close(): Promise<void> }> {
  const { ClusterNode, clusterRegistry, timingForLease } = await import('./cluster/node.ts');
  const parsed = new URL(redis.url);
  const where = `${parsed.protocol}//${parsed.host}`; // never the password
  let node: Awaited<ReturnType<typeof ClusterNode.start>>;
  try {
    node = await ClusterNode.start({
      url: redis.url,
      timing: timingForLease(redis.leaseMs),
      maxPayload: config.limits.maxPayload ?? defaultLimits.maxPayload,
      log: config.quiet ? () => {} : (event, fields) => io.err(formatLog(event, fields)),
    });
  } catch (e) {
    throw new CliError(`--redis ${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return { registry: clusterRegistry(node), nodeId: node.nodeId ?? '?', where, close: () => node.close() };
}

interface LanSetup {
  readonly addresses: readonly string[];
  readonly certificate: LanCertificate;
}

/** --lan: the addresses to serve on and a certificate for them, next to the (first) server key. */
async function lanSetup(address: string | undefined, keyFile: string): Promise<LanSetup> {
  const addresses = address !== undefined ? [address] : lanAddresses(os.networkInterfaces());
  if (addresses.length === 0)
    throw new CliError('--lan: this machine has no LAN address (no non-loopback IPv4 interface); give one: --lan 192.168.1.20');
  const dir = path.dirname(path.resolve(keyFile));
  try {
    return { addresses, certificate: await loadOrCreateLanCertificate(dir, addresses) };
  } catch (e) {
    throw new CliError(`--lan: cannot create the certificate in ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** What a person needs to try it with a phone: the URL, a QR code of it, and the CA's fingerprint. */
async function printLanBanner(io: CliIo, origin: string, lan: LanSetup): Promise<void> {
  const { default: QRCode } = await import('qrcode');
  io.out(`zeroroom: LAN URL ${origin}`);
  io.out(`zeroroom: LAN CA fingerprint (SHA-256) ${lan.certificate.caFingerprint}`);
  io.out(`zeroroom: LAN CA certificate ${origin}/ca.crt`);
  if (lan.addresses.length > 1) io.out(`zeroroom: also reachable on ${lan.addresses.slice(1).join(', ')}`);
  io.out('');
  io.out(await QRCode.toString(origin, { type: 'terminal', small: true, errorCorrectionLevel: 'M' }));
  io.out(`Open ${origin} on this computer AND on your phone (same Wi-Fi; scan the code above).`);
  io.out("The browser warns once about the certificate: it is this computer's own CA (fingerprint above).");
  io.out(`Accept it, or install ${origin}/ca.crt on the phone (docs/OPERATIONS.md "Trying it with a phone").`);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** localhost, *.localhost, 127.x.y.z or [::1], with or without a port. */
export function isLoopbackHost(hostWithPort: string): boolean {
  const host = hostWithPort.startsWith('[') ? hostWithPort.slice(0, hostWithPort.indexOf(']') + 1) : hostWithPort.replace(/:\d+$/, '');
  return /^(localhost|.*\.localhost)\.?$/i.test(host) || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';
}

function wsOf(httpOrigin: string): string {
  return httpOrigin.replace(/^http/, 'ws');
}

async function loadKey(file: string): Promise<BoxKeyPair> {
  try {
    // The default key file lives in ./.zeroroom/, which a fresh checkout does not have.
    if (!existsSync(file)) await mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
    return loadOrCreateKeyFile(file);
  } catch (e) {
    // KeyFileError messages already name the file and the fix.
    if (e instanceof KeyFileError) throw new CliError(`key file ${e.message}`, { cause: e });
    throw new CliError(`key file ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

async function readTurnSecret(secret: { value: string } | { file: string }): Promise<string> {
  if ('value' in secret) return secret.value;
  let text: string;
  try {
    text = await readFile(secret.file, 'utf8');
  } catch (e) {
    throw new CliError(`--turn-secret-file ${secret.file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const value = text.replace(/\r?\n$/, '');
  if (value.length < 16) throw new CliError(`--turn-secret-file ${secret.file}: the secret must be at least 16 characters`);
  return value;
}

async function readTls(tls: { certPath: string; keyPath: string }): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(tls.certPath), key: await readFile(tls.keyPath) };
  } catch (e) {
    throw new CliError(`TLS files: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

async function openSite(config: ServeConfig): Promise<{ site: StaticSite; placeholder: boolean }> {
  // `--web none`: the app is hosted on its own origin (docs/PROTOCOL.md section 8); serve only a page saying so.
  const dir =
    config.webRoot === 'none' ? NO_APP : (config.webRoot ?? (existsSync(path.join(BUILT_APP, 'index.html')) ? BUILT_APP : PLACEHOLDER));
  try {
    return { site: await openStaticSite(dir), placeholder: dir === PLACEHOLDER || dir === NO_APP };
  } catch (e) {
    throw new CliError(`--web ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** `zeroroom: event key=value ...`; values with spaces or quotes are JSON-quoted. */
function formatLog(event: string, fields: Record<string, string | number | boolean>): string {
  const parts = Object.entries(fields).map(([k, v]) => {
    const s = String(v);
    return `${k}=${/^[\w.:/-]*$/.test(s) ? s : JSON.stringify(s)}`;
  });
  return [`zeroroom: ${event}`, ...parts].join(' ');
}

/** Resolves on the first SIGTERM or SIGINT; a second one while shutting down exits at once. */
function waitForSignal(io: CliIo): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      io.out(`zeroroom: ${signal}, shutting down`);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      const force = () => process.exit(1);
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
