import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start their own servers and child processes; on a
    // 2-core machine running every file at once starves them.
    maxWorkers: 2,
    pool: "forks",
  },
});
