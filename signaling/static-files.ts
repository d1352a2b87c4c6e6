import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** A directory served read-only. `root` is its real path (symlinks resolved) so escapes can be detected. */
export interface StaticSite {
  readonly root: string;
}

export async function openStaticSite(dir: string): Promise<StaticSite> {
  const root = await realpath(dir);
  if (!(await stat(root)).isDirectory()) throw new Error(`${dir} is not a directory`);
  return { root };
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
};

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export type StaticLookup =
  | { readonly kind: 'file'; readonly file: string; readonly size: number; readonly contentType: string; readonly immutable: boolean }
  | { readonly kind: 'refused'; readonly status: 400 | 404 };

/**
 * Maps a raw request path (`req.url` without the query) to a file under `site.root`, or refuses.
 * The raw path is checked segment by segment instead of being normalised, so `..`, encoded slashes,
 * backslashes and NUL bytes are refused (400) rather than quietly resolved. Dot files (`.git`, `.env`)
 * are never served (404). The real path of the result must still lie under the root, which stops a
 * symlink inside the site from pointing outside it.
 */
export async function lookupStatic(site: StaticSite, rawPath: string): Promise<StaticLookup> {
  if (!rawPath.startsWith('/')) return { kind: 'refused', status: 400 };
  const segments: string[] = [];
  const parts = rawPath.slice(1).split('/');
  for (let i = 0; i < parts.length; i++) {
    const raw = parts[i] as string;
    if (raw === '' && i === parts.length - 1) break; // trailing slash: directory index
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch (e) {
      return { kind: 'refused', status: 400 };
    }
    if (seg === '' || seg === '.' || seg === '..' || /[/\\\0]/.test(seg)) return { kind: 'refused', status: 400 };
    if (seg.startsWith('.')) return { kind: 'refused', status: 404 };
    segments.push(seg);
  }
  const wantsIndex = rawPath.endsWith('/');
  const candidate = path.join(site.root, ...segments, ...(wantsIndex ? ['index.html'] : []));
  if (!isInside(site.root, candidate)) return { kind: 'refused', status: 400 };
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (e) {
    if (isMissing(e)) return { kind: 'refused', status: 404 };
    throw e;
  }
  if (!isInside(site.root, real)) return { kind: 'refused', status: 404 };
  const info = await stat(real);
  if (!info.isFile()) return { kind: 'refused', status: 404 };
  return {
    kind: 'file',
    file: real,
    size: info.size,
    contentType: contentTypeFor(real),
    // Vite puts content-hashed files under assets/; everything else may change between deploys.
    immutable: segments[0] === 'assets' && segments.length > 1,
  };
}

function isInside(root: string, p: string): boolean {
  return p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}
