import type { FunctionRecord } from "@gust/protocol";
import type { Tenant } from "@gust/registry";
import { createLogger } from "@gust/telemetry";
import { afterEach, describe, expect, it } from "vitest";
import { FleetAdmission } from "./admission-fleet.js";
import {
  call,
  errorOf,
  startHarness,
  TENANT_A,
  TENANT_B,
  type Harness,
  type HarnessOptions,
} from "./test-util.js";

const quiet = createLogger("test", { level: "silent" });
const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;
const concurrencyPath = (name: string) => `/2017-10-31/functions/${name}/concurrency`;

let h: Harness | undefined;
const started: FleetAdmission[] = [];
async function harness(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}
afterEach(async () => {
  for (const admission of started.splice(0)) admission.stop();
  await h?.close();
  h = undefined;
});

/** A second, standalone admission on the harness's registry and directory. */
async function mirror(harness: Harness): Promise<FleetAdmission> {
  const admission = new FleetAdmission(
    { registry: harness.registry, tenants: harness.tenants, logger: quiet, now: Date.now },
    { instanceId: "mirror", standalone: true, fleetSizeHint: 1, policy: {} },
  );
  await admission.start();
  started.push(admission);
  return admission;
}

const tenantA: Tenant = { id: TENANT_A.id, accountId: TENANT_A.accountId, maxConcurrency: 1000 };
const fnOf = (name: string) => ({ tenantId: TENANT_A.id, name }) as FunctionRecord;

describe("FleetAdmission", () => {
  it("mirrors the reservations the registry holds at start and every later change", async () => {
    const h = await harness();
    await h.createFunction("checkout");
    await h.createFunction("report");
    await h.createFunction("other");
    await call(h.app, "PUT", concurrencyPath("checkout"), { ReservedConcurrentExecutions: 150 });
    const admission = await mirror(h);
    const controller = admission.controller;
    expect(controller.reservedConcurrency(TENANT_A.id, "checkout")).toBe(150);
    expect(controller.reservedConcurrency(TENANT_A.id, "other")).toBeUndefined();
    expect(controller.accountConcurrency(TENANT_A.id)).toEqual({
      concurrentExecutions: 1000,
      unreservedConcurrentExecutions: 850,
    });

    await call(h.app, "PUT", concurrencyPath("report"), { ReservedConcurrentExecutions: 0 });
    expect(controller.reservedConcurrency(TENANT_A.id, "report")).toBe(0);
    await call(h.app, "DELETE", concurrencyPath("checkout"));
    expect(controller.reservedConcurrency(TENANT_A.id, "checkout")).toBeUndefined();
    await call(h.app, "DELETE", "/2015-03-31/functions/report");
    expect(controller.reservedConcurrency(TENANT_A.id, "report")).toBeUndefined();
    expect(controller.accountConcurrency(TENANT_A.id).unreservedConcurrentExecutions).toBe(1000);

    // GetAccountSettings (from the registry) and the controller agree.
    await call(h.app, "PUT", concurrencyPath("other"), { ReservedConcurrentExecutions: 300 });
    const settings = (await (await call(h.app, "GET", "/2016-08-19/account-settings")).json()) as {
      AccountLimit: { ConcurrentExecutions: number; UnreservedConcurrentExecutions: number };
    };
    expect(settings.AccountLimit).toMatchObject({
      ConcurrentExecutions: controller.accountConcurrency(TENANT_A.id).concurrentExecutions,
      UnreservedConcurrentExecutions: controller.accountConcurrency(TENANT_A.id)
        .unreservedConcurrentExecutions,
    });
  });

  it("applies a reservation the registry accepted even where it leaves nothing unreserved", async () => {
    const h = await harness({ tenants: [{ ...TENANT_A, maxConcurrency: 200 }, TENANT_B] });
    await h.createFunction("big");
    await h.createFunction("small");
    const admission = await mirror(h);
    // As when two puts race, or M was lowered later: the store holds 500 of M = 200.
    await h.registry.putReservedConcurrency({ ...tenantA, maxConcurrency: 1000 }, "big", 500);
    expect(admission.controller.reservedConcurrency(TENANT_A.id, "big")).toBe(500);
    const limited = { ...tenantA, maxConcurrency: 200 };
    expect(admission.tryAcquire(limited, fnOf("big")).kind).toBe("ticket");
    expect(admission.tryAcquire(limited, fnOf("small"))).toMatchObject({
      kind: "rejection",
      reason: "ConcurrentInvocationLimitExceeded",
    });
    expect(admission.snapshot(TENANT_A.id)).toMatchObject({
      maxConcurrency: 200,
      reservedConcurrency: 500,
      unreservedConcurrency: 0,
    });
  });

  it("puts the share and temporary limit on tickets and rejections; a ticket frees one slot", async () => {
    const h = await harness();
    const admission = await mirror(h);
    const tenant = { ...tenantA, maxConcurrency: 2 };
    const first = admission.tryAcquire(tenant, fnOf("f"));
    const second = admission.tryAcquire(tenant, fnOf("f"));
    expect(first).toMatchObject({ kind: "ticket", share: 2, temporaryLimit: 2 });
    expect(second.kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, fnOf("f"))).toMatchObject({
      kind: "rejection",
      reason: "ConcurrentInvocationLimitExceeded",
      share: 2,
      temporaryLimit: 2,
      borrowing: false,
    });
    if (first.kind !== "ticket") throw new Error("not admitted");
    admission.release(first);
    admission.release(first);
    expect(admission.tryAcquire(tenant, fnOf("f")).kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, fnOf("f")).kind).toBe("rejection");
  });

  it("follows a tenant's maximum when it changes", async () => {
    const h = await harness();
    const admission = await mirror(h);
    expect(admission.tryAcquire({ ...tenantA, maxConcurrency: 1 }, fnOf("f")).kind).toBe("ticket");
    expect(admission.tryAcquire({ ...tenantA, maxConcurrency: 1 }, fnOf("f")).kind).toBe(
      "rejection",
    );
    const raised = { ...tenantA, maxConcurrency: 3 };
    expect(admission.tryAcquire(raised, fnOf("f")).kind).toBe("ticket");
    expect(admission.tryAcquire(raised, fnOf("f")).kind).toBe("ticket");
    expect(admission.tryAcquire(raised, fnOf("f")).kind).toBe("rejection");
  });
});

describe("throttles through the frontend", () => {
  it("answer 429 with Lambda's reason and a Retry-After from the admission's hint", async () => {
    const h = await harness({ frontend: { admissionPolicy: { maxRetryAfterMs: 2500 } } });
    await h.createFunction("stopped");
    await h.addWorker({ id: "w1" });
    await call(h.app, "PUT", concurrencyPath("stopped"), { ReservedConcurrentExecutions: 0 });
    const response = await call(h.app, "POST", invokePath("stopped"), {});
    expect(response.headers.get("retry-after")).toBe("3");
    const error = await errorOf(response);
    expect(error.status).toBe(429);
    expect(error.type).toBe("TooManyRequestsException");
    expect(error.body).toEqual({
      Type: "User",
      message: "Rate Exceeded.",
      Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
    });
    await call(h.app, "DELETE", concurrencyPath("stopped"));
    expect((await call(h.app, "POST", invokePath("stopped"), {})).status).toBe(200);
  });
});
