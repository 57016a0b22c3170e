/**
 * The worker running one function on different runtime versions, in real
 * sandboxes: the recipe decides the bootstrap and Node's flags, warm
 * sandboxes are kept apart by version, each version gets its own
 * pre-initialized pool once invocations ask for it, and the log and the
 * reply name the version that ran.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "@gust/bus";
import {
  BUILT_IN_RUNTIME_VERSIONS,
  builtInRuntimeVersionRef,
  NODE_BOOTSTRAP_VERSIONS,
  runtimeVersionArn,
  runtimeVersionHash,
  type InvokeTarget,
  type RuntimeVersionRef,
} from "@gust/protocol";
import { nodeBootstraps } from "@gust/runtime-node";
import { createLogger } from "@gust/telemetry";
import { startWorker } from "./worker.js";
import type { Worker } from "./worker.js";
import { MapCodeSource, invoke, nodeFunction, payloadOf, uniqueUidBase } from "./test-support.js";

const logger = createLogger("worker-test", { level: "silent" });
const bus = new MemoryBus({ logger });
const code = new MapCodeSource();
let worker: Worker;

const builtIn = (version: string): RuntimeVersionRef => {
  const found = BUILT_IN_RUNTIME_VERSIONS.find(
    (candidate) => candidate.runtime === "nodejs20.x" && candidate.version === version,
  );
  if (!found) throw new Error(`no built-in nodejs20.x:${version}`);
  return builtInRuntimeVersionRef("us-east-1", found);
};
const V1 = builtIn("1.0.0");
const V2 = builtIn("2.0.0");
/** An operator's version: bootstrap 2.0.0 with a Node flag the handler can observe. */
const recipe = { kind: "node", bootstrap: "2.0.0", nodeFlags: ["--stack-trace-limit=3"] } as const;
const V2_FLAGS: RuntimeVersionRef = {
  runtime: "nodejs20.x",
  version: "2.0.0-short-stacks",
  arn: runtimeVersionArn(
    "us-east-1",
    runtimeVersionHash("nodejs20.x", "2.0.0-short-stacks", {
      ...recipe,
      nodeFlags: [...recipe.nodeFlags],
    }),
  ),
  recipe: { ...recipe, nodeFlags: [...recipe.nodeFlags] },
};

const CALLBACK_SOURCE = `export const handler = (event, context, callback) => {
  console.log("callback handler ran");
  callback(null, { limit: Error.stackTraceLimit, hasSucceed: typeof context.succeed });
};`;
const ASYNC_SOURCE = `export const handler = async (event, context) => ({
  limit: Error.stackTraceLimit,
  hasSucceed: typeof context.succeed,
});`;

beforeAll(async () => {
  worker = await startWorker(
    { preinitializedPoolSize: 1, sandboxUidBase: uniqueUidBase(), trustTenants: true },
    { bus, code, logger },
  );
});

afterAll(async () => {
  await worker?.close();
  await bus.close();
});

function on(target: InvokeTarget, version: RuntimeVersionRef, isDefault = false): InvokeTarget {
  return { ...target, runtimeVersion: version, runtimeVersionIsDefault: isDefault };
}

function resultOf(reply: Awaited<ReturnType<typeof invoke>>) {
  if (reply.type !== "invoke.result")
    throw new Error(`rejected: ${reply.error.name}: ${reply.error.message}`);
  return reply;
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(check()).toBe(true);
}

