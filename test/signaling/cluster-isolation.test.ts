/**
 * Without --redis nothing of the cluster runs (docs/PROTOCOL.md 3.8): no static (value) import path
 * leads from the CLI or the server to the Redis client or the cluster node, which only
 * `zeroroom serve --redis` loads with a dynamic import. Plus the flag parsing of --redis.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../signaling/cli-args.ts';
import { DEFAULT_REDIS_LEASE_MS, parseServeConfig } from '../../signaling/config.ts';
import { REPO_ROOT, runCli } from '../cli/spawn-cli.ts';
import { freePort } from './redis-server.ts';

/** Value imports of a TypeScript file (type-only imports and `import(...)` are not followed). */
function valueImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
    if (m[1] !== undefined) continue;
    out.push(m[2]!);
  }
  return out;
}

function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [path.resolve(REPO_ROOT, entry)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of valueImports(file)) {
      if (spec.startsWith('.')) stack.push(path.resolve(path.dirname(file), spec));
      else seen.add(`pkg:${spec}`);
    }
  }
  return seen;
}

describe('the cluster is loaded only with --redis', () => {
  it('no value import leads from the CLI or the server to @redis/client or signaling/cluster/node.ts', () => {
    for (const entry of ['signaling/cli.ts', 'signaling/cmd-serve.ts', 'signaling/server.ts', 'signaling/registry.ts']) {
      const graph = reachable(entry);
      expect(graph.size).toBeGreaterThan(3);
      expect(
        [...graph].filter((f) => f.includes('@redis') || f.includes(`${path.sep}cluster${path.sep}`)),
        entry,
      ).toEqual([]);
    }
    // ...while the cluster node itself does import the client (the walker would see it).
    expect(reachable('signaling/cluster/node.ts').has('pkg:@redis/client')).toBe(true);
    expect(readFileSync(path.join(REPO_ROOT, 'signaling/cmd-serve.ts'), 'utf8')).toContain("await import('./cluster/node.ts')");
  });
});

describe('zeroroom serve --redis flags', () => {
  it('takes --redis or ZEROROOM_REDIS_URL (the flag wins) with the default lease', () => {
    expect(parseServeConfig([], {}).redis).toBeUndefined();
    expect(parseServeConfig(['--redis', 'redis://127.0.0.1:6400'], {}).redis).toEqual({
      url: 'redis://127.0.0.1:6400',
      leaseMs: DEFAULT_REDIS_LEASE_MS,
    });
    expect(parseServeConfig([], { ZEROROOM_REDIS_URL: 'rediss://r.example:6380/0' }).redis?.url).toBe('rediss://r.example:6380/0');
    expect(parseServeConfig(['--redis=redis://a:1'], { ZEROROOM_REDIS_URL: 'redis://b:2' }).redis?.url).toBe('redis://a:1');
    expect(parseServeConfig(['--redis', 'redis://a:1', '--redis-lease-ms', '2500'], {}).redis?.leaseMs).toBe(2500);
  });

  it('refuses other schemes, a lease out of range, and a lease without --redis', () => {
    expect(() => parseServeConfig(['--redis', 'http://127.0.0.1:6379'], {})).toThrow(UsageError);
    expect(() => parseServeConfig(['--redis', 'not a url'], {})).toThrow(UsageError);
    expect(() => parseServeConfig(['--redis', 'redis://a:1', '--redis-lease-ms', '999'], {})).toThrow(UsageError);
    expect(() => parseServeConfig(['--redis', 'redis://a:1', '--redis-lease-ms', '600001'], {})).toThrow(UsageError);
    expect(() => parseServeConfig(['--redis-lease-ms', '5000'], {})).toThrow(UsageError);
  });
});

describe('zeroroom serve --redis without a Redis', () => {
  it('exits 1 with one line naming the Redis host (never its password) instead of hanging', async () => {
    const port = await freePort(); // nothing listens there
    const run = runCli(['serve', '--port', '0', '--redis', `redis://:hunter2secret@127.0.0.1:${port}`], { cwd: REPO_ROOT });
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(new RegExp(`^zeroroom: --redis redis://127\\.0\\.0\\.1:${port}: `, 'm'));
    expect(run.stderr() + run.stdout()).not.toContain('hunter2secret');
    expect(run.stdout()).not.toContain('listening on');
  });
});
