import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share kernel state (namespaces, bpffs, core_pattern)
    // and the machines have 2 cores: run files one after another.
    fileParallelism: false,
    // netns and VM tests create real things; their own timeouts are tighter where it matters
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
