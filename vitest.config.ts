import { defineConfig } from 'vitest/config';

// Two tiers: `unit` runs everywhere in seconds; `integration` talks to real databases and
// spawns real processes, so it runs files one at a time to keep SIGKILL tests deterministic.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        // `npm run test:faults`: injected failures against the real databases (docs/reliability.md).
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
