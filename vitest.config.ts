import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The Temporal worker's native bridge does not survive worker threads.
    pool: 'forks',
    // Integration tests share one libvirtd, one slapd and one Temporal server: run files one at a time.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
  },
});
