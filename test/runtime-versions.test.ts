/**
 * Runtime versions and Lambda's runtime management controls, driven by the
 * real @aws-sdk/client-lambda and the `gust runtime` command, in both modes:
 * `gust dev` (in-memory) and a fleet on a real nats-server.
 *
 * The two built-in nodejs20.x versions differ where real upgrades break
 * code: 2.0.0 no longer runs callback-style handlers.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import {
  CreateFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetRuntimeManagementConfigCommand,
  InvokeCommand,
  PutRuntimeManagementConfigCommand,
  UpdateFunctionConfigurationCommand,
  type PutRuntimeManagementConfigCommandInput,
  type LambdaClient,
} from "@aws-sdk/client-lambda";
import { zipFiles } from "@gust/bundle";
import { GUST_MAIN } from "@gust/cli";
import type { RuntimeView } from "@gust/frontend";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODES, startGust, type TestGust } from "./support/gust.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { testTenant } from "./support/tenants.js";
import { builtInArn } from "./support/runtime-versions.js";

const run = promisify(execFile);
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

const V1 = builtInArn("nodejs20.x", "1.0.0");
const V2 = builtInArn("nodejs20.x", "2.0.0");
const PROVIDED = builtInArn("provided.al2023", "1.0.0");

const CALLBACK_HANDLER = `exports.handler = (event, context, callback) => {
  console.log("callback style, on purpose");
  callback(null, { style: "callback", succeed: typeof context.succeed });
};`;
const ASYNC_HANDLER = `exports.handler = async (event, context) => ({
  stackTraceLimit: Error.stackTraceLimit,
  succeed: typeof context.succeed,
});`;

const initStart = (label: string, arn: string) =>
  `INIT_START Runtime Version: ${label}\tRuntime Version ARN: ${arn}`;

describe.each(MODES)("runtime versions in gust %s", (mode) => {
  const tenant = testTenant("runtimes");
  const adminToken = randomBytes(18).toString("base64url");
  let gust: TestGust;
  let lambda: LambdaClient;

  beforeAll(async () => {
    gust = await startGust(mode, { tenants: [tenant], frontend: { adminToken } });
    lambda = lambdaFor(gust.url, tenant);
  });

  afterAll(async () => {
    lambda?.destroy();
    await gust?.close();
  });

  const create = async (name: string, source: string) =>
    lambda.send(
      new CreateFunctionCommand({
        FunctionName: name,
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Timeout: 10,
        Code: { ZipFile: await zipFiles([{ path: "index.js", data: source }]) },
      }),
    );

  const invoke = async (name: string) => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: name, Payload: json({}), LogType: "Tail" }),
    );
    return {
      functionError: result.FunctionError,
      payload: decodePayload(result.Payload) as Record<string, unknown>,
      log: Buffer.from(result.LogResult ?? "", "base64").toString("utf8"),
    };
  };

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(new URL(`/gust/admin/runtimes${path}`, gust.url), {
      ...init,
      headers: { authorization: `Bearer ${adminToken}`, ...init.headers },
    });

  const gustRuntime = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [GUST_MAIN, "runtime", ...args], {
      env: { ...process.env, GUST_ADMIN_TOKEN: adminToken, GUST_ENDPOINT: gust.url },
      timeout: 30_000,
    });
    return stdout;
  };

  it("has the built-in versions from the start, behind the admin token", async () => {
    const listed = (await (await admin("")).json()) as { runtimes: RuntimeView[] };
    const node = listed.runtimes.find((runtime) => runtime.runtime === "nodejs20.x");
    expect(node?.defaultVersion).toBe("1.0.0");
    expect(node?.versions.map((version) => [version.name, version.arn, version.isDefault])).toEqual(
      [
        ["nodejs20.x:1.0.0", V1, true],
        ["nodejs20.x:2.0.0", V2, false],
      ],
    );
    const anonymous = await fetch(new URL("/gust/admin/runtimes", gust.url));
    expect(anonymous.status).toBe(403);
    const wrong = await fetch(new URL("/gust/admin/runtimes", gust.url), {
      headers: { authorization: "Bearer not-the-admin-token" },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.headers.get("x-amzn-errortype")).toBe("AccessDeniedException");
  });

  it("runs a new function Auto on the default version, and says which", async () => {
    const created = await create("callback", CALLBACK_HANDLER);
    expect(created.RuntimeVersionConfig?.RuntimeVersionArn).toBe(V1);
    const config = await lambda.send(
      new GetRuntimeManagementConfigCommand({ FunctionName: "callback" }),
    );
    expect(config.UpdateRuntimeOn).toBe("Auto");
    expect(config.FunctionArn).toBe(created.FunctionArn);
    expect(config.RuntimeVersionArn).toBeUndefined();

    const { functionError, payload, log } = await invoke("callback");
    expect(functionError).toBeUndefined();
    expect(payload).toEqual({ style: "callback", succeed: "function" });
    expect(log.split("\n")[0]).toBe(initStart("nodejs:20.v1.0.0", V1));
    expect(log).toContain("callback style, on purpose");
  });

  it("pins a callback handler to 2.0.0 with Manual, where it fails as Lambda's nodejs24.x does", async () => {
    const put = await lambda.send(
      new PutRuntimeManagementConfigCommand({
        FunctionName: "callback",
        UpdateRuntimeOn: "Manual",
        RuntimeVersionArn: V2,
      }),
    );
    expect(put).toMatchObject({ UpdateRuntimeOn: "Manual", RuntimeVersionArn: V2 });
    const got = await lambda.send(
      new GetRuntimeManagementConfigCommand({ FunctionName: "callback" }),
    );
    expect(got).toMatchObject({ UpdateRuntimeOn: "Manual", RuntimeVersionArn: V2 });
    const fn = await lambda.send(new GetFunctionCommand({ FunctionName: "callback" }));
    expect(fn.Configuration?.RuntimeVersionConfig?.RuntimeVersionArn).toBe(V2);

    const onV2 = await invoke("callback");
    expect(onV2.functionError).toBe("Unhandled");
    expect(onV2.payload["errorType"]).toBe("Runtime.CallbackHandlerDeprecated");
    expect(onV2.log.split("\n")[0]).toBe(initStart("nodejs:20.v2.0.0", V2));

    // Back to Auto: the default, 1.0.0, runs it again.
    await lambda.send(
      new PutRuntimeManagementConfigCommand({ FunctionName: "callback", UpdateRuntimeOn: "Auto" }),
    );
    const again = await invoke("callback");
    expect(again.functionError).toBeUndefined();
    expect(again.payload).toEqual({ style: "callback", succeed: "function" });
  });

  it("refuses what Lambda refuses", async () => {
    const refused = async (input: Record<string, unknown>, errorName: string) => {
      const error = await lambda
        .send(
          new PutRuntimeManagementConfigCommand({
            FunctionName: "callback",
            ...input,
          } as PutRuntimeManagementConfigCommandInput),
        )
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect((error as Error | undefined)?.name).toBe(errorName);
    };
    await refused({ UpdateRuntimeOn: "Manual" }, "InvalidParameterValueException");
    await refused(
      {
        UpdateRuntimeOn: "Manual",
        RuntimeVersionArn: `arn:aws:lambda:us-east-1::runtime:${"ab".repeat(32)}`,
      },
      "InvalidParameterValueException",
    );
    await refused(
      { UpdateRuntimeOn: "Manual", RuntimeVersionArn: PROVIDED },
      "InvalidParameterValueException",
    );
    await refused(
      { UpdateRuntimeOn: "Auto", RuntimeVersionArn: V2 },
      "InvalidParameterValueException",
    );
    await refused({ UpdateRuntimeOn: "Sometimes" }, "ValidationException");
    await refused(
      { FunctionName: "missing", UpdateRuntimeOn: "Auto" },
      "ResourceNotFoundException",
    );
    const config = await lambda.send(
      new GetRuntimeManagementConfigCommand({ FunctionName: "callback" }),
    );
    expect(config.UpdateRuntimeOn).toBe("Auto");
  });

  it("moves Auto functions with the default, FunctionUpdate ones at their next update", async () => {
    await create("follows", ASYNC_HANDLER);
    await create("steady", CALLBACK_HANDLER);
    await lambda.send(
      new PutRuntimeManagementConfigCommand({
        FunctionName: "steady",
        UpdateRuntimeOn: "FunctionUpdate",
      }),
    );
    const steadyConfig = await lambda.send(
      new GetRuntimeManagementConfigCommand({ FunctionName: "steady" }),
    );
    expect(steadyConfig.UpdateRuntimeOn).toBe("FunctionUpdate");
    expect(steadyConfig.RuntimeVersionArn).toBeUndefined();

    const added = await gustRuntime(
      "add",
      "nodejs20.x",
      "2.1.0",
      "--bootstrap",
      "2.0.0",
      "--node-flag=--stack-trace-limit=3",
      "--description",
      "2.0.0 with short stacks",
    );
    const newArn = /nodejs20\.x:2\.1\.0 added: (\S+)/.exec(added)?.[1];
    expect(newArn).toMatch(/^arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}$/);
    try {
      expect(await gustRuntime("default", "nodejs20.x", "2.1.0")).toContain(
        "nodejs20.x now defaults to 2.1.0",
      );
      const listed = await gustRuntime("list", "nodejs20.x");
      expect(listed).toMatch(
        /nodejs20\.x\s+2\.1\.0\s+\*\s+bootstrap 2\.0\.0 --stack-trace-limit=3/,
      );

      // Auto follows the new default at once.
      const follows = await invoke("follows");
      expect(follows.payload).toEqual({ stackTraceLimit: 3, succeed: "undefined" });
      expect(follows.log.split("\n")[0]).toBe(initStart("nodejs:20.v2.1.0", newArn ?? ""));
      const followsConfig = await lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: "follows" }),
      );
      expect(followsConfig.RuntimeVersionConfig?.RuntimeVersionArn).toBe(newArn);

      // FunctionUpdate stays where its last update left it...
      const steady = await invoke("steady");
      expect(steady.functionError).toBeUndefined();
      expect(steady.log.split("\n")[0]).toBe(initStart("nodejs:20.v1.0.0", V1));
      // ...until its next update takes the default of the moment.
      const updated = await lambda.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: "steady", Timeout: 12 }),
      );
      expect(updated.RuntimeVersionConfig?.RuntimeVersionArn).toBe(newArn);
      const moved = await invoke("steady");
      expect(moved.functionError).toBe("Unhandled");
      expect(moved.payload["errorType"]).toBe("Runtime.CallbackHandlerDeprecated");
    } finally {
      await gustRuntime("default", "nodejs20.x", "1.0.0");
    }
    const restored = await invoke("follows");
    expect(restored.payload).toEqual({ stackTraceLimit: 10, succeed: "function" });
  });

  it("refuses versions operators may not add", async () => {
    const refused = async (body: unknown) => {
      const response = await admin("/nodejs20.x/versions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: response.status, type: response.headers.get("x-amzn-errortype") };
    };
    expect(await refused({ version: "9.0.0", recipe: { bootstrap: "7.7.7" } })).toEqual({
      status: 400,
      type: "InvalidParameterValueException",
    });
    expect(
      await refused({
        version: "9.0.0",
        recipe: { bootstrap: "1.0.0", nodeFlags: ["--allow-fs-read=/"] },
      }),
    ).toEqual({ status: 400, type: "InvalidParameterValueException" });
    // Versions are immutable: the same name with another recipe is a conflict.
    expect(await refused({ version: "2.0.0", recipe: { bootstrap: "1.0.0" } })).toEqual({
      status: 409,
      type: "ResourceConflictException",
    });
    await expect(gustRuntime("default", "nodejs20.x", "8.8.8")).rejects.toThrow(/404/);
  });
});
