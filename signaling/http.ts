import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { SignalingMetrics } from './metrics.ts';
import { type StaticSite, lookupStatic } from './static-files.ts';

/**
 * The Content-Security-Policy of every response. Scripts only from this origin (plus wasm compilation for
 * Themis), no inline script or style, no plugins, no framing, no form posts; WebSockets only to this
 * server and the extra signaling origins the operator configured.
 */
export function contentSecurityPolicy(connectOrigins: readonly string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    ['connect-src', "'self'", ...connectOrigins].join(' '),
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
    "manifest-src 'self'",
    "worker-src 'self'",
  ].join('; ');
}

export function securityHeaders(opts: { connectOrigins: readonly string[]; tls: boolean }): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Security-Policy': contentSecurityPolicy(opts.connectOrigins),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    // The camera scans invite QR codes; nothing else is needed.
    'Permissions-Policy': 'camera=(self), microphone=(), geolocation=(), payment=(), usb=(), serial=(), hid=()',
    'X-Frame-Options': 'DENY',
  };
  if (opts.tls) headers['Strict-Transport-Security'] = 'max-age=31536000';
  return headers;
}

export interface HttpDeps {
  readonly site: StaticSite;
  readonly metrics: SignalingMetrics;
  /** Built per request: TURN credentials are fresh for every fetch; `host` is the checked Host header. */
  readonly configJson: (host: string | undefined) => unknown;
  readonly headers: Readonly<Record<string, string>>;
  /** `--lan`: the local CA certificate (DER), served at /ca.crt for devices that install it. */
  readonly caCertificate?: Uint8Array;
  readonly onError: (what: string, e: unknown) => void;
}

/** Plain HTTP side of `zeroroom serve`: health, metrics, app config and the static app. */
export function createHttpHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    for (const [k, v] of Object.entries(deps.headers)) res.setHeader(k, v);
    handle(deps, req, res).catch((e: unknown) => {
      deps.onError('http', e);
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    });
  };
}

async function handle(deps: HttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? '';
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    sendText(res, 405, 'method not allowed\n');
    return;
  }
  const rawUrl = req.url ?? '';
  const q = rawUrl.indexOf('?');
  const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
  switch (rawPath) {
    case '/healthz':
      sendBody(req, res, 200, 'application/json', JSON.stringify({ status: 'ok' }) + '\n', 'no-store');
      return;
    case '/metrics': {
      const body = deps.metrics.render({ residentMemoryBytes: process.memoryUsage.rss(), nowMs: Date.now() });
      sendBody(req, res, 200, 'text/plain; version=0.0.4; charset=utf-8', body, 'no-store');
      return;
    }
    case '/config.json':
      sendBody(req, res, 200, 'application/json', JSON.stringify(deps.configJson(checkedHost(req.headers.host))) + '\n', 'no-store');
      return;
    case '/ca.crt':
      if (deps.caCertificate === undefined) break;
      // DER with the CA content type: Android's and iOS's certificate installers take it as is.
      res.setHeader('Content-Disposition', 'attachment; filename="zeroroom-lan-ca.crt"');
      sendBody(req, res, 200, 'application/x-x509-ca-cert', Buffer.from(deps.caCertificate), 'no-cache');
      return;
  }
  const found = await lookupStatic(deps.site, rawPath);
  if (found.kind === 'refused') {
    sendText(res, found.status, found.status === 404 ? 'not found\n' : 'bad request\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': found.contentType,
    'Content-Length': String(found.size),
    'Cache-Control': found.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (method === 'HEAD') {
    res.end();
    return;
  }
  try {
    await pipeline(createReadStream(found.file), res);
  } catch (e) {
    // The browser went away mid-file (navigation, closed tab): nothing to report.
    if ((e as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw e;
  }
}

/**
 * The Host header if it is a plain `name[:port]` or `[v6][:port]`, else undefined. It only shapes the
 * URLs in the requester's own uncached /config.json answer, and is never reflected unchecked.
 */
export function checkedHost(host: string | undefined): string | undefined {
  if (host === undefined || host.length > 260) return undefined;
  return /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(host) ? host : undefined;
}

function sendBody(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer, cache: string): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(bytes.length), 'Cache-Control': cache });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(bytes.length),
    'Cache-Control': 'no-store',
  });
  res.end(bytes);
}
