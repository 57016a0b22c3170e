import { afterEach, describe, expect, it } from "vitest";
import { CapacityError, functionArn } from "@gust/protocol";
import type { InvokeTarget } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { REFILL_AFTER_ASSIGN_MS, SandboxPool } from "./sandbox-pool.js";
import type { Lease, SandboxPoolOptions } from "./sandbox-pool.js";
import { FakeSandboxFactory } from "./test-support.js";

const logger = createLogger("pool-test", { level: "silent" });
const zip = new Uint8Array([1, 2, 3]);
const loadCode = () => Promise.resolve(zip);

function target(name: string, overrides: Partial<InvokeTarget> = {}): InvokeTarget {
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
    ...overrides,
  };
}

let pools: SandboxPool[] = [];
let clock = 1_000_000;

function makePool(overrides: Partial<SandboxPoolOptions> = {}): {
  pool: SandboxPool;
  factory: FakeSandboxFactory;
} {
  const factory = new FakeSandboxFactory();
  const pool = new SandboxPool({
    factory,
    maxSandboxes: 4,
    memoryMb: 4096,
    preinitializedPoolSize: 0,
    keepAliveMs: 60_000,
    logger,
    now: () => clock,
    ...overrides,
  });
  pools.push(pool);
  return { pool, factory };
}

