import { isIP } from 'node:net';
import { MAX_MAX_PAYLOAD, MIN_MAX_PAYLOAD, type SignalingLimits, defaultLimits } from './server.ts';
import { type FlagSpec, UsageError, flagBool, flagInt, flagList, flagString, parseFlags } from './cli-args.ts';
import { RELAY_BUDGET_RANGES, type RelayBudgetLimits, defaultRelayBudget } from './relay-budget.ts';

/** Everything `zeroroom serve` needs, resolved from flags, `ZEROROOM_*` variables and defaults. */
export interface ServeConfig {
  readonly host: string;
  readonly port: number;
  /** First file = the key the server presents to clients that pin none; the rest stay accepted (rotation). */
  readonly keyFiles: readonly string[];
  readonly tls: { readonly certPath: string; readonly keyPath: string } | undefined;
  /** `--web DIR`; undefined = the package's web/dist if built, else the placeholder page; 'none' = no app. */
  readonly webRoot: string | undefined;
  readonly limits: Partial<SignalingLimits>;
  readonly iceServerUrls: readonly string[];
  readonly turn: TurnConfig | undefined;
  /** Public URLs announced in /config.json; undefined = derived from the listening address. */
  readonly appUrl: string | undefined;
  readonly signalingUrl: string | undefined;
  /** Extra origins the app may open WebSockets to (CSP connect-src). */
  readonly connectOrigins: readonly string[];
  /** Reverse proxies whose last X-Forwarded-For hop is taken as the client address (per-IP limits). */
  readonly trustedProxies: readonly string[];
  readonly quiet: boolean;
  /** Several nodes sharing paths through Redis (docs/PROTOCOL.md 3.9); undefined = this process alone. */
  readonly redis: { readonly url: string; readonly leaseMs: number } | undefined;
  /**
   * `--lan [ADDR]`: listen on all interfaces and serve https/wss with a local CA's certificate for
   * ADDR (else the machine's LAN addresses) and localhost; invites and /config.json use
   * https://<lan address>:PORT (signaling/lan.ts). `address` undefined = find the addresses.
   */
  readonly lan: { readonly address: string | undefined } | undefined;
  /** Per-path budget for relayed client-to-client data (docs/PROTOCOL.md 3.9). */
  readonly relayBudget: RelayBudgetLimits;
}

export interface TurnConfig {
  readonly urls: readonly string[];
  readonly secret: { readonly value: string } | { readonly file: string };
  readonly ttlSeconds: number;
}

export const DEFAULT_PORT = 8765;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_KEY_FILE = './.zeroroom/server.key';
export const DEFAULT_ICE_SERVER = 'stun:stun.l.google.com:19302';
export const DEFAULT_TURN_TTL_SECONDS = 3600;
export const DEFAULT_REDIS_LEASE_MS = 10_000;

/** Limit flags, named after the `SignalingLimits` fields they set. */
const LIMIT_FLAGS: ReadonlyArray<{ flag: FlagSpec; field: keyof SignalingLimits }> = [
  {
    field: 'maxPayload',
    flag: {
      name: 'max-payload',
      kind: 'int',
      valueName: 'BYTES',
      min: MIN_MAX_PAYLOAD,
      max: MAX_MAX_PAYLOAD,
      help: 'largest WebSocket message accepted',
      defaultText: String(defaultLimits.maxPayload),
    },
  },
  {
    field: 'maxConnections',
    flag: {
      name: 'max-connections',
      kind: 'int',
      valueName: 'N',
      min: 1,
      help: 'open WebSocket connections in total',
      defaultText: String(defaultLimits.maxConnections),
    },
  },
  {
    field: 'maxConnectionsPerIp',
    flag: {
      name: 'max-connections-per-ip',
      kind: 'int',
      valueName: 'N',
      min: 1,
      help: 'open connections from one IP address',
      defaultText: String(defaultLimits.maxConnectionsPerIp),
    },
  },
  {
    field: 'newConnectionsPerSecondPerIp',
    flag: {
      name: 'connections-per-second-per-ip',
      kind: 'int',
      valueName: 'N',
      min: 1,
      help: 'new connections per second from one IP address',
      defaultText: String(defaultLimits.newConnectionsPerSecondPerIp),
    },
  },
  {
    field: 'handshakeTimeoutMs',
    flag: {
      name: 'handshake-timeout-ms',
      kind: 'int',
      valueName: 'MS',
      min: 100,
      max: 600_000,
      help: 'time a client has to finish the server handshake',
      defaultText: String(defaultLimits.handshakeTimeoutMs),
    },
  },
  {
    field: 'pingTimeoutMs',
    flag: {
      name: 'ping-timeout-ms',
      kind: 'int',
      valueName: 'MS',
      min: 10,
      max: 600_000,
      help: 'time a client has to answer a WebSocket ping before it is closed',
      defaultText: String(defaultLimits.pingTimeoutMs),
    },
  },
];

