import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // PGlite instances are heavy-ish; two cores, two forks.
    pool: 'forks',
    maxWorkers: 2,
  },
});
