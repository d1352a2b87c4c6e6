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
      { extends: true, test: { name: 'unit', include: tiers.unit } },
      { extends: true, test: { name: 'integration', include: tiers.integration } },
      { extends: true, test: { name: 'e2e', include: tiers.e2e } },
    ],
  },
});
