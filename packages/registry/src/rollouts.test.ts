import { createMemoryInfrastructure } from "@gust/bus";
import type { FunctionRecord } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { describe, expect, it } from "vitest";
import { RolloutStore, type RolloutRecord } from "./rollouts.js";
import { parseTenantRecord } from "./tenant-config.js";

const logger = createLogger("rollouts", { level: "silent" });

const record: RolloutRecord = {
  runtime: "nodejs20.x",
  fromVersion: "1.0.0",
  fromArn: "arn:old",
  toVersion: "2.0.0",
  toArn: "arn:new",
  fraction: 0.25,
  minSamples: 5,
  failureBudget: 10,
  state: "running",
  startedAt: 1,
  updatedAt: 1,
  functions: {},
};

const fn = (name: string, extra: Partial<FunctionRecord> = {}) =>
  ({ runtime: "nodejs20.x", tenantId: "acme", name, ...extra }) as FunctionRecord;

describe("RolloutStore", () => {
  it("routes the fraction of an Auto function's invocations, and no others", async () => {
    const infra = createMemoryInfrastructure({ logger });
    let draw = 0;
    const draws = [0.1, 0.3, 0.24, 0.9];
    const store = await RolloutStore.open(
      await infra.kv("gust_rollouts"),
      logger,
      () => draws[draw++ % 4]!,
    );
    try {
      await store.start(record);
      expect(await store.fetch("nodejs20.x")).toMatchObject({ toVersion: "2.0.0" });
      for (let i = 0; i < 50 && store.get("nodejs20.x") === undefined; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const sides = draws.map(() => store.sideFor(fn("api"))?.side);
      expect(sides).toEqual(["new", "old", "new", "old"]);
      const pinned = fn("pinned", {
        runtimeManagement: { updateRuntimeOn: "Manual", runtimeVersionArn: "arn:old" },
      });
      expect(store.sideFor(pinned)).toBeUndefined();
      expect(store.sideFor(fn("x", { runtime: "provided.al2023" }))).toBeUndefined();

      await expect(store.start(record)).rejects.toThrow(/abort it first/);
      await store.modify("nodejs20.x", (current) => ({ ...current, state: "paused" }));
      for (let i = 0; i < 50 && store.get("nodejs20.x")?.state !== "paused"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(store.sideFor(fn("api"))?.side).toBe("old");
    } finally {
      store.close();
      await infra.close();
    }
  });
});

describe("a tenant's webhook", () => {
  const base = {
    id: "acme",
    credentials: [{ accessKeyId: "AKIAEXAMPLEEXAMPLE", secretAccessKey: "s".repeat(20) }],
  };
  it("is optional, and checked when given", () => {
    expect(parseTenantRecord(base, "t").webhook).toBeUndefined();
    expect(
      parseTenantRecord(
        { ...base, webhook: { url: "https://hooks.example/x", secret: "k".repeat(16) } },
        "t",
      ).webhook,
    ).toEqual({ url: "https://hooks.example/x", secret: "k".repeat(16) });
    expect(() =>
      parseTenantRecord({ ...base, webhook: { url: "ftp://x", secret: "k".repeat(16) } }, "t"),
    ).toThrow(/webhook.url/);
    expect(() =>
      parseTenantRecord({ ...base, webhook: { url: "https://x", secret: "short" } }, "t"),
    ).toThrow(/webhook.secret/);
  });
});
