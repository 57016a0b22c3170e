import { defineConfig } from "vitest/config";

const INCLUDE = ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"];
/**
 * Tests that hold a fleet to a time bound (a dead frontend's share back within
 * three gossip intervals) run after everything else, alone, rather than beside
 * another file's uploads and cold starts on a 2-core machine.
 */
const TIME_BOUND = ["test/admission-fleet.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start their own servers and child processes; on a
    // 2-core machine running every file at once starves them.
    maxWorkers: 2,
    pool: "forks",
    // Property tests run from a fixed seed (deterministic CI).
    setupFiles: ["test/support/fast-check-seed.ts"],
    projects: [
      { extends: true, test: { name: "gust", include: INCLUDE, exclude: TIME_BOUND } },
      {
        extends: true,
        test: { name: "time-bound", include: TIME_BOUND, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
