/**
 * docs/OPERATIONS.md "Several nodes": the compose file cannot be run here (no Docker daemon), so it
 * is parsed (yaml) and its wiring checked: two nodes on one Redis without persistence, the same
 * read-only key file, flags the nodes really have, coturn with the shared-secret mode, and a TLS
 * proxy balancing over both nodes' health checks from the address the nodes trust.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { variableOf } from '../../signaling/cli-args.ts';
import { SERVE_FLAGS, parseServeConfig } from '../../signaling/config.ts';
import { REPO_ROOT } from '../cli/spawn-cli.ts';

const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
const section = doc.slice(doc.indexOf('## Several nodes (Redis)'));
const yamlText = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string }>;
  configs?: { source: string; target: string }[];
  secrets?: string[];
}
interface Compose {
  services: Record<string, Service>;
  configs: Record<string, { content: string }>;
  secrets: Record<string, { file: string }>;
  networks: Record<string, { ipam: { config: { subnet: string }[] } }>;
}

describe('docs/OPERATIONS.md compose file (several nodes)', () => {
  const compose = parse(yamlText, { merge: true }) as Compose;
  const nodes = ['zeroroom-1', 'zeroroom-2'].map((n) => compose.services[n]!);

  it('parses, with two nodes, Redis, coturn and a proxy', () => {
    expect(yamlText.length).toBeGreaterThan(500);
    expect(Object.keys(compose.services).sort()).toEqual(['coturn', 'proxy', 'redis', 'zeroroom-1', 'zeroroom-2']);
  });

  it('runs Redis without persistence', () => {
    const cmd = compose.services.redis!.command!.join(' ');
    expect(cmd).toContain('--save  --appendonly no');
  });

  it('gives both nodes the same Redis, key file (read-only) and settings, all of them real serve options', () => {
    const known = new Set(SERVE_FLAGS.map(variableOf));
    for (const n of nodes) {
      expect(n.build).toBe('.');
      expect(n.environment!.ZEROROOM_REDIS_URL).toBe('redis://redis:6379');
      expect(n.environment!.ZEROROOM_KEY_FILE).toBe('/keys/server.key');
      expect(n.volumes).toContain('./keys:/keys:ro');
      for (const name of Object.keys(n.environment!)) expect(known.has(name), name).toBe(true);
      // What a node would make of it (the variables parse as zeroroom serve reads them).
      const config = parseServeConfig([], n.environment!);
      expect(config.redis?.url).toBe('redis://redis:6379');
      expect(config.turn?.urls.length).toBe(2);
    }
    expect(nodes[0]!.environment).toEqual(nodes[1]!.environment);
  });

  it('trusts X-Forwarded-For only from the proxy, whose fixed address is in the backend network', () => {
    const proxy = compose.services.proxy!;
    const address = (proxy.networks as Record<string, { ipv4_address: string }>).backend!.ipv4_address;
    for (const n of nodes) expect(n.environment!.ZEROROOM_TRUST_PROXY).toBe(address);
    expect(compose.networks.backend!.ipam.config[0]!.subnet).toBe('172.30.0.0/24');
    expect(address.startsWith('172.30.0.')).toBe(true);
  });

  it('balances the proxy over both nodes with their health checks, and hides /metrics', () => {
    const proxy = compose.services.proxy!;
    expect(proxy.configs).toEqual([{ source: 'caddyfile', target: '/etc/caddy/Caddyfile' }]);
    const caddyfile = compose.configs.caddyfile!.content;
    expect(caddyfile).toMatch(/reverse_proxy zeroroom-1:8765 zeroroom-2:8765 \{/);
    expect(caddyfile).toContain('health_uri /healthz');
    expect(caddyfile).toContain('respond @metrics 404');
  });

  it('runs coturn with the TURN REST secret from a mounted file, not the command line', () => {
    const coturn = compose.services.coturn!;
    expect(coturn.command).toContain('--use-auth-secret');
    expect(coturn.command!.join(' ')).not.toMatch(/static-auth-secret=/);
    expect(coturn.volumes).toContain('./turnserver-secret.conf:/etc/coturn/turnserver.conf:ro');
    expect(compose.secrets['turn-secret']!.file).toBe('./turn-secret');
    for (const n of nodes) expect(n.secrets).toEqual(['turn-secret']);
  });

  it('says that it was not run here', () => {
    expect(section).toContain('no Docker daemon');
  });
});
