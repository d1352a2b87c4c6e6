/**
 * Which tier a test file belongs to, from what it imports (directly or through test helpers):
 * - e2e: drives a browser (playwright-core);
 * - integration: opens sockets, starts processes or real WebRTC (network/process modules, the
 *   Node WebRTC loader, the CLI spawner);
 * - unit: everything else (pure code, in-memory fakes, temporary files).
 * vitest.config.ts builds its projects from this, so a new test file lands in the right tier by
 * itself; `npm run test:unit` runs the unit tier alone.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export type Tier = 'unit' | 'integration' | 'e2e';

const BROWSER = ['playwright-core'];
/** Modules that reach the network, other processes or native WebRTC. */
const SYSTEM = [
  'node:net',
  'node:http',
  'node:https',
  'node:dgram',
  'node:child_process',
  'node:tls',
  'ws',
  'node-datachannel',
  'redis',
  'ioredis',
  '@redis/client',
];
/** Our own modules that do the same (anything that imports them is integration). */
const SYSTEM_OURS = ['signaling/node-wrtc.ts', 'signaling/server.ts', 'signaling/cli.ts'];

function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** The tier of `file`, following relative imports into test helpers (not into the code under test). */
export function tierOf(file: string, root: string, seen = new Set<string>()): Tier {
  if (seen.has(file)) return 'unit';
  seen.add(file);
  let tier: Tier = 'unit';
  for (const spec of importsOf(file)) {
    if (BROWSER.includes(spec)) return 'e2e';
    if (SYSTEM.includes(spec) || SYSTEM.some((m) => spec.startsWith(`${m}/`))) {
      tier = 'integration';
      continue;
    }
    if (!spec.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), spec);
    const rel = path.relative(root, target);
    if (SYSTEM_OURS.includes(rel.split(path.sep).join('/'))) tier = 'integration';
    else if (rel.startsWith(`test${path.sep}`) && /\.ts$/.test(rel)) {
      const t = tierOf(target, root, seen);
      if (t === 'e2e') return 'e2e';
      if (t === 'integration') tier = 'integration';
    }
  }
  return tier;
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue; // probe directories of test/gates
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Every test file under root/test by tier, as paths relative to root (vitest `include` entries). */
export function testTiers(root: string): Record<Tier, string[]> {
  const out: Record<Tier, string[]> = { unit: [], integration: [], e2e: [] };
  for (const file of testFiles(path.join(root, 'test')).sort()) {
    out[tierOf(file, root)].push(path.relative(root, file).split(path.sep).join('/'));
  }
  return out;
}
