import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Model-backed tests create onnxruntime sessions on 2-core CI machines: a generous timeout, one file at a time
    // per worker so sessions do not fight for the cores.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
