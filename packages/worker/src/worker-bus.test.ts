/**
 * The worker as the bus sees it — requests, replies, heartbeats, draining —
 * with fake sandboxes, so that only the worker's own logic is under test.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryBus } from "@gust/bus";
import { Subjects, decodeAs, encode } from "@gust/protocol";
import type { InvokeReply, WorkerGone, WorkerHeartbeat } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { startWorker } from "./worker.js";
import type { Worker } from "./worker.js";
import type { WorkerOptions } from "./options.js";
import {
  FakeSandboxFactory,
  MapCodeSource,
  invoke,
  nodeFunction,
  payloadOf,
  succeed,
} from "./test-support.js";
import { SandboxExitedError } from "./sandbox.js";
import type { SandboxResult } from "./sandbox.js";

const logger = createLogger("worker-test", { level: "silent" });
let cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setup(options: WorkerOptions = {}) {
  const bus = new MemoryBus({ logger });
  const code = new MapCodeSource();
  const factory = new FakeSandboxFactory();
  const announcements: Array<WorkerHeartbeat | WorkerGone> = [];
  const listen = (subject: string) =>
    bus.subscribe(subject, (message) => {
      announcements.push(decodeAs(message.data, "worker.heartbeat", "worker.gone"));
    });
  listen(Subjects.workerHeartbeat);
  listen(Subjects.workerGone);
  const worker = await startWorker(
    { preinitializedPoolSize: 0, heartbeatIntervalMs: 50, ...options },
    { bus, code, logger, sandboxFactory: factory },
  );
  cleanups.push(async () => {
    await worker.close();
    await bus.close();
  });
  return { bus, code, factory, worker, announcements };
}

async function request(bus: MemoryBus, worker: Worker, bytes: Uint8Array): Promise<InvokeReply> {
  const reply = await bus.request(Subjects.invoke(worker.id), bytes, { timeoutMs: 10_000 });
  return decodeAs(reply.data, "invoke.result", "invoke.rejected");
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Invocations on the factory's sandboxes wait until the returned function is called. */
function holdInvocations(factory: FakeSandboxFactory): () => void {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  factory.behaviour = async (invocation, sandbox) => {
    await held;
    return succeed(invocation, sandbox);
  };
  return release;
}

