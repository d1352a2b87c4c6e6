/**
 * The import rules of docs/ARCHITECTURE.md, checked on source text (`npm test` runs it through
 * test/gates/gates.test.ts; `npx tsx test/gates/import-rules.ts` prints violations):
 * - crypto/ imports nothing of ours;
 * - protocol/ imports only protocol/ and crypto/ of ours, no Node built-in and no package outside
 *   its allowlist (so nothing Node-only or DOM-only);
 * - signaling/ and web/ never import each other;
 * - web/ imports no Node built-in and no Node-only package.
 * Imports are found with TypeScript's own pre-processor (static, dynamic and re-exports; comments
 * and strings are not imports).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

type Part = 'crypto' | 'protocol' | 'signaling' | 'web';
const PARTS: readonly Part[] = ['crypto', 'protocol', 'signaling', 'web'];

/** Ours that each part may import (itself always). */
const MAY_IMPORT: Record<Part, readonly Part[]> = {
  crypto: [],
  protocol: ['crypto'],
  signaling: ['crypto', 'protocol'],
  web: ['crypto', 'protocol'],
};

/** Packages each part may import; null = any package except NODE_ONLY (and Node built-ins for web). */
const PACKAGES: Record<Part, readonly string[] | null> = {
  crypto: ['wasm-themis', 'tweetnacl', 'hash-wasm', '@noble/ciphers'],
  protocol: ['simple-peer'],
  signaling: null,
  web: null,
};

/** Packages that only run in Node. */
const NODE_ONLY = ['ws', 'node-datachannel', 'node-datachannel/polyfill', 'playwright-core', 'redis', 'ioredis', '@redis/client'];

export interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly rule: string;
}

function partOf(root: string, file: string): Part | null {
  const top = path.relative(root, file).split(path.sep)[0];
  return PARTS.includes(top as Part) ? (top as Part) : null;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || (spec.split('/')[0] as string) in BUILTINS;
const BUILTINS: Record<string, true> = Object.fromEntries(
  [
    'fs',
    'path',
    'os',
    'net',
    'http',
    'https',
    'http2',
    'crypto',
    'child_process',
    'dgram',
    'tls',
    'stream',
    'url',
    'util',
    'events',
    'buffer',
    'worker_threads',
    'process',
    'zlib',
    'dns',
    'readline',
    'timers',
  ].map((m) => [m, true]),
);

/** Build configuration that runs in Node, not in the part it configures. */
const BUILD_CONFIG = new Set([path.join('web', 'vite.config.ts')]);

/** Violations of one file's imports; `file` is absolute, under `root`. */
export function checkFile(root: string, file: string, source: string): Violation[] {
  const from = partOf(root, file);
  if (from === null || BUILD_CONFIG.has(path.relative(root, file))) return [];
  const out: Violation[] = [];
  const rel = path.relative(root, file);
  for (const { fileName: spec } of ts.preProcessFile(source, true, true).importedFiles) {
    const bad = (rule: string): void => void out.push({ file: rel, specifier: spec, rule });
    if (spec.startsWith('.')) {
      const target = partOf(root, path.resolve(path.dirname(file), spec));
      if (target === null) bad(`${from}/ imports outside crypto/, protocol/, signaling/ and web/`);
      else if (target !== from && !MAY_IMPORT[from].includes(target)) bad(`${from}/ must not import ${target}/`);
      continue;
    }
    if (isBuiltin(spec)) {
      if (from !== 'signaling') bad(`${from}/ must not import Node built-ins`);
      continue;
    }
    const pkg = packageName(spec);
    const allowed = PACKAGES[from];
    if (allowed !== null) {
      if (!allowed.includes(pkg) && !allowed.includes(spec)) bad(`${from}/ may import only the packages ${allowed.join(', ')}`);
    } else if (from === 'web' && (NODE_ONLY.includes(spec) || NODE_ONLY.includes(pkg))) {
      bad('web/ must not import Node-only packages');
    }
  }
  return out;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every violation under `root` (the repository, or a copy of its layout). */
export function checkTree(root: string): Violation[] {
  const out: Violation[] = [];
  for (const part of PARTS) {
    const dir = path.join(root, part);
    let exists = false;
    try {
      exists = statSync(dir).isDirectory();
    } catch {
      exists = false; // a probe tree may hold only some parts
    }
    if (!exists) continue;
    for (const file of sources(dir)) out.push(...checkFile(root, file, readFileSync(file, 'utf8')));
  }
  return out;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const violations = checkTree(path.resolve(import.meta.dirname, '../..'));
  for (const v of violations) console.log(`${v.file}: '${v.specifier}': ${v.rule}`);
  console.log(violations.length === 0 ? 'import rules: ok' : `import rules: ${violations.length} violation(s)`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
