import { createHash } from "node:crypto";
import { createMemoryInfrastructure, type Infrastructure } from "@gust/bus";
import {
  BUILT_IN_RUNTIME_VERSIONS,
  Buckets,
  builtInRuntimeVersionRef,
  type FunctionRecord,
} from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { effectiveRuntimeVersion, FunctionRegistry } from "./functions.js";
import type { Tenant } from "./tenants.js";

const tenant: Tenant = { id: "acme", accountId: "123456789012", maxConcurrency: 1000 };
const zip = new TextEncoder().encode("pretend zip bytes");
const code = {
  codeSha256: createHash("sha256").update(zip).digest("base64"),
  codeSize: zip.length,
};
const logger = createLogger("runtime-versions-test", { level: "silent" });
const ARN = /^arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}$/;

const builtIn = (runtime: string, version: string) => {
  const found = BUILT_IN_RUNTIME_VERSIONS.find(
    (candidate) => candidate.runtime === runtime && candidate.version === version,
  );
  if (!found) throw new Error(`no built-in ${runtime}:${version}`);
  return builtInRuntimeVersionRef("us-east-1", found);
};
const NODE_1 = builtIn("nodejs20.x", "1.0.0");
const NODE_2 = builtIn("nodejs20.x", "2.0.0");
const PROVIDED = builtIn("provided.al2023", "1.0.0");

/** Resolves once `check` holds, polling the event loop (watch events arrive on later turns). */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe("RuntimeVersionRegistry", () => {
  let infra: Infrastructure;
  const opened: FunctionRegistry[] = [];

  async function open(): Promise<FunctionRegistry> {
    const registry = await FunctionRegistry.open({
      functions: await infra.kv(Buckets.functions),
      code: await infra.blobs(Buckets.code),
      runtimeVersions: await infra.kv(Buckets.runtimeVersions),
      logger,
    });
    opened.push(registry);
    return registry;
  }

  beforeEach(() => {
    infra = createMemoryInfrastructure();
  });
  afterEach(async () => {
    for (const registry of opened.splice(0)) registry.close();
    await infra.close();
  });

  it("registers the built-in versions at open, with the same ARNs in every process", async () => {
    const [a, b] = await Promise.all([open(), open()]);
    const names = a.runtimeVersions.list().map((record) => record.name);
    expect(names).toEqual([
      "nodejs20.x:1.0.0",
      "nodejs20.x:2.0.0",
      "provided:1.0.0",
      "provided.al2:1.0.0",
      "provided.al2023:1.0.0",
    ]);
    expect(b.runtimeVersions.list()).toEqual(a.runtimeVersions.list());
    expect(NODE_1.arn).toMatch(ARN);
    expect(NODE_2.arn).not.toBe(NODE_1.arn);
    expect(a.runtimeVersions.defaultVersion("nodejs20.x").arn).toBe(NODE_1.arn);
    expect(a.runtimeVersions.get("nodejs20.x", "2.0.0")).toMatchObject({
      builtIn: true,
      recipe: { kind: "node", bootstrap: "2.0.0", nodeFlags: [] },
    });
  });

  it("adds an operator's version, idempotently, and refuses to change one", async () => {
    const registry = await open();
    const input = {
      runtime: "nodejs20.x",
      version: "2.1.0",
      recipe: { bootstrap: "2.0.0", nodeFlags: ["--enable-source-maps"] },
      description: "2.0.0 with source maps",
    };
    const added = await registry.runtimeVersions.add(input);
    expect(added).toMatchObject({ name: "nodejs20.x:2.1.0", builtIn: false });
    expect(added.arn).toMatch(ARN);
    expect(await registry.runtimeVersions.add(input)).toEqual(added);
    await expect(
      registry.runtimeVersions.add({ ...input, recipe: { bootstrap: "1.0.0" } }),
    ).rejects.toMatchObject({ errorType: "ResourceConflictException" });
  });

  it("refuses recipes that are not safe or not shipped", async () => {
    const registry = await open();
    const add = (recipe: unknown, runtime = "nodejs20.x", version = "9.0.0") =>
      registry.runtimeVersions.add({ runtime, version, recipe });
    for (const recipe of [
      { bootstrap: "7.0.0" },
      { bootstrap: "1.0.0", nodeFlags: ["--allow-fs-read=/"] },
      { bootstrap: "1.0.0", nodeFlags: "--no-warnings" },
      "bootstrap",
    ]) {
      await expect(add(recipe)).rejects.toMatchObject({
        errorType: "InvalidParameterValueException",
      });
    }
    await expect(add({ entrypoint: "../escape" }, "provided")).rejects.toMatchObject({
      errorType: "InvalidParameterValueException",
    });
    await expect(add({}, "python3.12")).rejects.toMatchObject({
      errorType: "InvalidParameterValueException",
    });
    await expect(add({ bootstrap: "1.0.0" }, "nodejs20.x", "1=0")).rejects.toMatchObject({
      errorType: "InvalidParameterValueException",
    });
  });

  it("spreads a new version and a new default to every process through the bucket", async () => {
    const [a, b] = await Promise.all([open(), open()]);
    const added = await a.runtimeVersions.add({
      runtime: "nodejs20.x",
      version: "3.0.0",
      recipe: { bootstrap: "2.0.0", nodeFlags: ["--frozen-intrinsics"] },
    });
    await a.runtimeVersions.setDefault("nodejs20.x", "3.0.0");
    await eventually(() => b.runtimeVersions.defaultVersion("nodejs20.x").arn === added.arn);
    expect(b.runtimeVersions.byArnCached(added.arn)?.name).toBe("nodejs20.x:3.0.0");
    await expect(a.runtimeVersions.setDefault("nodejs20.x", "4.0.0")).rejects.toMatchObject({
      errorType: "ResourceNotFoundException",
    });
  });
});