describe("a worker with runtime versions", () => {
  it("ships every bootstrap a recipe may name", () => {
    expect(nodeBootstraps.map((bootstrap) => bootstrap.version)).toEqual([
      ...NODE_BOOTSTRAP_VERSIONS,
    ]);
  });

  it("runs a target without a version on the built-in default, and says so", async () => {
    const fn = await nodeFunction(code, CALLBACK_SOURCE);
    const reply = resultOf(await invoke(bus, worker.id, fn.target, { tailLog: true }));
    expect(reply.outcome).toBe("success");
    expect(reply.runtimeVersionArn).toBe(V1.arn);
    expect(payloadOf(reply)).toMatchObject({ hasSucceed: "function" });
    const firstLine = reply.logTail?.split("\n")[0];
    expect(firstLine).toBe(
      `INIT_START Runtime Version: nodejs:20.v1.0.0\tRuntime Version ARN: ${V1.arn}`,
    );
  });

  it("runs a callback handler on 1.0.0 and fails it at init on 2.0.0", async () => {
    const fn = await nodeFunction(code, CALLBACK_SOURCE);
    const onV1 = resultOf(await invoke(bus, worker.id, on(fn.target, V1, true), { tailLog: true }));
    expect(onV1.outcome).toBe("success");
    expect(onV1.logTail).toContain("callback handler ran");

    const onV2 = resultOf(await invoke(bus, worker.id, on(fn.target, V2), { tailLog: true }));
    expect(onV2.outcome).toBe("init-error");
    expect(onV2.runtimeVersionArn).toBe(V2.arn);
    expect(payloadOf(onV2)).toMatchObject({ errorType: "Runtime.CallbackHandlerDeprecated" });
    expect(onV2.logTail?.split("\n")[0]).toBe(
      `INIT_START Runtime Version: nodejs:20.v2.0.0\tRuntime Version ARN: ${V2.arn}`,
    );
    // 1.0.0's warm sandbox was not touched by 2.0.0's failure.
    const again = resultOf(await invoke(bus, worker.id, on(fn.target, V1, true)));
    expect(again).toMatchObject({ outcome: "success", startKind: "warm" });
  });

  it("keeps warm sandboxes apart by version and applies the recipe's Node flags", async () => {
    const fn = await nodeFunction(code, ASYNC_SOURCE);
    const first = resultOf(await invoke(bus, worker.id, on(fn.target, V2_FLAGS)));
    expect(payloadOf(first)).toEqual({ limit: 3, hasSucceed: "undefined" });
    expect(first.runtimeVersionArn).toBe(V2_FLAGS.arn);
    const onDefault = resultOf(await invoke(bus, worker.id, on(fn.target, V1, true)));
    expect(onDefault.startKind).not.toBe("warm");
    expect(payloadOf(onDefault)).toEqual({ limit: 10, hasSucceed: "function" });
    const second = resultOf(await invoke(bus, worker.id, on(fn.target, V2_FLAGS)));
    expect(second.startKind).toBe("warm");
    expect(payloadOf(second)).toEqual({ limit: 3, hasSucceed: "undefined" });
  });

  it("lets a handler start a process only on a version whose recipe grants it", async () => {
    const granting = {
      kind: "node",
      bootstrap: "1.0.0",
      nodeFlags: [],
      permissions: { childProcess: true },
    } as const;
    const withChildren: RuntimeVersionRef = {
      runtime: "nodejs20.x",
      version: "1.0.0-children",
      arn: runtimeVersionArn(
        "us-east-1",
        runtimeVersionHash("nodejs20.x", "1.0.0-children", { ...granting, nodeFlags: [] }),
      ),
      recipe: { ...granting, nodeFlags: [], permissions: { childProcess: true } },
    };
    const fn = await nodeFunction(
      code,
      `import { execFileSync } from "node:child_process";
export const handler = async () => {
  try {
    return { ran: execFileSync("/bin/echo", ["hello"]).toString().trim() };
  } catch (error) {
    return { refused: error.code };
  }
};`,
    );
    const granted = resultOf(await invoke(bus, worker.id, on(fn.target, withChildren)));
    expect(payloadOf(granted)).toEqual({ ran: "hello" });
    const refused = resultOf(await invoke(bus, worker.id, on(fn.target, V1, true)));
    expect(payloadOf(refused)).toEqual({ refused: "ERR_ACCESS_DENIED" });
    // Granting nothing hashes as before permissions existed: built-in ARNs do not move.
    expect(
      runtimeVersionHash("nodejs20.x", "x", { kind: "node", bootstrap: "1.0.0", nodeFlags: [] }),
    ).toBe(
      runtimeVersionHash("nodejs20.x", "x", {
        kind: "node",
        bootstrap: "1.0.0",
        nodeFlags: [],
        permissions: {},
      }),
    );
    expect(withChildren.arn).not.toBe(
      runtimeVersionArn(
        "us-east-1",
        runtimeVersionHash("nodejs20.x", "1.0.0-children", {
          kind: "node",
          bootstrap: "1.0.0",
          nodeFlags: [],
        }),
      ),
    );
  });

  it("pre-initializes sandboxes of a version once invocations ask for it", async () => {
    // Asked for by the previous tests: each version now has its pool of one.
    await until(() => {
      const versions = worker.stats().sandboxes.runtimeVersions;
      return [V1, V2, V2_FLAGS].every((version) => versions[version.arn]?.preinitialized === 1);
    });
    const fn = await nodeFunction(code, ASYNC_SOURCE);
    const reply = resultOf(await invoke(bus, worker.id, on(fn.target, V2_FLAGS)));
    expect(reply.startKind).toBe("preinitialized");
    expect(payloadOf(reply)).toEqual({ limit: 3, hasSucceed: "undefined" });
  });

  it("refuses a runtime version that does not check out", async () => {
    const fn = await nodeFunction(code, ASYNC_SOURCE);
    const bad: unknown[] = [
      { ...V1, recipe: { kind: "node", bootstrap: "1.0.0", nodeFlags: ["--allow-fs-read=/"] } },
      { ...V1, recipe: { kind: "node", bootstrap: "0.0.1", nodeFlags: [] } },
      { ...V1, runtime: "provided.al2023" },
      { ...V1, arn: "arn:aws:lambda:us-east-1::runtime:short" },
    ];
    for (const runtimeVersion of bad) {
      const reply = await invoke(bus, worker.id, {
        ...fn.target,
        runtimeVersion: runtimeVersion as RuntimeVersionRef,
      });
      expect(reply.type).toBe("invoke.rejected");
      if (reply.type === "invoke.rejected") expect(reply.error.name).toBe("DecodeError");
    }
  });
});