/** Lets the pool's background refill run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
  pools = [];
});

describe("SandboxPool", () => {
  it("starts cold, then reuses the idle sandbox warm, one invocation at a time", async () => {
    const { pool, factory } = makePool();
    const first = await pool.acquire(target("a"), loadCode);
    expect(first.startKind).toBe("cold");
    // While the first is busy, a second invocation needs a sandbox of its own.
    const second = await pool.acquire(target("a"), loadCode);
    expect(second.startKind).toBe("cold");
    expect(second.sandbox).not.toBe(first.sandbox);
    pool.release(first, true);
    const third = await pool.acquire(target("a"), loadCode);
    expect(third.startKind).toBe("warm");
    expect(third.sandbox).toBe(first.sandbox);
    expect(factory.sandboxes).toHaveLength(2);
  });

  it("assigns a pre-initialized sandbox to a new Node.js function and refills the pool", async () => {
    const { pool, factory } = makePool({ preinitializedPoolSize: 2 });
    await settle();
    expect(pool.stats().preinitialized).toBe(2);
    const lease = await pool.acquire(target("a"), loadCode);
    expect(lease.startKind).toBe("preinitialized");
    expect(factory.sandboxes[0]?.target?.name).toBe("a");
    await settle();
    // Replaced a little later, not while the assignment runs.
    expect(pool.stats()).toMatchObject({ preinitialized: 1, busy: 1 });
    await new Promise((resolve) => setTimeout(resolve, REFILL_AFTER_ASSIGN_MS + 10));
    await settle();
    expect(pool.stats()).toMatchObject({ preinitialized: 2, busy: 1 });
    // Pre-initialized sandboxes are spare room, not use.
    expect(pool.used()).toEqual({ sandboxes: 1, memoryMb: 128 });
  });

  it("starts custom runtimes cold even when the pool has sandboxes", async () => {
    const { pool } = makePool({ preinitializedPoolSize: 1 });
    await settle();
    const lease = await pool.acquire(target("sh", { runtime: "provided.al2023" }), loadCode);
    expect(lease.startKind).toBe("cold");
  });

  it("fetches code only when a sandbox needs it", async () => {
    const { pool } = makePool();
    let loads = 0;
    const counting = () => {
      loads++;
      return loadCode();
    };
    const lease = await pool.acquire(target("a"), counting);
    pool.release(lease, true);
    pool.release(await pool.acquire(target("a"), counting), true);
    expect(loads).toBe(1);
  });

  it("replaces a sandbox that is not reusable", async () => {
    const { pool, factory } = makePool();
    const first = await pool.acquire(target("a"), loadCode);
    pool.release(first, false);
    expect(factory.sandboxes[0]?.disposed).toBe(true);
    const second = await pool.acquire(target("a"), loadCode);
    expect(second.startKind).toBe("cold");
  });

  it("drops an idle sandbox that dies on its own", async () => {
    const { pool, factory } = makePool();
    pool.release(await pool.acquire(target("a"), loadCode), true);
    factory.sandboxes[0]?.crash();
    expect(pool.stats().sandboxes).toBe(0);
    expect((await pool.acquire(target("a"), loadCode)).startKind).toBe("cold");
  });

  it("never reuses a sandbox of another revision", async () => {
    const { pool, factory } = makePool();
    const old = await pool.acquire(target("a", { revisionId: "r1" }), loadCode);
    const idleOld = await pool.acquire(target("a", { revisionId: "r1" }), loadCode);
    pool.release(idleOld, true);
    const fresh = await pool.acquire(target("a", { revisionId: "r2" }), loadCode);
    expect(fresh.startKind).toBe("cold");
    // The idle old one is stopped at once, the busy one when it finishes.
    expect(factory.sandboxes[1]?.disposed).toBe(true);
    expect(factory.sandboxes[0]?.disposed).toBe(false);
    pool.release(old, true);
    expect(factory.sandboxes[0]?.disposed).toBe(true);
    expect(pool.warmFunctions()).toEqual([
      { functionKey: "t1/a", revisionId: "r2", idle: 0, total: 1 },
    ]);
  });

  it("makes room by stopping idle sandboxes of other functions, least recently used first", async () => {
    const { pool, factory } = makePool({ maxSandboxes: 3 });
    const leases: Lease[] = [];
    for (const name of ["a", "b", "c"]) {
      leases.push(await pool.acquire(target(name), loadCode));
    }
    // Released in order a, b, c; then a is used again: b is the least recently used.
    for (const lease of leases) {
      clock += 1000;
      pool.release(lease, true);
    }
    clock += 1000;
    const a = await pool.acquire(target("a"), loadCode);
    expect(a.startKind).toBe("warm");
    pool.release(a, true);
    const d = await pool.acquire(target("d"), loadCode);
    expect(d.startKind).toBe("cold");
    const byName = (name: string) =>
      factory.sandboxes.find((sandbox) => sandbox.target?.name === name);
    expect(byName("b")?.disposed).toBe(true);
    expect(byName("a")?.disposed).toBe(false);
    expect(byName("c")?.disposed).toBe(false);
  });

  it("rejects with a retryable CapacityError when every sandbox is busy", async () => {
    const { pool } = makePool({ maxSandboxes: 2 });
    await pool.acquire(target("a"), loadCode);
    await pool.acquire(target("b"), loadCode);
    const error = await pool.acquire(target("c"), loadCode).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CapacityError);
    expect((error as CapacityError).retryable).toBe(true);
  });

  it("counts memory: a function larger than the free MB is refused", async () => {
    const { pool } = makePool({ memoryMb: 1024 });
    await pool.acquire(target("a", { memoryMb: 768 }), loadCode);
    await expect(pool.acquire(target("b", { memoryMb: 512 }), loadCode)).rejects.toBeInstanceOf(
      CapacityError,
    );
    expect((await pool.acquire(target("c", { memoryMb: 256 }), loadCode)).startKind).toBe("cold");
    expect(pool.stats().memoryMb).toBe(1024);
  });

  it("does not refill the pool into room that functions need", async () => {
    const { pool } = makePool({ maxSandboxes: 2, preinitializedPoolSize: 2 });
    await settle();
    const first = await pool.acquire(target("sh1", { runtime: "provided" }), loadCode);
    const second = await pool.acquire(target("sh2", { runtime: "provided" }), loadCode);
    expect([first.startKind, second.startKind]).toEqual(["cold", "cold"]);
    await settle();
    expect(pool.stats()).toMatchObject({ sandboxes: 2, busy: 2, preinitialized: 0 });
  });

  it("stops sandboxes idle longer than keepAliveMs", async () => {
    const { pool, factory } = makePool({ keepAliveMs: 5000 });
    pool.release(await pool.acquire(target("a"), loadCode), true);
    clock += 4000;
    pool.reapIdle();
    expect(factory.sandboxes[0]?.disposed).toBe(false);
    clock += 1000;
    pool.reapIdle();
    expect(factory.sandboxes[0]?.disposed).toBe(true);
    expect(pool.stats().sandboxes).toBe(0);
  });

  it("reports warm functions with their idle and total counts", async () => {
    const { pool } = makePool();
    const one = await pool.acquire(target("a"), loadCode);
    await pool.acquire(target("a"), loadCode);
    pool.release(one, true);
    expect(pool.warmFunctions()).toEqual([
      { functionKey: "t1/a", revisionId: "r1", idle: 1, total: 2 },
    ]);
  });

  it("draining refuses new work and stops sandboxes as they finish", async () => {
    const { pool, factory } = makePool({ preinitializedPoolSize: 1 });
    await settle();
    const busy = await pool.acquire(target("a"), loadCode);
    pool.drain();
    await expect(pool.acquire(target("b"), loadCode)).rejects.toBeInstanceOf(CapacityError);
    expect(busy.sandbox.exited).toBe(false);
    pool.release(busy, true);
    await settle();
    expect(factory.live()).toHaveLength(0);
  });
});
