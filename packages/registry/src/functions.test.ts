import { createHash } from "node:crypto";
import { createMemoryInfrastructure, type Infrastructure } from "@gust/bus";
import { Buckets, LambdaApiError } from "@gust/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FunctionRegistry } from "./functions.js";
import type { Tenant } from "./tenants.js";

const tenant: Tenant = { id: "acme", accountId: "123456789012", maxConcurrency: 1000 };
const zip = new TextEncoder().encode("pretend zip bytes");
const code = {
  codeSha256: createHash("sha256").update(zip).digest("base64"),
  codeSize: zip.length,
};

async function open(infra: Infrastructure): Promise<FunctionRegistry> {
  return FunctionRegistry.open({
    functions: await infra.kv(Buckets.functions),
    code: await infra.blobs(Buckets.code),
  });
}

describe("FunctionRegistry", () => {
  let infra: Infrastructure;
  let registry: FunctionRegistry;

  beforeEach(async () => {
    infra = createMemoryInfrastructure();
    registry = await open(infra);
  });
  afterEach(async () => {
    registry.close();
    await infra.close();
  });

  it("creates a function with Lambda's defaults and stores its code once", async () => {
    const record = await registry.create(
      tenant,
      "hello",
      { runtime: "nodejs20.x", handler: "index.handler" },
      zip,
      code,
    );
    expect(record).toMatchObject({
      functionArn: "arn:aws:lambda:us-east-1:123456789012:function:hello",
      timeoutSec: 3,
      memoryMb: 128,
      environment: {},
      codeSha256: code.codeSha256,
    });
    expect(record.lastModified).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
    expect(await registry.fetchCode(code.codeSha256)).toEqual(zip);
    await expect(
      registry.create(
        tenant,
        "hello",
        { runtime: "nodejs20.x", handler: "index.handler" },
        zip,
        code,
      ),
    ).rejects.toMatchObject({ errorType: "ResourceConflictException", statusCode: 409 });
  });

  it("validates names and configuration with InvalidParameterValueException", async () => {
    const bad = [
      () =>
        registry.create(tenant, "bad name", { runtime: "nodejs20.x", handler: "i.h" }, zip, code),
      () =>
        registry.create(
          tenant,
          "t",
          { runtime: "nodejs20.x", handler: "i.h", timeoutSec: 901 },
          zip,
          code,
        ),
      () =>
        registry.create(
          tenant,
          "m",
          { runtime: "nodejs20.x", handler: "i.h", memoryMb: 64 },
          zip,
          code,
        ),
      () =>
        registry.create(
          tenant,
          "r",
          { runtime: "python3.12" as "nodejs20.x", handler: "i.h" },
          zip,
          code,
        ),
      () =>
        registry.create(
          tenant,
          "e",
          { runtime: "nodejs20.x", handler: "i.h", environment: { AWS_REGION: "x" } },
          zip,
          code,
        ),
      () =>
        registry.create(
          tenant,
          "big",
          { runtime: "nodejs20.x", handler: "i.h", environment: { BIG: "x".repeat(5000) } },
          zip,
          code,
        ),
    ];
    for (const attempt of bad) {
      await expect(attempt()).rejects.toMatchObject({
        errorType: "InvalidParameterValueException",
      });
    }
    expect((await registry.list(tenant.id, { maxItems: 50 })).functions).toEqual([]);
  });

  it("pages through a tenant's functions in name order, and only that tenant's", async () => {
    for (const name of ["c", "a", "b"]) {
      await registry.create(
        tenant,
        name,
        { runtime: "nodejs20.x", handler: "index.handler" },
        zip,
        code,
      );
    }
    await registry.create(
      { ...tenant, id: "other" },
      "z",
      { runtime: "nodejs20.x", handler: "i.h" },
      zip,
      code,
    );
    const first = await registry.list(tenant.id, { maxItems: 2 });
    expect(first.functions.map((f) => f.name)).toEqual(["a", "b"]);
    expect(first.nextMarker).toBe("b");
    const second = await registry.list(tenant.id, { maxItems: 2, marker: first.nextMarker! });
    expect(second.functions.map((f) => f.name)).toEqual(["c"]);
    expect(second.nextMarker).toBeUndefined();
    expect(await registry.usage(tenant.id)).toEqual({
      functionCount: 3,
      totalCodeSize: 3 * zip.length,
    });
  });

  it("gives every update a new revision and keeps fields not patched", async () => {
    const created = await registry.create(
      tenant,
      "fn",
      { runtime: "nodejs20.x", handler: "index.handler", environment: { STAGE: "1" } },
      zip,
      code,
    );
    const configured = await registry.updateConfiguration(tenant.id, "fn", { timeoutSec: 30 });
    expect(configured.timeoutSec).toBe(30);
    expect(configured.environment).toEqual({ STAGE: "1" });
    expect(configured.revisionId).not.toBe(created.revisionId);
    const other = new TextEncoder().encode("other zip");
    const otherCode = {
      codeSha256: createHash("sha256").update(other).digest("base64"),
      codeSize: other.length,
    };
    const recoded = await registry.updateCode(tenant.id, "fn", other, otherCode);
    expect(recoded.codeSha256).toBe(otherCode.codeSha256);
    expect(recoded.timeoutSec).toBe(30);
    expect((await registry.get(tenant.id, "fn"))?.revisionId).toBe(recoded.revisionId);
    await expect(registry.updateConfiguration(tenant.id, "missing", {})).rejects.toBeInstanceOf(
      LambdaApiError,
    );
  });

  it("sees functions written by another process at once, and their deletion", async () => {
    const elsewhere = await open(infra);
    try {
      await elsewhere.create(
        tenant,
        "remote",
        { runtime: "nodejs20.x", handler: "i.h" },
        zip,
        code,
      );
      expect((await registry.get(tenant.id, "remote"))?.name).toBe("remote");
      const changes: Array<string | undefined> = [];
      registry.onChange((_key, record) => changes.push(record?.revisionId));
      const updated = await elsewhere.updateConfiguration(tenant.id, "remote", { memoryMb: 512 });
      await elsewhere.delete(tenant.id, "remote");
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The watch may still deliver the create; the update and the delete follow it.
      expect(changes.slice(-2)).toEqual([updated.revisionId, undefined]);
      expect(await registry.get(tenant.id, "remote")).toBeUndefined();
      await expect(registry.delete(tenant.id, "remote")).rejects.toMatchObject({
        errorType: "ResourceNotFoundException",
      });
    } finally {
      elsewhere.close();
    }
  });

  it("keeps reserved concurrency within the tenant's maximum less 100, without a new revision", async () => {
    const small: Tenant = { ...tenant, maxConcurrency: 300 };
    const a = await registry.create(
      small,
      "a",
      { runtime: "nodejs20.x", handler: "i.h" },
      zip,
      code,
    );
    await registry.create(small, "b", { runtime: "nodejs20.x", handler: "i.h" }, zip, code);
    const reserved = await registry.putReservedConcurrency(small, "a", 150);
    expect(reserved.reservedConcurrency).toBe(150);
    expect(reserved.revisionId).toBe(a.revisionId);
    await registry.putReservedConcurrency(small, "b", 50);
    expect(registry.reservedTotal(small.id)).toBe(200);
    await expect(registry.putReservedConcurrency(small, "b", 51)).rejects.toMatchObject({
      errorType: "InvalidParameterValueException",
    });
    await expect(registry.putReservedConcurrency(small, "b", -1)).rejects.toMatchObject({
      errorType: "InvalidParameterValueException",
    });
    // Raising a's own reservation counts a's old value out.
    await registry.putReservedConcurrency(small, "a", 100);
    await registry.putReservedConcurrency(small, "b", 100);
    expect(registry.reservedTotal(small.id)).toBe(200);

    const cleared = await registry.deleteReservedConcurrency(small.id, "a");
    expect(cleared.reservedConcurrency).toBeUndefined();
    expect(registry.reservedTotal(small.id)).toBe(100);
    await registry.delete(small.id, "b");
    expect(registry.reservedTotal(small.id)).toBe(0);

    // A registry opened later sees the same totals from the store.
    await registry.putReservedConcurrency(small, "a", 7);
    const later = await open(infra);
    try {
      expect(later.reservedTotal(small.id)).toBe(7);
    } finally {
      later.close();
    }
  });
});