const RELAY_FLAGS: ReadonlyArray<{ flag: FlagSpec; field: keyof RelayBudgetLimits }> = [
  {
    field: 'bytesPerSecond',
    flag: {
      name: 'relay-bytes-per-second',
      kind: 'int',
      valueName: 'BYTES',
      min: RELAY_BUDGET_RANGES.bytesPerSecond[0],
      max: RELAY_BUDGET_RANGES.bytesPerSecond[1],
      help: 'relay budget per path: sustained client-to-client bytes per second (fallback traffic)',
      defaultText: String(defaultRelayBudget.bytesPerSecond),
    },
  },
  {
    field: 'burstBytes',
    flag: {
      name: 'relay-burst-bytes',
      kind: 'int',
      valueName: 'BYTES',
      min: RELAY_BUDGET_RANGES.burstBytes[0],
      max: RELAY_BUDGET_RANGES.burstBytes[1],
      help: 'relay budget per path: burst size in bytes',
      defaultText: String(defaultRelayBudget.burstBytes),
    },
  },
  {
    field: 'framesPerSecond',
    flag: {
      name: 'relay-frames-per-second',
      kind: 'int',
      valueName: 'N',
      min: RELAY_BUDGET_RANGES.framesPerSecond[0],
      max: RELAY_BUDGET_RANGES.framesPerSecond[1],
      help: 'relay budget per path: sustained frames per second (burst: two seconds worth)',
      defaultText: String(defaultRelayBudget.framesPerSecond),
    },
  },
];

export const SERVE_FLAGS: readonly FlagSpec[] = [
  { name: 'host', kind: 'string', valueName: 'ADDR', help: 'address to listen on', defaultText: DEFAULT_HOST },
  {
    name: 'port',
    kind: 'int',
    valueName: 'PORT',
    min: 0,
    max: 65535,
    help: 'TCP port (0 = any free port)',
    defaultText: String(DEFAULT_PORT),
  },
  {
    name: 'key-file',
    kind: 'list',
    valueName: 'PATH',
    help: 'permanent server key, created (mode 0600) if absent; the first is presented, later ones stay accepted',
    defaultText: DEFAULT_KEY_FILE,
  },
  { name: 'tls-cert', kind: 'string', valueName: 'PATH', help: 'PEM certificate chain: serve https/wss (needs --tls-key)' },
  { name: 'tls-key', kind: 'string', valueName: 'PATH', help: 'PEM private key for --tls-cert' },
  {
    name: 'web',
    kind: 'string',
    valueName: 'DIR',
    help: "static app to serve; 'none': no app (it is hosted on its own origin)",
    defaultText: 'web/dist if built, else a placeholder page',
  },
  ...LIMIT_FLAGS.map((l) => l.flag),
  ...RELAY_FLAGS.map((l) => l.flag),
  {
    name: 'ice-server',
    kind: 'list',
    valueName: 'URL',
    help: 'STUN/TURN URL announced in /config.json ("none" for no default)',
    defaultText: DEFAULT_ICE_SERVER,
  },
  { name: 'turn-url', kind: 'list', valueName: 'URL', help: 'TURN URL that gets short-lived credentials (needs a TURN secret)' },
  {
    name: 'turn-secret',
    kind: 'string',
    valueName: 'SECRET',
    help: "coturn's --static-auth-secret (prefer the variable or --turn-secret-file)",
  },
  { name: 'turn-secret-file', kind: 'string', valueName: 'PATH', help: 'file holding the TURN secret' },
  {
    name: 'turn-ttl',
    kind: 'int',
    valueName: 'SECONDS',
    min: 60,
    max: 7 * 24 * 3600,
    help: 'lifetime of TURN credentials',
    defaultText: String(DEFAULT_TURN_TTL_SECONDS),
  },
  {
    name: 'app-url',
    kind: 'string',
    valueName: 'URL',
    help: 'public URL of the web app (used in invites)',
    defaultText: 'the origin the browser used',
  },
  {
    name: 'signaling-url',
    kind: 'string',
    valueName: 'URL',
    help: 'public ws(s) URL of this server, e.g. behind a proxy',
    defaultText: 'ws(s) on the host the browser used',
  },
  { name: 'connect-origin', kind: 'list', valueName: 'ORIGIN', help: 'extra ws(s) origin the app may connect to (CSP connect-src)' },
  {
    name: 'trust-proxy',
    kind: 'list',
    valueName: 'IP',
    help: 'reverse proxy address whose X-Forwarded-For (last hop) names the client, for the per-IP limits',
  },
  { name: 'quiet', kind: 'bool', help: 'log only start, stop and errors' },
  {
    name: 'redis',
    kind: 'string',
    valueName: 'URL',
    env: 'ZEROROOM_REDIS_URL',
    help: 'redis:// or rediss:// URL: share paths with every node using the same Redis (several nodes behind a load balancer)',
  },
  {
    name: 'redis-lease-ms',
    kind: 'int',
    valueName: 'MS',
    min: 1000,
    max: 600_000,
    help: "a node that has not renewed its lease in Redis for this long is dead: its clients' peers are told within 1.2x this",
    defaultText: String(DEFAULT_REDIS_LEASE_MS),
  },
  {
    name: 'lan',
    kind: 'optional',
    valueName: 'ADDR',
    help: "try it with a phone: listen on all interfaces, https/wss with a local CA for ADDR (default: this machine's LAN addresses) and localhost",
  },
];

