// docs/OPERATIONS.md documents every `zeroroom serve` option and every metric the server exports.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { variableOf } from '../../signaling/cli-args.ts';
import { SERVE_FLAGS } from '../../signaling/config.ts';
import { SignalingMetrics } from '../../signaling/metrics.ts';
import { REPO_ROOT } from './spawn-cli.ts';

const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');

describe('docs/OPERATIONS.md', () => {
  it('has a table row for every serve option with its variable', () => {
    for (const f of SERVE_FLAGS) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`--${f.name}`));
      expect(row, `--${f.name}`).toBeDefined();
      expect(row).toContain(`\`${variableOf(f)}\``);
    }
  });

  it('explains every metric family', () => {
    const families = new SignalingMetrics(0).render({ residentMemoryBytes: 0, nowMs: 0 }).match(/^# TYPE (\w+)/gm) ?? [];
    expect(families.length).toBeGreaterThan(5);
    for (const line of families) expect(doc).toContain(`| \`${line.slice('# TYPE '.length)}`);
  });
});
