import type { FunctionRecord } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { createTenantConcurrencyAdmission } from "./admission.js";

const fn = { tenantId: "t1", name: "f" } as FunctionRecord;

describe("tenant concurrency admission", () => {
  it("admits up to maxConcurrency per tenant and frees a slot on release, once", () => {
    const admission = createTenantConcurrencyAdmission();
    const tenant = { id: "t1", accountId: "111111111111", maxConcurrency: 2 };
    const other = { id: "t2", accountId: "222222222222", maxConcurrency: 2 };
    const a = admission.tryAcquire(tenant, fn);
    const b = admission.tryAcquire(tenant, fn);
    expect(a.kind).toBe("ticket");
    expect(b.kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, fn)).toEqual({
      kind: "rejection",
      reason: "ConcurrentInvocationLimitExceeded",
    });
    // Another tenant is not affected.
    expect(admission.tryAcquire(other, fn).kind).toBe("ticket");
    if (a.kind !== "ticket") throw new Error("unreachable");
    admission.release(a);
    admission.release(a);
    expect(admission.inflight("t1")).toBe(1);
    expect(admission.tryAcquire(tenant, fn).kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, fn).kind).toBe("rejection");
  });

  it("falls back to the default limit for a nonsensical maxConcurrency", () => {
    const admission = createTenantConcurrencyAdmission();
    const tenant = { id: "t1", accountId: "111111111111", maxConcurrency: 0 };
    for (let i = 0; i < 1000; i++) expect(admission.tryAcquire(tenant, fn).kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, fn).kind).toBe("rejection");
  });

  it("gives a reserved function its own pool and the rest what reservations leave", () => {
    const tenant = { id: "t1", accountId: "111111111111", maxConcurrency: 5 };
    const reservedFn = { tenantId: "t1", name: "r", reservedConcurrency: 2 } as FunctionRecord;
    const blocked = { tenantId: "t1", name: "b", reservedConcurrency: 0 } as FunctionRecord;
    const admission = createTenantConcurrencyAdmission(() => 2);

    expect(admission.tryAcquire(tenant, blocked)).toEqual({
      kind: "rejection",
      reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
    });
    const r1 = admission.tryAcquire(tenant, reservedFn);
    expect(admission.tryAcquire(tenant, reservedFn).kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, reservedFn)).toMatchObject({
      reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
    });
    // 5 - 2 reserved = 3 for every other function, however busy the reserved one is.
    for (let i = 0; i < 3; i++) expect(admission.tryAcquire(tenant, fn).kind).toBe("ticket");
    expect(admission.tryAcquire(tenant, fn)).toMatchObject({
      reason: "ConcurrentInvocationLimitExceeded",
    });
    expect(admission.inflight("t1")).toBe(5);
    if (r1.kind !== "ticket") throw new Error("unreachable");
    admission.release(r1);
    expect(admission.tryAcquire(tenant, fn).kind).toBe("rejection");
    expect(admission.tryAcquire(tenant, reservedFn).kind).toBe("ticket");
  });
});