/** Accepts `url` only if it parses, has one of `schemes` and contains nothing that could break a header. */
function checkUrl(source: string, url: string, schemes: readonly string[]): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (e) {
    throw new UsageError(`${source}: "${url}" is not a URL`);
  }
  if (!schemes.includes(parsed.protocol)) throw new UsageError(`${source}: "${url}" must start with ${schemes.join(' or ')}`);
  // The value ends up in a CSP header and in JSON: no whitespace, quotes, semicolons or commas.
  if (/[\s;,'"<>\\]/.test(url)) throw new UsageError(`${source}: "${url}" contains characters not allowed in a URL here`);
  return parsed;
}

function checkOrigin(source: string, url: string, schemes: readonly string[]): string {
  const parsed = checkUrl(source, url, schemes);
  if (parsed.origin + '/' !== parsed.href && parsed.origin !== url)
    throw new UsageError(`${source}: "${url}" must be an origin (scheme://host[:port]) without a path`);
  return parsed.origin;
}

/** Host names and IP literals only: this string becomes part of URLs and headers. */
function checkHost(host: string): string {
  if (!/^[A-Za-z0-9.:-]+$/.test(host) || host.length > 253) throw new UsageError(`--host: "${host}" is not a host name or IP address`);
  return host;
}

export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  const flags = parseFlags(argv, SERVE_FLAGS, env);
  const certPath = flagString(flags, 'tls-cert');
  const keyPath = flagString(flags, 'tls-key');
  if ((certPath === undefined) !== (keyPath === undefined)) throw new UsageError('--tls-cert and --tls-key go together');

  const limits: Partial<Record<keyof SignalingLimits, number>> = {};
  for (const { flag, field } of LIMIT_FLAGS) {
    const v = flagInt(flags, flag.name);
    if (v !== undefined) limits[field] = v;
  }

  let iceServerUrls = flagList(flags, 'ice-server') ?? [DEFAULT_ICE_SERVER];
  if (iceServerUrls.length === 1 && iceServerUrls[0] === 'none') iceServerUrls = [];
  for (const u of iceServerUrls) checkUrl('--ice-server', u, ['stun:', 'stuns:', 'turn:', 'turns:']);

  const turnUrls = flagList(flags, 'turn-url') ?? [];
  for (const u of turnUrls) checkUrl('--turn-url', u, ['turn:', 'turns:']);
  const secretValue = flagString(flags, 'turn-secret');
  const secretFile = flagString(flags, 'turn-secret-file');
  if (secretValue !== undefined && secretFile !== undefined)
    throw new UsageError('give either --turn-secret or --turn-secret-file, not both');
  const hasSecret = secretValue !== undefined || secretFile !== undefined;
  if (hasSecret && turnUrls.length === 0) throw new UsageError('a TURN secret needs at least one --turn-url');
  if (!hasSecret && turnUrls.length > 0) throw new UsageError('--turn-url needs --turn-secret or --turn-secret-file');
  if (secretValue !== undefined && secretValue.length < 16) throw new UsageError('--turn-secret: use at least 16 characters');
  const turn: TurnConfig | undefined = hasSecret
    ? {
        urls: turnUrls,
        secret: secretValue !== undefined ? { value: secretValue } : { file: secretFile as string },
        ttlSeconds: flagInt(flags, 'turn-ttl') ?? DEFAULT_TURN_TTL_SECONDS,
      }
    : undefined;

  const appUrl = flagString(flags, 'app-url');
  if (appUrl !== undefined) checkUrl('--app-url', appUrl, ['http:', 'https:']);
  const signalingUrl = flagString(flags, 'signaling-url');
  if (signalingUrl !== undefined) checkUrl('--signaling-url', signalingUrl, ['ws:', 'wss:']);
  const connectOrigins = (flagList(flags, 'connect-origin') ?? []).map((o) =>
    checkOrigin('--connect-origin', o, ['ws:', 'wss:', 'http:', 'https:']),
  );

  const trustedProxies = flagList(flags, 'trust-proxy') ?? [];
  for (const ip of trustedProxies) if (isIP(ip) === 0) throw new UsageError(`--trust-proxy: "${ip}" is not an IP address`);

  const redisUrl = flagString(flags, 'redis');
  if (redisUrl !== undefined) checkUrl('--redis', redisUrl, ['redis:', 'rediss:']);
  const redisLeaseMs = flagInt(flags, 'redis-lease-ms');
  if (redisLeaseMs !== undefined && redisUrl === undefined) throw new UsageError('--redis-lease-ms needs --redis');
  const relayBudget: Record<keyof RelayBudgetLimits, number> = { ...defaultRelayBudget };
  for (const { flag, field } of RELAY_FLAGS) {
    const v = flagInt(flags, flag.name);
    if (v !== undefined) relayBudget[field] = v;
  }

  const lanFlag = flagString(flags, 'lan');
  if (lanFlag !== undefined) {
    // --lan decides the listening address, the certificate and the public URLs itself.
    for (const other of ['host', 'tls-cert', 'tls-key', 'app-url', 'signaling-url'])
      if (flags.has(other)) throw new UsageError(`--lan sets what --${other} would; leave --${other} out`);
    if (lanFlag !== '' && (!/^[A-Za-z0-9.-]+$/.test(lanFlag) || lanFlag.length > 253))
      throw new UsageError(`--lan: "${lanFlag}" is not an IPv4 address or host name`);
  }

  const keyFiles = flagList(flags, 'key-file') ?? [DEFAULT_KEY_FILE];
  if (keyFiles.length === 0) throw new UsageError('--key-file: give at least one key file');

  return {
    host: lanFlag !== undefined ? '0.0.0.0' : checkHost(flagString(flags, 'host') ?? DEFAULT_HOST),
    port: flagInt(flags, 'port') ?? DEFAULT_PORT,
    keyFiles,
    tls: certPath !== undefined && keyPath !== undefined ? { certPath, keyPath } : undefined,
    webRoot: flagString(flags, 'web'),
    limits,
    iceServerUrls,
    turn,
    appUrl,
    signalingUrl,
    connectOrigins,
    trustedProxies,
    quiet: flagBool(flags, 'quiet'),
    redis: redisUrl === undefined ? undefined : { url: redisUrl, leaseMs: redisLeaseMs ?? DEFAULT_REDIS_LEASE_MS },
    lan: lanFlag === undefined ? undefined : { address: lanFlag === '' ? undefined : lanFlag },
    relayBudget,
  };
}
