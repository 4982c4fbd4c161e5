import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'cluster-tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-process tests start real daemons; running several files at once on a
    // 2-core machine only makes each of them slower and flakier.
    fileParallelism: false,
    // The cluster tests run the built CLI: fail at once, clearly, when dist/ is missing.
    globalSetup: ['cluster-tests/global-setup.ts'],
  },
});
