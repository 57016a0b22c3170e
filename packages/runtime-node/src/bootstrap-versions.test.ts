import { afterEach, describe, expect, it } from "vitest";
import { bootstrapDir, bootstrapEntry, nodeBootstrap, nodeBootstraps } from "@gust/runtime-node";
import { startSandbox } from "./test-sandbox.js";
import type { Sandbox, SandboxOptions } from "./test-sandbox.js";

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

async function start(options: SandboxOptions): Promise<Sandbox> {
  sandbox = await startSandbox(options);
  return sandbox;
}

const CALLBACK_HANDLER = `exports.handler = (event, context, callback) => {
  callback(null, { style: "callback", echo: event });
};`;

const CONTEXT_HANDLER = `exports.handler = async (event, context) => ({
  keys: Object.keys(context),
  remaining: context.getRemainingTimeInMillis() > 0,
});`;

describe("the bootstraps this package ships", () => {
  it("lists 1.0.0 as bootstrap.mjs and 2.0.0 beside it in the same directory", () => {
    expect(nodeBootstraps.map((bootstrap) => bootstrap.version)).toEqual(["1.0.0", "2.0.0"]);
    expect(nodeBootstrap("1.0.0")).toEqual({
      version: "1.0.0",
      dir: bootstrapDir,
      entry: bootstrapEntry,
    });
    expect(nodeBootstrap("2.0.0")?.entry).toBe("bootstrap-2.0.0.mjs");
    expect(nodeBootstrap("9.9.9")).toBeUndefined();
  });
});

describe("bootstrap 1.0.0", () => {
  it("runs callback handlers and offers succeed/fail/done", async () => {
    const box = await start({ handler: "index.handler", files: { "index.js": CALLBACK_HANDLER } });
    const posted = await box.api.invoke({ n: 1 }).result;
    expect(posted.kind).toBe("response");
    expect(posted.json).toEqual({ style: "callback", echo: { n: 1 } });
    expect(posted.headers["user-agent"]).toMatch(/^gust-runtime-node\/1\.0\.0 /);
  });

  it("gives the context its callback members", async () => {
    const box = await start({ handler: "index.handler", files: { "index.js": CONTEXT_HANDLER } });
    const { keys } = (await box.api.invoke({}).result).json as { keys: string[] };
    expect(keys).toEqual(
      expect.arrayContaining(["callbackWaitsForEmptyEventLoop", "succeed", "fail", "done"]),
    );
  });
});

describe("bootstrap 2.0.0", () => {
  it("refuses a handler that declares a callback, at init, with Runtime.CallbackHandlerDeprecated", async () => {
    const box = await start({
      bootstrapVersion: "2.0.0",
      handler: "index.handler",
      files: { "index.js": `console.log("module loaded");\n${CALLBACK_HANDLER}` },
    });
    const initError = await box.api.initError();
    expect(initError.headers["lambda-runtime-function-error-type"]).toBe(
      "Runtime.CallbackHandlerDeprecated",
    );
    expect(initError.json).toMatchObject({
      errorType: "Runtime.CallbackHandlerDeprecated",
      errorMessage: expect.stringContaining("no longer supports callback-based handlers"),
    });
    expect(await box.exited).toBe(1);
    // The module itself ran: the refusal is about the handler's signature.
    expect(box.stdout()).toContain("module loaded");
  });

  it("runs async handlers, with a context that has no callback members", async () => {
    const box = await start({
      bootstrapVersion: "2.0.0",
      handler: "index.handler",
      files: { "index.js": CONTEXT_HANDLER },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.kind).toBe("response");
    expect(posted.headers["user-agent"]).toMatch(/^gust-runtime-node\/2\.0\.0 /);
    const { keys, remaining } = posted.json as { keys: string[]; remaining: boolean };
    expect(remaining).toBe(true);
    expect(keys).toEqual(expect.arrayContaining(["awsRequestId", "functionName", "logStreamName"]));
    for (const removed of ["callbackWaitsForEmptyEventLoop", "succeed", "fail", "done"]) {
      expect(keys).not.toContain(removed);
    }
  });

  it("takes a synchronous handler's return value as its result, and reports thrown errors", async () => {
    const box = await start({
      bootstrapVersion: "2.0.0",
      handler: "index.handler",
      files: {
        "index.mjs": `export const handler = (event) => {
          if (event.fail) throw new TypeError("bad event");
          return { sync: true, n: event.n };
        };`,
      },
    });
    expect((await box.api.invoke({ n: 2 }).result).json).toEqual({ sync: true, n: 2 });
    const failed = await box.api.invoke({ fail: true }).result;
    expect(failed.kind).toBe("error");
    expect(failed.json).toMatchObject({ errorType: "TypeError", errorMessage: "bad event" });
  });

  it("serves a pre-initialized sandbox like 1.0.0 does, refusing a callback handler once assigned", async () => {
    const box = await start({ bootstrapVersion: "2.0.0", files: { "index.js": CALLBACK_HANDLER } });
    await box.api.assignmentRequested();
    box.api.assign({ handler: "index.handler", env: { AWS_LAMBDA_FUNCTION_NAME: "late" } });
    const initError = await box.api.initError();
    expect(initError.json).toMatchObject({ errorType: "Runtime.CallbackHandlerDeprecated" });
  });
});
