/**
 * The platform driven by the real @aws-sdk/client-lambda, in both modes:
 * `gust dev` (in-memory) and a fleet on a real nats-server. Same assertions.
 */
import { createHash } from "node:crypto";
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  DeleteFunctionConcurrencyCommand,
  GetAccountSettingsCommand,
  GetFunctionCommand,
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  PutFunctionConcurrencyCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bashRuntimeZip, echoZip, versionZip } from "./support/functions.js";
import { MODES, startGust, type TestGust } from "./support/gust.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { startNotifyServer, type NotifyServer, CALLS_BACK_TO_THE_HOST } from "./support/notify.js";
import { testTenant } from "./support/tenants.js";

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

describe.each(MODES)("AWS SDK against gust %s", (mode) => {
  const acme = testTenant("acme");
  const small = testTenant("small", 1);
  const other = testTenant("other");
  let gust: TestGust;
  let lambda: LambdaClient;
  let notify: NotifyServer;

  beforeAll(async () => {
    gust = await startGust(mode, {
      tenants: [acme, small, other],
      frontend: { eventRetryDelaysMs: [200, 400] },
      // Handlers report Event runs to a server on the host's loopback, which a jail refuses.
      worker: CALLS_BACK_TO_THE_HOST,
    });
    lambda = lambdaFor(gust.url, acme);
    notify = await startNotifyServer();
  });

  afterAll(async () => {
    lambda?.destroy();
    await notify?.close();
    await gust?.close();
  });

  const create = async (client: LambdaClient, name: string, zip: Uint8Array, extra = {}) =>
    client.send(
      new CreateFunctionCommand({
        FunctionName: name,
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Code: { ZipFile: zip },
        ...extra,
      }),
    );

  it("creates a function from a zip and reports it as Lambda does", async () => {
    const zip = await echoZip();
    const created = await create(lambda, "echo", zip, { Timeout: 10, MemorySize: 256 });
    expect(created.FunctionName).toBe("echo");
    expect(created.FunctionArn).toBe(`arn:aws:lambda:us-east-1:${acme.accountId}:function:echo`);
    expect(created.CodeSha256).toBe(createHash("sha256").update(zip).digest("base64"));
    expect(created.CodeSize).toBe(zip.length);
    expect(created.Timeout).toBe(10);
    expect(created.MemorySize).toBe(256);
    expect(created.State).toBe("Active");
    expect(created.Version).toBe("$LATEST");

    const got = await lambda.send(new GetFunctionCommand({ FunctionName: "echo" }));
    expect(got.Configuration?.RevisionId).toBe(created.RevisionId);
    const config = await lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: created.FunctionArn }),
    );
    expect(config.Handler).toBe("index.handler");
  });

  it("invokes synchronously and returns the handler's result", async () => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: "echo", Payload: json({ hello: "world" }) }),
    );
    expect(result.StatusCode).toBe(200);
    expect(result.FunctionError).toBeUndefined();
    expect(result.ExecutedVersion).toBe("$LATEST");
    const payload = decodePayload(result.Payload) as Record<string, unknown>;
    expect(payload["echo"]).toEqual({ hello: "world" });
    expect(payload["functionName"]).toBe("echo");
    expect(payload["remainingMs"]).toBeGreaterThan(0);
    expect(payload["remainingMs"]).toBeLessThanOrEqual(10_000);
  });

  it("returns the log tail when asked", async () => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: "echo", Payload: json({}), LogType: "Tail" }),
    );
    const log = Buffer.from(result.LogResult ?? "", "base64").toString("utf8");
    expect(log).toMatch(/START RequestId: \S+ Version: \$LATEST/);
    expect(log).toContain("hello from echo");
    expect(log).toMatch(/REPORT RequestId: \S+\tDuration: [\d.]+ ms/);
  });

  it("reports a handler's error as Unhandled with Lambda's error JSON", async () => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: "echo", Payload: json({ fail: "on purpose" }) }),
    );
    expect(result.StatusCode).toBe(200);
    expect(result.FunctionError).toBe("Unhandled");
    const error = decodePayload(result.Payload) as Record<string, unknown>;
    expect(error["errorType"]).toBe("Error");
    expect(error["errorMessage"]).toBe("boom: on purpose");
    expect(Array.isArray(error["trace"])).toBe(true);
  });

  it("answers DryRun with 204 and rejects a payload that is not JSON", async () => {
    const dry = await lambda.send(
      new InvokeCommand({ FunctionName: "echo", InvocationType: "DryRun" }),
    );
    expect(dry.StatusCode).toBe(204);
    await expect(
      lambda.send(
        new InvokeCommand({ FunctionName: "echo", Payload: encoder.encode("{not json") }),
      ),
    ).rejects.toMatchObject({
      name: "InvalidRequestContentException",
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("rejects a payload over 6 MB with RequestTooLargeException", async () => {
    const big = json({ blob: "x".repeat(6 * 1024 * 1024 + 10) });
    await expect(
      lambda.send(new InvokeCommand({ FunctionName: "echo", Payload: big })),
    ).rejects.toMatchObject({
      name: "RequestTooLargeException",
      $metadata: { httpStatusCode: 413 },
    });
  });

  it("runs Event invocations later, and retries a failing one twice", async () => {
    const queued = await lambda.send(
      new InvokeCommand({
        FunctionName: "echo",
        InvocationType: "Event",
        Payload: json({ notify: notify.url, tag: "async-ok" }),
      }),
    );
    expect(queued.StatusCode).toBe(202);
    await notify.waitFor(1);
    expect(notify.received[0]?.event["tag"]).toBe("async-ok");

    await lambda.send(
      new InvokeCommand({
        FunctionName: "echo",
        InvocationType: "Event",
        Payload: json({ notify: notify.url, tag: "async-fail", fail: "always" }),
      }),
    );
    await notify.waitFor(4);
    // Three attempts in all (Lambda's two retries), then no more.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(notify.received.filter((call) => call.event["tag"] === "async-fail")).toHaveLength(3);
  });

  it("throttles past the tenant's maximum concurrency with Lambda's 429", async () => {
    const client = lambdaFor(gust.url, small);
    try {
      await create(client, "slow", await echoZip());
      const calls = [0, 1, 2].map(() =>
        client.send(new InvokeCommand({ FunctionName: "slow", Payload: json({ sleepMs: 1500 }) })),
      );
      const settled = await Promise.allSettled(calls);
      const ok = settled.filter((outcome) => outcome.status === "fulfilled");
      const throttled = settled.flatMap((outcome) =>
        outcome.status === "rejected" ? [outcome.reason as Record<string, unknown>] : [],
      );
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(throttled.length).toBeGreaterThanOrEqual(1);
      for (const error of throttled) {
        expect(error["name"]).toBe("TooManyRequestsException");
        expect(error["Reason"]).toBe("ConcurrentInvocationLimitExceeded");
        expect((error["$metadata"] as { httpStatusCode: number }).httpStatusCode).toBe(429);
      }
    } finally {
      client.destroy();
    }
  });

  it("pages through ListFunctions", async () => {
    for (const name of ["page-a", "page-b", "page-c"]) await create(lambda, name, await echoZip());
    const first = await lambda.send(new ListFunctionsCommand({ MaxItems: 2 }));
    expect(first.Functions?.map((f) => f.FunctionName)).toEqual(["echo", "page-a"]);
    expect(first.NextMarker).toBeDefined();
    const second = await lambda.send(
      new ListFunctionsCommand({ MaxItems: 2, Marker: first.NextMarker }),
    );
    expect(second.Functions?.map((f) => f.FunctionName)).toEqual(["page-b", "page-c"]);
    expect(second.NextMarker).toBeUndefined();
  });

  it("applies configuration and code updates to the next invocation", async () => {
    await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "echo",
        Environment: { Variables: { GREETING: "hi there" } },
      }),
    );
    const withEnv = await lambda.send(
      new InvokeCommand({ FunctionName: "echo", Payload: json({}) }),
    );
    expect((decodePayload(withEnv.Payload) as Record<string, unknown>)["greeting"]).toBe(
      "hi there",
    );

    const zip = await versionZip("two");
    const updated = await lambda.send(
      new UpdateFunctionCodeCommand({ FunctionName: "page-a", ZipFile: zip }),
    );
    expect(updated.CodeSha256).toBe(createHash("sha256").update(zip).digest("base64"));
    const after = await lambda.send(
      new InvokeCommand({ FunctionName: "page-a", Payload: json({}) }),
    );
    expect(decodePayload(after.Payload)).toEqual({ version: "two" });
  });

  it("keeps tenants apart", async () => {
    const client = lambdaFor(gust.url, other);
    try {
      await expect(
        client.send(new GetFunctionCommand({ FunctionName: "echo" })),
      ).rejects.toMatchObject({
        name: "ResourceNotFoundException",
      });
      const listed = await client.send(new ListFunctionsCommand({}));
      expect(listed.Functions).toEqual([]);
      await expect(
        client.send(new InvokeCommand({ FunctionName: "echo", Payload: json({}) })),
      ).rejects.toMatchObject({
        name: "ResourceNotFoundException",
        $metadata: { httpStatusCode: 404 },
      });
    } finally {
      client.destroy();
    }
  });

  it("runs a provided runtime: the bash bootstrap of AWS's tutorial", async () => {
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: "bash",
        Runtime: "provided.al2023",
        Handler: "function.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Code: { ZipFile: await bashRuntimeZip() },
      }),
    );
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: "bash", Payload: json({ text: "Hello" }) }),
    );
    expect(result.FunctionError, new TextDecoder().decode(result.Payload)).toBeUndefined();
    expect(new TextDecoder().decode(result.Payload)).toBe(`Echoing request: '{"text":"Hello"}'`);
  });

  it("rejects a bundle that is not a zip, and a bad signature", async () => {
    await expect(
      create(lambda, "broken", encoder.encode("not a zip at all")),
    ).rejects.toMatchObject({
      name: "InvalidParameterValueException",
      $metadata: { httpStatusCode: 400 },
    });
    const forged = new LambdaClient({
      endpoint: gust.url,
      region: "us-east-1",
      credentials: {
        accessKeyId: acme.credentials[0]!.accessKeyId,
        secretAccessKey: "wrong-secret-wrong-secret",
      },
      maxAttempts: 1,
    });
    try {
      await expect(forged.send(new ListFunctionsCommand({}))).rejects.toMatchObject({
        name: "InvalidSignatureException",
        $metadata: { httpStatusCode: 403 },
      });
    } finally {
      forged.destroy();
    }
  });

  it("reserves concurrency per function, and 0 stops a function", async () => {
    const put = await lambda.send(
      new PutFunctionConcurrencyCommand({
        FunctionName: "page-b",
        ReservedConcurrentExecutions: 0,
      }),
    );
    expect(put.ReservedConcurrentExecutions).toBe(0);
    await expect(
      lambda.send(new InvokeCommand({ FunctionName: "page-b", Payload: json({}) })),
    ).rejects.toMatchObject({
      name: "TooManyRequestsException",
      Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
    });
    await lambda.send(
      new PutFunctionConcurrencyCommand({
        FunctionName: "page-b",
        ReservedConcurrentExecutions: 250,
      }),
    );
    const got = await lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: "page-b" }));
    expect(got.ReservedConcurrentExecutions).toBe(250);
    const fn = await lambda.send(new GetFunctionCommand({ FunctionName: "page-b" }));
    expect(fn.Concurrency?.ReservedConcurrentExecutions).toBe(250);
    const settings = await lambda.send(new GetAccountSettingsCommand({}));
    expect(settings.AccountLimit?.UnreservedConcurrentExecutions).toBe(750);
    await expect(
      lambda.send(
        new PutFunctionConcurrencyCommand({
          FunctionName: "echo",
          ReservedConcurrentExecutions: 700,
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidParameterValueException" });
    const ran = await lambda.send(new InvokeCommand({ FunctionName: "page-b", Payload: json({}) }));
    expect(ran.FunctionError).toBeUndefined();
    await lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: "page-b" }));
    expect(
      (await lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: "page-b" })))
        .ReservedConcurrentExecutions,
    ).toBeUndefined();
  });

  it("reports account settings and deletes functions", async () => {
    const settings = await lambda.send(new GetAccountSettingsCommand({}));
    expect(settings.AccountLimit?.ConcurrentExecutions).toBe(1000);
    expect(settings.AccountLimit?.UnreservedConcurrentExecutions).toBe(1000);
    expect(settings.AccountUsage?.FunctionCount).toBe(5);

    await lambda.send(new DeleteFunctionCommand({ FunctionName: "page-c" }));
    await expect(
      lambda.send(new InvokeCommand({ FunctionName: "page-c", Payload: json({}) })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    await expect(
      lambda.send(new DeleteFunctionCommand({ FunctionName: "page-c" })),
    ).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
  });
});