describe("worker on the bus", () => {
  it("answers garbage with a DecodeError and keeps serving", async () => {
    const { bus, code, worker } = await setup();
    const garbage = await request(bus, worker, new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
    expect(garbage).toMatchObject({
      type: "invoke.rejected",
      requestId: "",
      error: { name: "DecodeError", retryable: false },
    });

    const wrongType = await request(bus, worker, encode({ type: "worker.gone", workerId: "x" }));
    expect(wrongType).toMatchObject({ type: "invoke.rejected", error: { name: "DecodeError" } });

    const fn = await nodeFunction(code, "");
    const badRuntime = encode({
      type: "invoke",
      requestId: "req-bad",
      target: { ...fn.target, runtime: "cobol" as never },
      payload: new Uint8Array(),
      tailLog: false,
    });
    const rejected = await request(bus, worker, badRuntime);
    expect(rejected).toMatchObject({
      type: "invoke.rejected",
      requestId: "req-bad",
      error: { name: "DecodeError" },
    });
    expect(rejected.type === "invoke.rejected" && rejected.error.message).toContain("runtime");

    const ok = await invoke(bus, worker.id, fn.target, { payload: { still: "here" } });
    expect(payloadOf(ok)).toEqual({ still: "here" });
  });

  it("announces WorkerGone and stops every sandbox when closed", async () => {
    const { bus, code, factory, worker, announcements } = await setup({
      preinitializedPoolSize: 2,
    });
    const fn = await nodeFunction(code, "");
    await invoke(bus, worker.id, fn.target);
    await worker.close();
    await bus.flush();
    expect(factory.sandboxes.length).toBeGreaterThan(0);
    expect(factory.live()).toEqual([]);
    expect(announcements.at(-1)).toEqual({ type: "worker.gone", workerId: worker.id });
    const heartbeats = announcements.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(announcements).toHaveLength(heartbeats);
  });

  it("rejects an invocation whose code cannot be found", async () => {
    const { bus, code, worker } = await setup();
    const fn = await nodeFunction(code, "");
    const reply = await invoke(bus, worker.id, { ...fn.target, codeSha256: "bm90LXRoZXJl" });
    expect(reply).toMatchObject({
      type: "invoke.rejected",
      error: { name: "CodeUnavailableError" },
    });
  });

  it("runs an invocation on another sandbox when the one handed out died after its last", async () => {
    const { bus, code, factory, worker } = await setup();
    const fn = await nodeFunction(code, "");
    const first = await invoke(bus, worker.id, fn.target);
    expect(first).toMatchObject({ type: "invoke.result", startKind: "cold" });
    // The warm sandbox finds, when the next invocation reaches it, that it is gone.
    factory.behaviour = (invocation, sandbox) => {
      if (sandbox.id === "fake1") {
        return Promise.reject(new SandboxExitedError("exited after its last invocation"));
      }
      return succeed(invocation, sandbox);
    };
    const second = await invoke(bus, worker.id, fn.target, { payload: { n: 2 } });
    expect(second).toMatchObject({ type: "invoke.result", outcome: "success", startKind: "cold" });
    expect(payloadOf(second)).toEqual({ n: 2 });
    expect(factory.sandboxes.map((sandbox) => [sandbox.id, sandbox.disposed])).toEqual([
      ["fake1", true],
      ["fake2", false],
    ]);
    expect(worker.stats().invocations).toMatchObject({ cold: 2, warm: 0, rejected: 0 });
  });

  it("fetches a function's code once and keeps it", async () => {
    const { bus, code, worker } = await setup();
    const fn = await nodeFunction(code, "");
    // Two concurrent cold starts, then a third after both: one fetch.
    await Promise.all([invoke(bus, worker.id, fn.target), invoke(bus, worker.id, fn.target)]);
    await invoke(bus, worker.id, { ...fn.target, revisionId: "r2" });
    expect(code.fetches).toBe(1);
  });

  it("rejects with a retryable CapacityError when it has no room, and takes work again once it has", async () => {
    const { bus, code, factory, worker } = await setup({ maxSandboxes: 1 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    factory.behaviour = async (invocation): Promise<SandboxResult> => {
      await held;
      return succeed(invocation, factory.sandboxes[0] as never);
    };
    const a = await nodeFunction(code, "");
    const b = await nodeFunction(code, "");
    const running = invoke(bus, worker.id, a.target);
    await until(
      () => worker.stats().inflight === 1 && worker.stats().sandboxes.busy === 1,
      "the first invocation",
    );
    const refused = await invoke(bus, worker.id, b.target);
    expect(refused).toMatchObject({
      type: "invoke.rejected",
      error: { name: "CapacityError", retryable: true },
    });
    release();
    expect((await running).type).toBe("invoke.result");
    // a's sandbox is idle now: b evicts it.
    const accepted = await invoke(bus, worker.id, b.target);
    expect(accepted).toMatchObject({ type: "invoke.result", startKind: "cold" });
    expect(factory.sandboxes[0]?.disposed).toBe(true);
    expect(worker.stats().invocations.rejected).toBe(1);
  });

  it("publishes heartbeats from the start with capacity, use and warm functions", async () => {
    const { bus, code, worker, announcements } = await setup({ maxSandboxes: 7, memoryMb: 2048 });
    await until(() => announcements.length >= 1, "the first heartbeat");
    expect(announcements[0]).toMatchObject({
      type: "worker.heartbeat",
      workerId: worker.id,
      seq: 1,
      intervalMs: 50,
      capacity: { sandboxes: 7, memoryMb: 2048 },
      used: { sandboxes: 0, memoryMb: 0 },
      warm: [],
      draining: false,
    });
    const fn = await nodeFunction(code, "", { memoryMb: 512 });
    await invoke(bus, worker.id, fn.target);
    const seen = announcements.length;
    await until(() => announcements.length > seen + 1, "a later heartbeat");
    const latest = announcements.at(-1) as WorkerHeartbeat;
    expect(latest.used).toEqual({ sandboxes: 1, memoryMb: 512 });
    expect(latest.warm).toEqual([
      {
        functionKey: `${fn.target.tenantId}/${fn.target.name}`,
        revisionId: fn.target.revisionId,
        idle: 1,
        total: 1,
      },
    ]);
    const seqs = announcements.map((announcement) => (announcement as WorkerHeartbeat).seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });

  it("reaps sandboxes idle past keepAliveMs", async () => {
    const { bus, code, factory, worker, announcements } = await setup({ keepAliveMs: 150 });
    const fn = await nodeFunction(code, "");
    await invoke(bus, worker.id, fn.target);
    expect(worker.stats().sandboxes.idle).toBe(1);
    await until(() => worker.stats().sandboxes.sandboxes === 0, "the idle sandbox to be reaped");
    expect(factory.sandboxes[0]?.disposed).toBe(true);
    const count = announcements.length;
    await until(() => announcements.length > count, "a heartbeat after reaping");
    expect((announcements.at(-1) as WorkerHeartbeat).warm).toEqual([]);
    expect((await invoke(bus, worker.id, fn.target)).type === "invoke.result").toBe(true);
  });

  it("drains: finishes what runs, refuses new work as retryable, stops sandboxes, announces WorkerGone", async () => {
    const { bus, code, factory, worker, announcements } = await setup({
      preinitializedPoolSize: 1,
    });
    const release = holdInvocations(factory);
    const fn = await nodeFunction(code, "");
    await until(() => worker.stats().sandboxes.preinitialized === 1, "the pool");
    const running = invoke(bus, worker.id, fn.target);
    // Running means in a sandbox: one still waiting for a sandbox when the drain
    // begins is handed back as retryable, like any new work.
    await until(() => worker.stats().sandboxes.busy === 1, "the invocation to run");
    const drained = worker.drain();
    await until(
      () => announcements.some((a) => a.type === "worker.heartbeat" && a.draining),
      "a draining heartbeat",
    );
    const refused = await invoke(bus, worker.id, fn.target, { requestId: randomUUID() });
    expect(refused).toMatchObject({
      type: "invoke.rejected",
      error: { name: "CapacityError", retryable: true },
    });
    release();
    expect(await running).toMatchObject({ type: "invoke.result", outcome: "success" });
    await drained;
    expect(factory.live()).toEqual([]);
    await until(() => announcements.some((a) => a.type === "worker.gone"), "WorkerGone");
    expect(announcements.at(-1)).toEqual({ type: "worker.gone", workerId: worker.id });
    expect(worker.stats().draining).toBe(true);
  });

  it("counts what each frontend's invocations run, by admission pool, for a census", async () => {
    const { bus, code, factory, worker } = await setup();
    const release = holdInvocations(factory);
    const fn = await nodeFunction(code, "");
    const census = async (frontendIds: string[]) => {
      const reply = await bus.request(
        Subjects.workerCensus(worker.id),
        encode({ type: "worker.census", frontendIds }),
        { timeoutMs: 5_000 },
      );
      return decodeAs(reply.data, "worker.census.reply");
    };
    const slot = (frontendId: string, pool: string) => ({ admission: { frontendId, pool } });
    const running = [
      invoke(bus, worker.id, fn.target, slot("fe-a", "t")),
      invoke(bus, worker.id, fn.target, slot("fe-a", "t")),
      invoke(bus, worker.id, fn.target, slot("fe-a", "t\u0000reserved")),
      invoke(bus, worker.id, fn.target, slot("fe-b", "t")),
      invoke(bus, worker.id, fn.target),
    ];
    await until(() => worker.stats().inflight === 5, "the invocations to arrive");
    expect(await census(["fe-a", "fe-c"])).toEqual({
      type: "worker.census.reply",
      workerId: worker.id,
      running: { "fe-a": { t: 2, "t\u0000reserved": 1 } },
    });
    release();
    for (const reply of await Promise.all(running)) expect(reply.type).toBe("invoke.result");
    expect((await census(["fe-a", "fe-b"])).running).toEqual({});
  });
});

describe("worker in the frontend's process", () => {
  it("runs an invocation handed over as an object as one from the bus, draining and bad targets included", async () => {
    const { code, factory, worker } = await setup();
    const fn = await nodeFunction(code, "");
    const request = (requestId: string) => ({
      type: "invoke" as const,
      requestId,
      target: fn.target,
      payload: new TextEncoder().encode(JSON.stringify({ local: requestId })),
      tailLog: false,
      admission: { frontendId: "fe-local", pool: "t" },
    });
    expect(payloadOf(await worker.invokeLocal(request("req-1")))).toEqual({ local: "req-1" });
    // The request is the caller's: the worker does not change it.
    const held = request("req-2");
    const release = holdInvocations(factory);
    const running = worker.invokeLocal(held);
    await until(() => worker.stats().inflight === 1, "the invocation to run");
    expect(held.target).toBe(fn.target);
    const drained = worker.drain();
    expect(await worker.invokeLocal(request("req-3"))).toMatchObject({
      type: "invoke.rejected",
      requestId: "req-3",
      error: { name: "CapacityError", retryable: true },
    });
    release();
    expect(payloadOf(await running)).toEqual({ local: "req-2" });
    await drained;
    expect(
      await worker.invokeLocal({
        ...request("req-4"),
        target: { ...fn.target, runtime: "cobol" as never },
      }),
    ).toMatchObject({
      type: "invoke.rejected",
      requestId: "req-4",
      error: { name: "DecodeError" },
    });
  });
});

describe("dispatch window", () => {
  /**
   * A function whose runs report `runMs` inside the sandbox: 16 of them
   * taught, then three at once, held in their sandboxes until released.
   */
  async function threeAtOnce(
    setupOf: Awaited<ReturnType<typeof setup>>,
    runMs: number,
  ): Promise<{ replies: Promise<InvokeReply[]>; release: () => void }> {
    const { bus, code, factory, worker } = setupOf;
    const fn = await nodeFunction(code, "");
    // The taught runs go at once; the three after them wait for `release`.
    let held: Promise<void> | undefined = undefined;
    factory.behaviour = async (invocation, sandbox) => {
      if (held !== undefined) await held;
      return { ...(await succeed(invocation, sandbox)), runDurationMs: runMs };
    };
    for (let i = 0; i < 16; i++) await invoke(bus, worker.id, fn.target);
    let release!: () => void;
    held = new Promise<void>((resolve) => (release = resolve));
    const replies = Promise.all([0, 1, 2].map(() => invoke(bus, worker.id, fn.target)));
    await until(() => worker.stats().inflight === 3, "the invocations to arrive");
    return { replies, release };
  }

  it("hands a short function's invocations out `dispatchSlots` at a time, a long one's all at once", async () => {
    // Held slots do not expire during the test.
    const running = await setup({ dispatchSlots: 1, dispatchHoldMs: 60_000 });
    const short = await threeAtOnce(running, 0.2);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(running.worker.stats().sandboxes.busy).toBe(1);
    short.release();
    for (const reply of await short.replies) expect(reply.type).toBe("invoke.result");

    // Runs of 5 ms are not short: nothing waits.
    const long = await threeAtOnce(running, 5);
    await until(() => running.worker.stats().sandboxes.busy === 3, "three long runs at once");
    long.release();
    for (const reply of await long.replies) expect(reply.type).toBe("invoke.result");
  });
});
