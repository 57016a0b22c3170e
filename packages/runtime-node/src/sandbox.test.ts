import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  RUNTIME_NODE_VERSION,
  RuntimeApiPaths,
  bootstrapDir,
  bootstrapEntry,
} from "@gust/runtime-node";
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

const CANARY = "GUST_TEST_PARENT_CANARY";
beforeAll(() => {
  process.env[CANARY] = "the worker's own secret";
});
afterAll(() => {
  delete process.env[CANARY];
});

describe("package exports", () => {
  it("points at the built bootstrap", () => {
    expect(join(bootstrapDir, bootstrapEntry)).toMatch(/dist[/\\]bootstrap[/\\]bootstrap\.mjs$/);
    expect(RUNTIME_NODE_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(RuntimeApiPaths.assignment).toBe("/2018-06-01/runtime/gust/assignment");
  });
});

describe("context and logs", () => {
  it("gives the handler Lambda's context", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = async (event, context) => ({
          ...context,
          remaining: context.getRemainingTimeInMillis(),
          traceEnv: process.env._X_AMZN_TRACE_ID,
        });`,
      },
    });
    const deadlineMs = Date.now() + 60_000;
    const { requestId, result } = box.api.invoke(
      {},
      {
        deadlineMs,
        functionArn: "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
        traceId: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        clientContext: JSON.stringify({ custom: { tenant: "t1" }, env: { locale: "en" } }),
        cognitoIdentity: JSON.stringify({
          cognitoIdentityId: "id-1",
          cognitoIdentityPoolId: "pool-1",
        }),
      },
    );
    const context = (await result).json as Record<string, unknown>;
    expect(context).toMatchObject({
      functionName: "fn",
      functionVersion: "$LATEST",
      invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
      memoryLimitInMB: "128",
      awsRequestId: requestId,
      logGroupName: "/aws/lambda/fn",
      callbackWaitsForEmptyEventLoop: true,
      clientContext: { custom: { tenant: "t1" }, env: { locale: "en" } },
      identity: { cognitoIdentityId: "id-1", cognitoIdentityPoolId: "pool-1" },
      traceEnv: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    });
    expect(context["remaining"]).toBeGreaterThan(0);
    expect(context["remaining"]).toBeLessThanOrEqual(60_000);
  });

  it("writes console output in Lambda's format on stdout", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `console.log("loading");
          exports.handler = async () => {
            console.log("hello %s", "world", { n: 1 });
            console.info("info line");
            console.warn("careful");
            console.error(new Error("shown with its stack"));
            console.debug("details");
            return null;
          };`,
      },
    });
    const { requestId, result } = box.api.invoke({});
    await result;
    const time = String.raw`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z`;
    const out = box.stdout();
    expect(out).toMatch(new RegExp(`^${time}\\tundefined\\tINFO\\tloading$`, "m"));
    expect(out).toMatch(
      new RegExp(`^${time}\\t${requestId}\\tINFO\\thello world \\{ n: 1 \\}$`, "m"),
    );
    expect(out).toMatch(new RegExp(`^${time}\\t${requestId}\\tINFO\\tinfo line$`, "m"));
    expect(out).toMatch(new RegExp(`^${time}\\t${requestId}\\tWARN\\tcareful$`, "m"));
    expect(out).toMatch(
      new RegExp(`^${time}\\t${requestId}\\tERROR\\tError: shown with its stack$`, "m"),
    );
    expect(out).toMatch(new RegExp(`^${time}\\t${requestId}\\tDEBUG\\tdetails$`, "m"));
  });
});

describe("init errors", () => {
  it.each([
    [
      "a missing module",
      "missing.handler",
      { "index.js": "exports.handler = () => 1;" },
      "Runtime.ImportModuleError",
      /missing/,
    ],
    [
      "a missing dependency",
      "index.handler",
      { "index.js": "require('not-installed'); exports.handler = () => 1;" },
      "Runtime.ImportModuleError",
      /not-installed/,
    ],
    [
      "a missing export",
      "index.nope",
      { "index.js": "exports.handler = () => 1;" },
      "Runtime.HandlerNotFound",
      /index\.nope is undefined or not exported/,
    ],
    [
      "an export that is not a function",
      "index.value",
      { "index.js": "exports.value = 42;" },
      "Runtime.HandlerNotFound",
      /index\.value/,
    ],
    [
      "a syntax error",
      "index.handler",
      { "index.js": "exports.handler = (;" },
      "Runtime.UserCodeSyntaxError",
      /SyntaxError/,
    ],
    [
      "a malformed handler name",
      "index",
      { "index.js": "exports.handler = () => 1;" },
      "Runtime.MalformedHandlerName",
      /index/,
    ],
    [
      "a handler path leaving the task root",
      "../outside/x.handler",
      {},
      "Runtime.MalformedHandlerName",
      /\.\.\//,
    ],
    [
      "an error thrown while loading",
      "index.handler",
      { "index.js": "throw new RangeError('config missing');" },
      "RangeError",
      /config missing/,
    ],
  ])("posts %s to /init/error and exits 1", async (_label, handler, files, errorType, message) => {
    const box = await start({ handler, files });
    const posted = await box.api.initError();
    const body = posted.json as { errorType: string; errorMessage: string; trace: string[] };
    expect(body.errorType).toBe(errorType);
    expect(body.errorMessage).toMatch(message);
    expect(Array.isArray(body.trace)).toBe(true);
    expect(posted.headers["lambda-runtime-function-error-type"]).toBe(errorType);
    expect(await box.exited).toBe(1);
    expect(box.api.requests).not.toContain("GET /2018-06-01/runtime/invocation/next");
  });
});

describe("reporting results", () => {
  const files = {
    "index.js": `exports.handler = async (event) => {
      if (event.fail) throw new Error("asked to fail");
      return { n: event.n };
    };`,
  };
  const RESULT_THEN_NEXT =
    /^POST \/2018-06-01\/runtime\/gust\/invocation\/[^/]+\/(response|error)$/;

  it("posts each result and waits for the next event in one exchange where it is offered", async () => {
    const box = await start({ handler: "index.handler", files, resultThenNext: true });
    const first = await box.api.invoke({ n: 1 }).result;
    expect(first.json).toEqual({ n: 1 });
    const failed = await box.api.invoke({ fail: true }).result;
    expect(failed.kind).toBe("error");
    expect(failed.headers["lambda-runtime-function-error-type"]).toBe("Error");
    // With each result, how long the run took in the sandbox: microseconds, a whole number.
    for (const posted of [first, failed]) {
      expect(posted.headers["gust-run-duration-us"]).toMatch(/^\d+$/);
      expect(Number(posted.headers["gust-run-duration-us"])).toBeLessThan(5_000_000);
    }
    expect((await box.api.invoke({ n: 3 }).result).json).toEqual({ n: 3 });
    const requests = box.api.requests;
    // One poll to start with; after that every result brings the next event.
    expect(requests.filter((r) => r === "GET /2018-06-01/runtime/invocation/next")).toHaveLength(1);
    expect(requests.filter((r) => RESULT_THEN_NEXT.test(r))).toHaveLength(3);
  });

  it("falls back to the Runtime API's own routes where the exchange is not offered", async () => {
    const box = await start({ handler: "index.handler", files });
    for (const n of [1, 2, 3]) {
      expect((await box.api.invoke({ n }).result).json).toEqual({ n });
    }
    const requests = box.api.requests;
    // Tried once, answered 404 (nothing posted), then never again.
    expect(requests.filter((r) => RESULT_THEN_NEXT.test(r))).toHaveLength(1);
    expect(
      requests.filter((r) => /^POST \/2018-06-01\/runtime\/invocation\/[^/]+\/response$/.test(r)),
    ).toHaveLength(3);
  });
});

describe("pre-initialized sandboxes", () => {
  it("waits for an assignment, takes its environment and handler, then serves", async () => {
    const box = await start({
      files: {
        "index.js": `console.log("module loaded");
          exports.handler = async (event, context) => ({
            greeting: process.env.GREETING, handler: process.env._HANDLER, functionName: context.functionName,
          });`,
      },
    });
    await box.api.assignmentRequested();
    expect(box.stdout()).not.toContain("module loaded");
    expect(box.api.requests).toEqual(["GET /2018-06-01/runtime/gust/assignment"]);

    box.api.assign({
      handler: "index.handler",
      env: { AWS_LAMBDA_FUNCTION_NAME: "assigned", GREETING: "hi" },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.json).toEqual({
      greeting: "hi",
      handler: "index.handler",
      functionName: "assigned",
    });
    expect(box.stdout()).toContain("module loaded");
  });

  it("reports an init error for a bad assignment", async () => {
    const box = await start({ files: {} });
    await box.api.assignmentRequested();
    box.api.assign({ handler: "absent.handler", env: {} });
    expect(((await box.api.initError()).json as { errorType: string }).errorType).toBe(
      "Runtime.ImportModuleError",
    );
    expect(await box.exited).toBe(1);
  });
});

describe("isolation", () => {
  it("lets the handler read its task root and write its tmp dir, but nothing else", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `const fs = require("node:fs");
          exports.handler = async (event) => {
            const attempt = (f) => { try { return f(); } catch (e) { return e.code; } };
            return {
              own: attempt(() => fs.readFileSync(__dirname + "/data.txt", "utf8")),
              outside: attempt(() => fs.readFileSync(event.outside, "utf8")),
              tmpWrite: attempt(() => { fs.writeFileSync(process.env.TMPDIR + "/scratch", "x"); return "ok"; }),
              taskWrite: attempt(() => { fs.writeFileSync(__dirname + "/overwrite", "x"); return "ok"; }),
            };
          };`,
        "data.txt": "own data",
      },
    });
    const posted = await box.api.invoke({ outside: join(box.outsideDir, "secret.txt") }).result;
    expect(posted.json).toEqual({
      own: "own data",
      outside: "ERR_ACCESS_DENIED",
      tmpWrite: "ok",
      taskWrite: "ERR_ACCESS_DENIED",
    });
  });

  it("sees only the environment the worker passes", async () => {
    expect(process.env[CANARY]).toBeDefined();
    const box = await start({
      handler: "index.handler",
      env: { MY_SETTING: "from function config" },
      files: { "index.js": "exports.handler = async () => process.env;" },
    });
    const env = (await box.api.invoke({}).result).json as Record<string, string>;
    expect(env[CANARY]).toBeUndefined();
    expect(env["MY_SETTING"]).toBe("from function config");
    const passed = [
      "AWS_LAMBDA_RUNTIME_API",
      "LAMBDA_TASK_ROOT",
      "AWS_LAMBDA_FUNCTION_NAME",
      "AWS_LAMBDA_FUNCTION_VERSION",
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
      "TMPDIR",
      "_HANDLER",
      "MY_SETTING",
    ];
    for (const key of Object.keys(env)) expect(passed).toContain(key);
  });
});

describe("crashes", () => {
  it("fails the invocation on an uncaught exception and exits non-zero", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = async () => {
          setImmediate(() => { throw new RangeError("thrown from a timer"); });
          await new Promise((resolve) => setTimeout(resolve, 20000));
        };`,
      },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.kind).toBe("error");
    expect(posted.json).toMatchObject({
      errorType: "RangeError",
      errorMessage: "thrown from a timer",
    });
    expect(posted.headers["lambda-runtime-function-error-type"]).toBe("RangeError");
    const code = await box.exited;
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
  });

  it("fails the invocation on an unhandled rejection and exits non-zero", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = async () => {
          Promise.reject(new Error("nobody catches this"));
          await new Promise((resolve) => setTimeout(resolve, 20000));
        };`,
      },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.json).toMatchObject({
      errorType: "Runtime.UnhandledPromiseRejection",
      errorMessage: "Error: nobody catches this",
    });
    expect(posted.headers["lambda-runtime-function-error-type"]).toBe(
      "Runtime.UnhandledPromiseRejection",
    );
    expect(await box.exited).not.toBe(0);
  });

  it("exits non-zero when the Runtime API goes away", async () => {
    const box = await start({
      handler: "index.handler",
      files: { "index.js": "exports.handler = async () => 1;" },
    });
    expect((await box.api.invoke({}).result).json).toBe(1);
    await box.api.close();
    expect(await box.exited).toBe(1);
    expect(box.stdout()).toMatch(/\tFATAL\truntime failure/);
  });

  it("fails an invocation whose event is not JSON and keeps serving", async () => {
    const box = await start({
      handler: "index.handler",
      files: { "index.js": "exports.handler = async (event) => event;" },
    });
    const bad = await box.api.invoke(undefined, { rawBody: "{not json" }).result;
    expect(bad.json).toMatchObject({ errorType: "Runtime.UnmarshalError" });
    expect((await box.api.invoke({ still: "alive" }).result).json).toEqual({ still: "alive" });
  });
});
