import { afterEach, describe, expect, it } from "vitest";
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

describe("handler styles", () => {
  it("runs a CommonJS async handler and answers on /response", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": "exports.handler = async (event) => ({ echo: event, kind: typeof require });",
      },
    });
    const { result } = box.api.invoke({ hello: "world" });
    const posted = await result;
    expect(posted.kind).toBe("response");
    expect(posted.json).toEqual({ echo: { hello: "world" }, kind: "function" });
  });

  it("falls back to module.exports when Node cannot see a CommonJS export statically", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js":
          "const api = {}; api['hand' + 'ler'] = async () => 'dynamic'; module.exports = api;",
      },
    });
    expect((await box.api.invoke({}).result).json).toBe("dynamic");
  });

  it("runs an .mjs handler", async () => {
    const box = await start({
      handler: "app.handler",
      files: {
        "app.mjs": "export const handler = async () => ({ esm: typeof require === 'undefined' });",
      },
    });
    expect((await box.api.invoke({}).result).json).toEqual({ esm: true });
  });

  it('runs a .js handler in a "type": "module" package with top-level await', async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "package.json": JSON.stringify({ type: "module" }),
        "index.js":
          "const config = await Promise.resolve({ ready: true });\nexport async function handler() { return config; }",
      },
    });
    expect((await box.api.invoke({}).result).json).toEqual({ ready: true });
  });

  it("runs a .cjs handler", async () => {
    const box = await start({
      handler: "legacy.handler",
      files: { "legacy.cjs": "module.exports.handler = async () => 'cjs';" },
    });
    expect((await box.api.invoke({}).result).json).toBe("cjs");
  });

  it("resolves a nested handler name in a subdirectory", async () => {
    const box = await start({
      handler: "src/lib/handlers.api.v1.run",
      files: {
        "src/lib/handlers.js": "exports.api = { v1: { run: async (e) => `nested ${e.n}` } };",
      },
    });
    expect((await box.api.invoke({ n: 7 }).result).json).toBe("nested 7");
  });

  it("sends the callback's result once the event loop is empty", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = (event, context, callback) => {
          callback(null, { via: "callback" });
          setTimeout(() => console.log("timer ran before the response"), 300);
        };`,
      },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.json).toEqual({ via: "callback" });
    expect(box.stdout()).toContain("timer ran before the response");
  });

  it("does not wait for the event loop when callbackWaitsForEmptyEventLoop is false", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = (event, context, callback) => {
          context.callbackWaitsForEmptyEventLoop = false;
          setTimeout(() => console.log("late timer"), 20000);
          callback(null, "early");
        };`,
      },
    });
    expect((await box.api.invoke({}).result).json).toBe("early");
    expect(box.stdout()).not.toContain("late timer");
  });

  it("supports context.succeed and context.fail", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = (event, context) => {
          if (event.ok) context.succeed({ legacy: true }); else context.fail(new Error("legacy failure"));
        };`,
      },
    });
    expect((await box.api.invoke({ ok: true }).result).json).toEqual({ legacy: true });
    const failed = await box.api.invoke({ ok: false }).result;
    expect(failed.kind).toBe("error");
    expect(failed.json).toMatchObject({ errorType: "Error", errorMessage: "legacy failure" });
  });

  it("answers null for undefined and for a handler that never completes", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `exports.handler = (event, context, callback) => {
          if (event.mode === "async") return Promise.resolve(undefined);
          setTimeout(() => {}, 50); // returns nothing and never calls back
        };`,
      },
    });
    const asyncUndefined = await box.api.invoke({ mode: "async" }).result;
    expect(asyncUndefined.body).toBe("null");
    const silent = await box.api.invoke({ mode: "silent" }).result;
    expect(silent.kind).toBe("response");
    expect(silent.body).toBe("null");
  });

  it("keeps module state between invocations in the same process (warm)", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js":
          "let count = 0; exports.handler = async () => ({ count: ++count, pid: process.pid });",
      },
    });
    const first = (await box.api.invoke({}).result).json as { count: number; pid: number };
    const second = (await box.api.invoke({}).result).json as { count: number; pid: number };
    expect(first.count).toBe(1);
    expect(second).toEqual({ count: 2, pid: first.pid });
    expect(first.pid).toBe(box.child.pid);
  });
});

describe("errors", () => {
  it("reports a thrown error on /error with Lambda's shape and keeps serving", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": `class ValidationError extends Error { constructor(m) { super(m); this.name = "ValidationError"; } }
          exports.handler = async (event) => {
            if (event.kind === "error") throw new ValidationError("amount must be positive");
            if (event.kind === "string") throw "plain string";
            return "fine";
          };`,
      },
    });
    const posted = await box.api.invoke({ kind: "error" }).result;
    expect(posted.kind).toBe("error");
    expect(posted.headers["lambda-runtime-function-error-type"]).toBe("ValidationError");
    const body = posted.json as { errorType: string; errorMessage: string; trace: string[] };
    expect(body.errorType).toBe("ValidationError");
    expect(body.errorMessage).toBe("amount must be positive");
    expect(body.trace[0]).toBe("ValidationError: amount must be positive");
    expect(body.trace.some((line) => line.includes("index.js"))).toBe(true);

    const thrownString = await box.api.invoke({ kind: "string" }).result;
    expect(thrownString.json).toEqual({
      errorType: "string",
      errorMessage: "plain string",
      trace: [],
    });

    expect((await box.api.invoke({ kind: "none" }).result).json).toBe("fine");
    expect(box.stdout()).toMatch(/\tERROR\tInvoke Error \t\{"errorType":"ValidationError"/);
  });

  it("reports a callback error", async () => {
    const box = await start({
      handler: "index.handler",
      files: { "index.js": "exports.handler = (e, c, cb) => cb(new TypeError('bad type'));" },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.json).toMatchObject({ errorType: "TypeError", errorMessage: "bad type" });
  });

  it("reports a result that cannot be serialized", async () => {
    const box = await start({
      handler: "index.handler",
      files: {
        "index.js": "exports.handler = async () => { const a = {}; a.self = a; return a; };",
      },
    });
    const posted = await box.api.invoke({}).result;
    expect(posted.kind).toBe("error");
    expect(posted.json).toMatchObject({ errorType: "Runtime.MarshalError" });
  });
});
