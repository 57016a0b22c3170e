/**
 * The worker running Node.js functions in real sandboxes (child processes
 * under the permission model, own uid when the tests run as root), driven
 * over an in-memory bus exactly as a frontend drives it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "@gust/bus";
import { createLogger } from "@gust/telemetry";
import { startWorker } from "./worker.js";
import type { Worker } from "./worker.js";
import { MapCodeSource, invoke, nodeFunction, payloadOf, uniqueUidBase } from "./test-support.js";

const logger = createLogger("worker-test", { level: "silent" });
const bus = new MemoryBus({ logger });
const code = new MapCodeSource();
let worker: Worker;

beforeAll(async () => {
  worker = await startWorker(
    { preinitializedPoolSize: 0, sandboxUidBase: uniqueUidBase(), trustTenants: true },
    { bus, code, logger },
  );
});

afterAll(async () => {
  await worker?.close();
  await bus.close();
});

function resultOf(reply: Awaited<ReturnType<typeof invoke>>) {
  if (reply.type !== "invoke.result")
    throw new Error(`rejected: ${reply.error.name}: ${reply.error.message}`);
  return reply;
}

describe("worker running Node.js functions", () => {
  it("runs a handler cold, then warm in the same sandbox", async () => {
    const fn = await nodeFunction(
      code,
      `let calls = 0;
       export const handler = async (event, context) => ({
         calls: ++calls, event, requestId: context.awsRequestId,
         functionName: context.functionName, memory: context.memoryLimitInMB,
       });`,
    );
    const first = resultOf(
      await invoke(bus, worker.id, fn.target, { payload: { n: 1 }, requestId: "req-cold-1" }),
    );
    expect(first).toMatchObject({
      outcome: "success",
      startKind: "cold",
      executedVersion: "$LATEST",
    });
    expect(payloadOf(first)).toEqual({
      calls: 1,
      event: { n: 1 },
      requestId: "req-cold-1",
      functionName: fn.target.name,
      memory: "128",
    });
    const second = resultOf(await invoke(bus, worker.id, fn.target, { payload: { n: 2 } }));
    expect(second.startKind).toBe("warm");
    // Module state survives between invocations of one sandbox, as in Lambda.
    expect(payloadOf(second)).toMatchObject({ calls: 2, event: { n: 2 } });
    expect(worker.stats().invocations).toMatchObject({ cold: 1, warm: 1 });
  });

  it("returns a handler's error as a function error", async () => {
    const fn = await nodeFunction(
      code,
      `export const handler = async () => { const e = new TypeError("bad input"); throw e; };`,
    );
    const reply = resultOf(await invoke(bus, worker.id, fn.target));
    expect(reply.outcome).toBe("function-error");
    expect(payloadOf(reply)).toMatchObject({ errorType: "TypeError", errorMessage: "bad input" });
  });

  it("reports an init error with the runtime's error type", async () => {
    const fn = await nodeFunction(
      code,
      `import "a-package-that-is-not-there"; export const handler = async () => 1;`,
    );
    const reply = resultOf(await invoke(bus, worker.id, fn.target, { tailLog: true }));
    expect(reply.outcome).toBe("init-error");
    expect(payloadOf(reply)).toMatchObject({ errorType: "Runtime.ImportModuleError" });
    expect(reply.logTail).toContain("Init Duration");
  });

  it("kills a sandbox at its timeout, and the next invocation runs", async () => {
    const fn = await nodeFunction(
      code,
      `export const handler = async (event) => {
         if (!event.fast) await new Promise((resolve) => setTimeout(resolve, 60_000));
         return "fast";
       };`,
      { timeoutSec: 1 },
    );
    const started = Date.now();
    const slow = resultOf(
      await invoke(bus, worker.id, fn.target, { requestId: "req-slow", tailLog: true }),
    );
    expect(slow.outcome).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(20_000);
    const error = payloadOf(slow) as { errorType: string; errorMessage: string };
    expect(error.errorType).toBe("Sandbox.Timedout");
    expect(error.errorMessage).toMatch(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z req-slow Task timed out after 1\.00 seconds$/,
    );
    expect(slow.logTail).toContain("Task timed out after 1.00 seconds");

    const next = resultOf(await invoke(bus, worker.id, fn.target, { payload: { fast: true } }));
    expect(next.outcome).toBe("success");
    // The timed-out sandbox was killed; this one is new.
    expect(next.startKind).toBe("cold");
    expect(payloadOf(next)).toBe("fast");
  });

  it("kills a sandbox that goes over its MemorySize", async () => {
    const fn = await nodeFunction(
      code,
      `const held = [];
       export const handler = async (event) => {
         if (event.small) return "small";
         for (let i = 0; i < 96; i++) {          // up to 1.5 GB, 16 MB at a time
           held.push(Buffer.alloc(16 * 1024 * 1024, i));
           await new Promise((resolve) => setTimeout(resolve, 10));
         }
         return "survived";
       };`,
      { memoryMb: 128 },
    );
    const reply = resultOf(await invoke(bus, worker.id, fn.target, { tailLog: true }));
    expect(reply.outcome).toBe("crash");
    expect(payloadOf(reply)).toMatchObject({
      errorType: "Runtime.ExitError",
      errorMessage: expect.stringContaining("Runtime exited with error: signal: killed"),
    });
    expect(reply.logTail).toMatch(/Max Memory Used: \d+ MB/);
    const next = resultOf(await invoke(bus, worker.id, fn.target, { payload: { small: true } }));
    expect(payloadOf(next)).toBe("small");
  });

  it("reports process.exit in a handler as a crash, and replaces the sandbox", async () => {
    const fn = await nodeFunction(
      code,
      `export const handler = async (event) => { if (event.exit) process.exit(1); return "alive"; };`,
    );
    expect(resultOf(await invoke(bus, worker.id, fn.target)).startKind).toBe("cold");
    const crashed = resultOf(
      await invoke(bus, worker.id, fn.target, { payload: { exit: true }, requestId: "req-exit" }),
    );
    expect(crashed.outcome).toBe("crash");
    expect(crashed.startKind).toBe("warm");
    expect(payloadOf(crashed)).toEqual({
      errorType: "Runtime.ExitError",
      errorMessage: "RequestId: req-exit Error: Runtime exited with error: exit status 1",
    });
    const next = resultOf(await invoke(bus, worker.id, fn.target));
    expect(next).toMatchObject({ outcome: "success", startKind: "cold" });
  });

  it("returns the log tail with START, the handler's lines, END and REPORT", async () => {
    const fn = await nodeFunction(
      code,
      `console.log("loading the module");
       export const handler = async (event) => { console.log("handling", event.n); return null; };`,
    );
    const first = resultOf(
      await invoke(bus, worker.id, fn.target, {
        payload: { n: 7 },
        tailLog: true,
        requestId: "req-log",
      }),
    );
    const lines = (first.logTail ?? "").trimEnd().split("\n");
    expect(lines.find((line) => line.includes("loading the module"))).toBeDefined();
    const start = lines.indexOf("START RequestId: req-log Version: $LATEST");
    const handled = lines.findIndex((line) => /\treq-log\tINFO\thandling 7$/.test(line));
    const end = lines.indexOf("END RequestId: req-log");
    expect(start).toBeGreaterThan(-1);
    expect(handled).toBeGreaterThan(start);
    expect(end).toBeGreaterThan(handled);
    expect(lines[end + 1]).toMatch(
      /^REPORT RequestId: req-log\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: [\d.]+ ms$/,
    );

    const warm = resultOf(
      await invoke(bus, worker.id, fn.target, { payload: { n: 8 }, tailLog: true }),
    );
    expect(warm.logTail).toContain("INFO\thandling 8");
    expect(warm.logTail).not.toContain("handling 7");
    expect(warm.logTail).not.toContain("Init Duration");
    const untailed = resultOf(await invoke(bus, worker.id, fn.target));
    expect(untailed.logTail).toBeUndefined();
  });

  it("refuses a response over 6 MB and keeps the sandbox", async () => {
    const fn = await nodeFunction(
      code,
      `export const handler = async (event) => event.big ? "x".repeat(7 * 1024 * 1024) : "ok";`,
    );
    const big = resultOf(await invoke(bus, worker.id, fn.target, { payload: { big: true } }));
    expect(big.outcome).toBe("function-error");
    expect(payloadOf(big)).toMatchObject({ errorType: "Function.ResponseSizeTooLarge" });
    const next = resultOf(await invoke(bus, worker.id, fn.target));
    expect(next).toMatchObject({ outcome: "success", startKind: "warm" });
  });
});

describe("worker with a pre-initialized pool", () => {
  const poolBus = new MemoryBus({ logger });
  let pooled: Worker;

  beforeAll(async () => {
    pooled = await startWorker(
      { preinitializedPoolSize: 1, sandboxUidBase: uniqueUidBase(), trustTenants: true },
      { bus: poolBus, code, logger },
    );
  });

  afterAll(async () => {
    await pooled?.close();
    await poolBus.close();
  });

  async function poolReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (pooled.stats().sandboxes.preinitialized < 1) {
      if (Date.now() > deadline) throw new Error("the pre-initialized pool never filled");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("gives a function's first invocation a pre-initialized sandbox, with the function's environment", async () => {
    await poolReady();
    const fn = await nodeFunction(
      code,
      `export const handler = async () => ({
         name: process.env.AWS_LAMBDA_FUNCTION_NAME,
         memory: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
         handler: process.env._HANDLER,
         own: process.env.GREETING,
       });`,
      { environment: { GREETING: "hi" }, memoryMb: 256 },
    );
    const first = resultOf(await invoke(poolBus, pooled.id, fn.target, { tailLog: true }));
    expect(first.startKind).toBe("preinitialized");
    expect(payloadOf(first)).toEqual({
      name: fn.target.name,
      memory: "256",
      handler: "index.handler",
      own: "hi",
    });
    expect(first.logTail).toContain("Init Duration");
    const second = resultOf(await invoke(poolBus, pooled.id, fn.target));
    expect(second.startKind).toBe("warm");
    // The pool refills in the background.
    await poolReady();
  });

  it("reports an init error from a pre-initialized sandbox, and refills the pool", async () => {
    await poolReady();
    const fn = await nodeFunction(code, `export const notTheHandler = 1;`);
    const reply = resultOf(await invoke(poolBus, pooled.id, fn.target));
    expect(reply).toMatchObject({ outcome: "init-error", startKind: "preinitialized" });
    expect(payloadOf(reply)).toMatchObject({ errorType: "Runtime.HandlerNotFound" });
    await poolReady();
  });

  it("enforces MemorySize on a pre-initialized sandbox too", async () => {
    await poolReady();
    const fn = await nodeFunction(
      code,
      `const held = [];
       export const handler = async () => {
         for (let i = 0; i < 96; i++) {
           held.push(Buffer.alloc(16 * 1024 * 1024, i));
           await new Promise((resolve) => setTimeout(resolve, 10));
         }
         return "survived";
       };`,
    );
    const reply = resultOf(await invoke(poolBus, pooled.id, fn.target));
    expect(reply.startKind).toBe("preinitialized");
    expect(reply.outcome).toBe("crash");
  });
});

describe("worker with a short init timeout", () => {
  const initBus = new MemoryBus({ logger });
  let impatient: Worker;

  beforeAll(async () => {
    impatient = await startWorker(
      {
        preinitializedPoolSize: 0,
        initTimeoutMs: 1500,
        sandboxUidBase: uniqueUidBase(),
        trustTenants: true,
      },
      { bus: initBus, code, logger },
    );
  });

  afterAll(async () => {
    await impatient?.close();
    await initBus.close();
  });

  it("kills a runtime whose handler never finishes loading", async () => {
    const fn = await nodeFunction(
      code,
      `await new Promise((resolve) => setTimeout(resolve, 60_000));
       export const handler = async () => "loaded";`,
    );
    const reply = resultOf(await invoke(initBus, impatient.id, fn.target, { tailLog: true }));
    expect(reply.outcome).toBe("timeout");
    expect(payloadOf(reply)).toMatchObject({
      errorType: "Sandbox.Timedout",
      errorMessage: expect.stringContaining("timed out after 1.50 seconds"),
    });
    expect(reply.logTail).toContain("Status: timeout");
    expect(impatient.stats().sandboxes.sandboxes).toBe(0);
  });
});
