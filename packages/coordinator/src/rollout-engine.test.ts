import { createMemoryInfrastructure, type Infrastructure } from "@gust/bus";
import {
  Buckets,
  encodeRecord,
  Subjects,
  type RolloutOutcomeEntry,
  type RolloutOutcomeReport,
  type RolloutVerdictEvent,
} from "@gust/protocol";
import {
  FunctionRegistry,
  RolloutStore,
  TenantDirectory,
  type RolloutRecord,
} from "@gust/registry";
import { createLogger } from "@gust/telemetry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RolloutEngine } from "./rollout-engine.js";

const logger = createLogger("coordinator", { level: "silent" });

function rolloutRecord(overrides: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    runtime: "nodejs20.x",
    fromVersion: "1.0.0",
    fromArn: "arn:old",
    toVersion: "2.0.0",
    toArn: "arn:new",
    fraction: 0.2,
    minSamples: 5,
    failureBudget: 30,
    state: "running",
    startedAt: 1,
    updatedAt: 1,
    functions: {},
    ...overrides,
  };
}

function entry(
  name: string,
  side: "old" | "new",
  counts: RolloutOutcomeEntry["counts"],
): RolloutOutcomeEntry {
  const errorTypes: Record<string, number> = {};
  if (counts["init-error"]) errorTypes["Runtime.ImportModuleError"] = counts["init-error"];
  return {
    runtime: "nodejs20.x",
    tenantId: "acme",
    name,
    functionArn: `arn:fn:${name}`,
    side,
    counts,
    errorTypes,
  };
}

describe("the rollout engine", () => {
  let infra: Infrastructure;
  let store: RolloutStore;
  let registry: FunctionRegistry;
  let tenants: TenantDirectory;
  const engines: RolloutEngine[] = [];

  beforeEach(async () => {
    infra = createMemoryInfrastructure({ logger });
    store = await RolloutStore.open(await infra.kv(Buckets.rollouts), logger);
    registry = await FunctionRegistry.open({
      functions: await infra.kv(Buckets.functions),
      code: await infra.blobs(Buckets.code),
      runtimeVersions: await infra.kv(Buckets.runtimeVersions),
      logger,
    });
    tenants = await TenantDirectory.open(await infra.kv(Buckets.tenants), logger);
  });

  afterEach(async () => {
    for (const engine of engines.splice(0)) await engine.close();
    store.close();
    registry.close();
    tenants.close();
    await infra.close();
  });

  const engine = async () => {
    const started = new RolloutEngine(
      { bus: infra.bus, store, registry, tenants, logger },
      { flushIntervalMs: 60_000 },
    );
    engines.push(started);
    await started.start();
    return started;
  };
  const report = async (entries: RolloutOutcomeEntry[]) => {
    const message: RolloutOutcomeReport = { type: "rollout.outcomes", frontendId: "f1", entries };
    infra.bus.publish(Subjects.rolloutOutcomes, encodeRecord(message));
    await infra.bus.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
  };

  it("halts a version that cannot start before it spends more than the failure budget", async () => {
    await store.start(rolloutRecord({ minSamples: 1000 }));
    const running = await engine();
    // Ten functions, every new-version invocation an init error: no function has its
    // samples yet, but together they exhaust the budget of 30.
    await report(
      Array.from({ length: 10 }, (_, i) => [
        entry(`fn${i}`, "new", { "init-error": 3 }),
        entry(`fn${i}`, "old", { success: 12 }),
      ]).flat(),
    );
    await running.flush();
    const halted = await store.fetch("nodejs20.x");
    expect(halted?.state).toBe("halted");
    expect(halted?.stateReason).toContain("failure budget 30");
    // Halted, every function runs on the old version.
    const fn = { runtime: "nodejs20.x", tenantId: "acme", name: "fn0" } as Parameters<
      RolloutStore["sideFor"]
    >[0];
    for (let i = 0; i < 50 && store.get("nodejs20.x")?.state !== "halted"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(store.sideFor(fn)?.side).toBe("old");
  });

  it("ignores reports that do not decode and entries that do not check", async () => {
    await store.start(rolloutRecord());
    const running = await engine();
    infra.bus.publish(Subjects.rolloutOutcomes, new Uint8Array([0xc1, 0xff, 0x00]));
    infra.bus.publish(
      Subjects.rolloutOutcomes,
      encodeRecord({ entries: [{ runtime: "nodejs20.x", side: "sideways" }, 42, null] }),
    );
    await report([entry("ok", "old", { success: 2 })]);
    await running.flush();
    const record = await store.fetch("nodejs20.x");
    expect(Object.keys(record?.functions ?? {})).toEqual(["acme/ok"]);
  });

  it("keeps counts and finishes a verdict's notification across a restart", async () => {
    await store.start(rolloutRecord());
    const first = await engine();
    await report([entry("svc", "old", { success: 4 }), entry("svc", "new", { success: 2 })]);
    await first.flush();
    await first.close();

    // A verdict written by a coordinator that stopped before acting on it.
    await store.modify("nodejs20.x", (record) => {
      const progress = record.functions["acme/svc"]!;
      progress.verdict = { verdict: "compatible", reason: "test", decidedAt: 5, z: 0 };
      return record;
    });
    const events: RolloutVerdictEvent[] = [];
    infra.bus.subscribe(Subjects.rolloutVerdict, (message) => {
      events.push(JSON.parse(new TextDecoder().decode(message.data)) as RolloutVerdictEvent);
    });
    await engine();
    await infra.bus.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events.map((event) => [event.functionName, event.verdict])).toEqual([
      ["svc", "compatible"],
    ]);
    const record = await store.fetch("nodejs20.x");
    expect(record?.functions["acme/svc"]?.old.counts.success).toBe(4);
    expect(record?.functions["acme/svc"]?.verdict?.notifiedAt).toBeGreaterThan(0);
  });
});