describe("runtime management on functions", () => {
  let infra: Infrastructure;
  let registry: FunctionRegistry;
  let fn: FunctionRecord;

  beforeEach(async () => {
    infra = createMemoryInfrastructure();
    registry = await FunctionRegistry.open({
      functions: await infra.kv(Buckets.functions),
      code: await infra.blobs(Buckets.code),
      runtimeVersions: await infra.kv(Buckets.runtimeVersions),
      logger,
    });
    fn = await registry.create(
      tenant,
      "hello",
      { runtime: "nodejs20.x", handler: "index.handler" },
      zip,
      code,
    );
  });
  afterEach(async () => {
    registry.close();
    await infra.close();
  });

  const choose = async () =>
    registry.runtimeVersions.choose((await registry.get(tenant.id, "hello"))!);

  it("runs a new function on its runtime's default (Auto)", async () => {
    expect(fn.runtimeManagement).toBeUndefined();
    expect(await choose()).toEqual({ version: NODE_1, isDefault: true });
    expect(effectiveRuntimeVersion(fn)?.arn).toBe(NODE_1.arn);
    await registry.runtimeVersions.setDefault("nodejs20.x", "2.0.0");
    expect(await choose()).toEqual({ version: NODE_2, isDefault: true });
    expect(effectiveRuntimeVersion((await registry.get(tenant.id, "hello"))!)?.arn).toBe(
      NODE_2.arn,
    );
  });

  it("pins a version with Manual, and checks it", async () => {
    const pinned = await registry.putRuntimeManagementConfig(tenant.id, "hello", {
      updateRuntimeOn: "Manual",
      runtimeVersionArn: NODE_2.arn,
    });
    expect(pinned.runtimeManagement).toEqual({
      updateRuntimeOn: "Manual",
      runtimeVersionArn: NODE_2.arn,
    });
    // A setting, not an update: the revision stays.
    expect(pinned.revisionId).toBe(fn.revisionId);
    expect(await choose()).toEqual({ version: NODE_2, isDefault: false });

    const refused = (config: Parameters<FunctionRegistry["putRuntimeManagementConfig"]>[2]) =>
      expect(registry.putRuntimeManagementConfig(tenant.id, "hello", config)).rejects.toMatchObject(
        { errorType: "InvalidParameterValueException", statusCode: 400 },
      );
    await refused({ updateRuntimeOn: "Manual" });
    await refused({ updateRuntimeOn: "Manual", runtimeVersionArn: "arn:aws:lambda:::nope" });
    await refused({
      updateRuntimeOn: "Manual",
      runtimeVersionArn: `arn:aws:lambda:us-east-1::runtime:${"0".repeat(64)}`,
    });
    await refused({ updateRuntimeOn: "Manual", runtimeVersionArn: PROVIDED.arn });
    await refused({ updateRuntimeOn: "Auto", runtimeVersionArn: NODE_2.arn });
    await expect(
      registry.putRuntimeManagementConfig(tenant.id, "missing", { updateRuntimeOn: "Auto" }),
    ).rejects.toMatchObject({ errorType: "ResourceNotFoundException" });

    await registry.putRuntimeManagementConfig(tenant.id, "hello", { updateRuntimeOn: "Auto" });
    expect((await registry.get(tenant.id, "hello"))?.runtimeManagement).toBeUndefined();
    expect(await choose()).toEqual({ version: NODE_1, isDefault: true });
  });

  it("FunctionUpdate keeps the version of the last update until the next one", async () => {
    await registry.putRuntimeManagementConfig(tenant.id, "hello", {
      updateRuntimeOn: "FunctionUpdate",
    });
    await registry.runtimeVersions.setDefault("nodejs20.x", "2.0.0");
    expect(await choose()).toEqual({ version: NODE_1, isDefault: false });
    const updated = await registry.updateConfiguration(tenant.id, "hello", { timeoutSec: 9 });
    expect(updated.runtimeManagement).toEqual({
      updateRuntimeOn: "FunctionUpdate",
      runtimeVersionArn: NODE_2.arn,
    });
    expect(await choose()).toEqual({ version: NODE_2, isDefault: true });
  });

  it("drops a Manual pin when the function changes runtime", async () => {
    await registry.putRuntimeManagementConfig(tenant.id, "hello", {
      updateRuntimeOn: "Manual",
      runtimeVersionArn: NODE_2.arn,
    });
    const moved = await registry.updateConfiguration(tenant.id, "hello", {
      runtime: "provided.al2023",
      handler: "bootstrap",
    });
    expect(moved.runtimeManagement).toBeUndefined();
    expect(registry.runtimeVersions.choose(moved).version).toEqual(PROVIDED);
  });
});
