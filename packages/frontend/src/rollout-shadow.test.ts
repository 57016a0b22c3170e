import { createMemoryInfrastructure } from "@gust/bus";
import { Buckets, type InvokeRequest } from "@gust/protocol";
import { FunctionRegistry, RolloutStore, TenantDirectory } from "@gust/registry";
import { createLogger } from "@gust/telemetry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFrontend, type Frontend } from "./frontend.js";
import {
  answers,
  call,
  createFunctionBody,
  FakeWorker,
  TENANT_A,
  TENANT_B,
  waitFor,
} from "./test-util.js";

const quiet = createLogger("test", { level: "silent" });
const SETTINGS = (name: string) => `/gust/2015-03-31/functions/${name}/rollout-settings`;

/** The version a request was sent to run on. */
const versionOf = (request: InvokeRequest) => request.target.runtimeVersion?.version;

describe("rollout shadows", () => {
  let close: () => Promise<void>;
  let frontend: Frontend;
  let worker: FakeWorker;
  let rollouts: RolloutStore;

  beforeEach(async () => {
    const infra = createMemoryInfrastructure({ logger: quiet });
    const registry = await FunctionRegistry.open({
      functions: await infra.kv(Buckets.functions),
      code: await infra.blobs(Buckets.code),
      logger: quiet,
    });
    const tenants = await TenantDirectory.open(await infra.kv(Buckets.tenants), quiet);
    for (const record of [TENANT_A, TENANT_B]) await tenants.put(record);
    rollouts = await RolloutStore.open(await infra.kv(Buckets.rollouts), quiet);
    frontend = createFrontend(
      {
        bus: infra.bus,
        eventQueue: await infra.eventQueue(),
        registry,
        tenants,
        rollouts,
        logger: quiet,
      },
      { standalone: true },
    );
    await frontend.start();
    // 2.0.0 breaks every function: a caller who saw its answer would see an error.
    worker = new FakeWorker(infra.bus, {
      id: "w1",
      behaviour: (request) =>
        versionOf(request) === "2.0.0"
          ? answers.functionError("broken on 2.0.0")
          : answers.ok({ ranOn: versionOf(request) }),
    }).start();
    await waitFor(() => frontend.workers.workerIds().includes("w1"), "the worker");
    for (const name of ["safe", "plain"]) {
      const created = await call(
        frontend.app,
        "POST",
        "/2015-03-31/functions",
        await createFunctionBody(name),
      );
      expect(created.status).toBe(201);
    }
    const from = registry.runtimeVersions.get("nodejs20.x", "1.0.0")!;
    const to = registry.runtimeVersions.get("nodejs20.x", "2.0.0")!;
    expect(registry.runtimeVersions.defaultVersion("nodejs20.x").arn).toBe(from.arn);
    await rollouts.start({
      runtime: "nodejs20.x",
      fromVersion: "1.0.0",
      fromArn: from.arn,
      toVersion: "2.0.0",
      toArn: to.arn,
      // Every invocation of an undecided function is its share: the surest test.
      fraction: 1,
      minSamples: 50,
      failureBudget: 500,
      state: "running",
      startedAt: Date.now(),
      updatedAt: Date.now(),
      functions: {},
    });
    await waitFor(() => rollouts.get("nodejs20.x") !== undefined, "the rollout record");
    close = async () => {
      worker.stop();
      await frontend.close();
      rollouts.close();
      tenants.close();
      registry.close();
      await infra.close();
    };
  });

  afterEach(async () => {
    await close();
  });

  const invoke = async (name: string, i: number) => {
    const response = await call(frontend.app, "POST", `/2015-03-31/functions/${name}/invocations`, {
      i,
    });
    return {
      status: response.status,
      functionError: response.headers.get("x-amz-function-error"),
      body: (await response.json()) as Record<string, unknown>,
    };
  };
  const requestsFor = (name: string) => worker.requests.filter((r) => r.target.name === name);

  it("runs a safe-to-repeat function on the new version too, answering only from the old", async () => {
    const put = await call(frontend.app, "PUT", SETTINGS("safe"), { SafeToRepeat: true });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ FunctionName: "safe", SafeToRepeat: true });
    const got = await call(frontend.app, "GET", "/2015-03-31/functions/safe");
    expect(((await got.json()) as Record<string, unknown>)["GustRuntimeRollout"]).toMatchObject({
      SafeToRepeat: true,
    });

    for (let i = 0; i < 10; i++) {
      const answer = await invoke("safe", i);
      expect(answer).toEqual({ status: 200, functionError: null, body: { ranOn: "1.0.0" } });
    }
    // Shadows run after the caller's answer: wait for them.
    await waitFor(() => requestsFor("safe").length === 20, "ten shadows");
    const requests = requestsFor("safe");
    expect(requests.filter((r) => versionOf(r) === "1.0.0")).toHaveLength(10);
    const shadows = requests.filter((r) => versionOf(r) === "2.0.0");
    expect(shadows).toHaveLength(10);
    // Same payloads, own request ids.
    expect(
      shadows
        .map((r) => JSON.parse(Buffer.from(r.payload).toString()) as { i: number })
        .sort((a, b) => a.i - b.i),
    ).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
    const ids = new Set(requests.map((r) => r.requestId));
    expect(ids.size).toBe(20);
  });

  it("leaves a function not marked safe to the rollout's routing, with no shadow", async () => {
    const got = await call(frontend.app, "GET", SETTINGS("plain"));
    expect(await got.json()).toMatchObject({ SafeToRepeat: false });
    for (let i = 0; i < 5; i++) {
      const answer = await invoke("plain", i);
      // Fraction 1: its callers are answered by the new version, failures and all.
      expect(answer.functionError).toBe("Unhandled");
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const requests = requestsFor("plain");
    expect(requests).toHaveLength(5);
    expect(requests.every((r) => versionOf(r) === "2.0.0")).toBe(true);
  });

  it("stops shadowing once the owner turns it off, and refuses a malformed setting", async () => {
    await call(frontend.app, "PUT", SETTINGS("safe"), { SafeToRepeat: true });
    const off = await call(frontend.app, "PUT", SETTINGS("safe"), { SafeToRepeat: false });
    expect(await off.json()).toMatchObject({ SafeToRepeat: false });
    await invoke("safe", 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requestsFor("safe").map(versionOf)).toEqual(["2.0.0"]);

    expect(
      (await call(frontend.app, "PUT", SETTINGS("safe"), { SafeToRepeat: "yes" })).status,
    ).toBe(400);
    expect(
      (await call(frontend.app, "PUT", SETTINGS("safe"), { SafeToRepeat: true, X: 1 })).status,
    ).toBe(400);
    expect(
      (await call(frontend.app, "PUT", SETTINGS("missing"), { SafeToRepeat: true })).status,
    ).toBe(404);
  });
});
