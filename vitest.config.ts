import { defineConfig } from 'vitest/config';
import { testTiers } from './test/tiers.ts';

// forks, never threads: wasm-themis installs process-level handlers and node-datachannel
// keeps native handles; each test file gets its own process (see ../shared/notes/platform.md).
// Three projects (test/tiers.ts decides by what a file imports): `npm run test:unit` runs the
// unit tier alone, `vitest run --project integration|e2e` the others.
const tiers = testTiers(import.meta.dirname);

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      // vitest's default on CI's 2 cores is ONE worker (cpus - 1): every file ran in a row. Pure
      // unit files are CPU-bound and independent: two at a time. The other tiers wait on sockets,
      // timers and browsers whose timing assumptions hold for one file at a time; they run after.
      { extends: true, test: { name: 'unit', include: tiers.unit, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'integration', include: tiers.integration, maxWorkers: 1, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'e2e', include: tiers.e2e, maxWorkers: 1, sequence: { groupOrder: 2 } } },
    ],
  },
});
