import { afterEach, describe, expect, it } from "vitest";
import {
  BUILT_IN_RUNTIME_VERSIONS,
  builtInRuntimeVersionRef,
  functionArn,
  type InvokeTarget,
  type RuntimeVersionRef,
} from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { SandboxPool } from "./sandbox-pool.js";
import type { SandboxPoolOptions } from "./sandbox-pool.js";
import type { Sandbox } from "./sandbox.js";
import { FakeSandboxFactory } from "./test-support.js";

const logger = createLogger("pool-test", { level: "silent" });
const zip = new Uint8Array([1, 2, 3]);
const loadCode = () => Promise.resolve(zip);

const builtIn = (version: string): RuntimeVersionRef => {
  const found = BUILT_IN_RUNTIME_VERSIONS.find(
    (candidate) => candidate.runtime === "nodejs20.x" && candidate.version === version,
  );
  if (!found) throw new Error(`no built-in ${version}`);
  return builtInRuntimeVersionRef("us-east-1", found);
};
const V1 = builtIn("1.0.0");
const V2 = builtIn("2.0.0");

/** Remembers which runtime version each pre-initialized sandbox was started on. */
class VersionedFakeFactory extends FakeSandboxFactory {
  readonly preinitializedVersions = new Map<Sandbox, string>();
  override async startPreinitialized(version?: RuntimeVersionRef): Promise<Sandbox> {
    const sandbox = await super.startPreinitialized();
    this.preinitializedVersions.set(sandbox, version?.arn ?? "none");
    return sandbox;
  }
}

function target(name: string, version?: RuntimeVersionRef, isDefault = false): InvokeTarget {
  return {
    tenantId: "t1",
    name,
    functionArn: functionArn("us-east-1", "123456789012", name),
    runtime: "nodejs20.x",
    handler: "index.handler",
    timeoutSec: 3,
    memoryMb: 128,
    environment: {},
    codeSha256: `sha-${name}`,
    revisionId: "r1",
    ...(version === undefined
      ? {}
      : { runtimeVersion: version, runtimeVersionIsDefault: isDefault }),
  };
}

let pools: SandboxPool[] = [];
let clock = 1_000_000;

function makePool(overrides: Partial<SandboxPoolOptions> = {}) {
  const factory = new VersionedFakeFactory();
  const pool = new SandboxPool({
    factory,
    maxSandboxes: 16,
    memoryMb: 8192,
    preinitializedPoolSize: 2,
    keepAliveMs: 60_000,
    defaultRuntimeVersion: V1,
    logger,
    now: () => clock,
    ...overrides,
  });
  pools.push(pool);
  return { pool, factory };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
const pooledOf = (pool: SandboxPool, version: RuntimeVersionRef) =>
  pool.stats().runtimeVersions[version.arn]?.preinitialized ?? 0;

afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
  pools = [];
});

describe("SandboxPool with runtime versions", () => {
  it("pre-initializes only the default version until another is asked for", async () => {
    const { pool, factory } = makePool();
    await settle();
    expect(pooledOf(pool, V1)).toBe(2);
    expect(pool.stats().runtimeVersions[V2.arn]).toBeUndefined();

    const first = await pool.acquire(target("a", V2), loadCode);
    // No pool of 2.0.0 yet: a cold start, and its pool fills behind it.
    expect(first.startKind).toBe("cold");
    await settle();
    expect(pooledOf(pool, V2)).toBe(2);
    expect(
      [...factory.preinitializedVersions.values()].filter((arn) => arn === V2.arn),
    ).toHaveLength(2);
    const second = await pool.acquire(target("b", V2), loadCode);
    expect(second.startKind).toBe("preinitialized");
    expect(factory.preinitializedVersions.get(second.sandbox)).toBe(V2.arn);
  });

  it("never hands a sandbox of one version to an invocation of another", async () => {
    const { pool } = makePool({ preinitializedPoolSize: 0 });
    const onV1 = await pool.acquire(target("a", V1, true), loadCode);
    pool.release(onV1, true);
    const onV2 = await pool.acquire(target("a", V2), loadCode);
    expect(onV2.startKind).toBe("cold");
    expect(onV2.sandbox).not.toBe(onV1.sandbox);
    pool.release(onV2, true);
    expect((await pool.acquire(target("a", V1, true), loadCode)).sandbox).toBe(onV1.sandbox);
    expect((await pool.acquire(target("a", V2), loadCode)).sandbox).toBe(onV2.sandbox);
  });

  it("drops a version's pool once nothing asked for it in keepAliveMs, but keeps the default's", async () => {
    const { pool } = makePool();
    pool.release(await pool.acquire(target("a", V2), loadCode), true);
    await settle();
    expect(pooledOf(pool, V2)).toBe(2);
    clock += 60_001;
    pool.reapIdle();
    await settle();
    expect(pool.stats().runtimeVersions[V2.arn]).toBeUndefined();
    expect(pooledOf(pool, V1)).toBe(2);
  });

  it("follows a new default: its pool stays, the old default's goes when unused", async () => {
    const { pool } = makePool();
    await settle();
    pool.release(await pool.acquire(target("a", V2, true), loadCode), true);
    await settle();
    clock += 60_001;
    pool.reapIdle();
    await settle();
    expect(pool.stats().runtimeVersions[V1.arn]).toBeUndefined();
    expect(pooledOf(pool, V2)).toBe(2);
  });

  it("fills the default's pool first when room is short", async () => {
    const { pool } = makePool({ maxSandboxes: 3 });
    await settle();
    await pool.acquire(target("a", V2), loadCode);
    await settle();
    // One busy 2.0.0 sandbox and two pre-initialized 1.0.0 ones fill the worker.
    expect(pooledOf(pool, V1)).toBe(2);
    expect(pooledOf(pool, V2)).toBe(0);
  });
});
