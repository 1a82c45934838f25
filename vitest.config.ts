import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // No test reaches any host but 127.0.0.1, even when a check it relies on breaks.
    setupFiles: ["test/helpers/loopback-only.mjs"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
