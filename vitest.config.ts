import { defineConfig } from 'vitest/config';

// forks, never threads: wasm-themis installs process-level handlers and node-datachannel
// keeps native handles; each test file gets its own process (see ../shared/notes/platform.md).
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
