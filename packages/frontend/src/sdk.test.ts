/**
 * The real AWS SDK against a frontend on a real socket: the proof that paths,
 * members, signatures and error types are what a Lambda client expects.
 */
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetAccountSettingsCommand,
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  ResourceNotFoundException,
  TooManyRequestsException,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveFrontend, type ServedFrontend } from "./frontend.js";
import {
  answers,
  CREDENTIALS_A,
  CREDENTIALS_B,
  nodeZip,
  startHarness,
  TENANT_A,
  TENANT_B,
  type Harness,
} from "./test-util.js";

let h: Harness;
let server: ServedFrontend;
let client: LambdaClient;

function clientFor(credentials: { accessKeyId: string; secretAccessKey: string }): LambdaClient {
  return new LambdaClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials,
    maxAttempts: 1,
  });
}

beforeAll(async () => {
  h = await startHarness({ tenants: [{ ...TENANT_A, maxConcurrency: 1 }, TENANT_B] });
  server = await serveFrontend(h.frontend, { host: "127.0.0.1", port: 0 });
  client = clientFor(CREDENTIALS_A);
});
afterAll(async () => {
  client?.destroy();
  await server?.close();
  await h?.close();
});

describe("the AWS SDK against Gust", () => {
  it("creates, reads, lists, updates, invokes and deletes a function", async () => {
    expect(server.port).toBeGreaterThan(0);
    const created = await client.send(
      new CreateFunctionCommand({
        FunctionName: "sdk-fn",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::111111111111:role/gust",
        Code: { ZipFile: await nodeZip() },
        Environment: { Variables: { STAGE: "test" } },
      }),
    );
    expect(created.FunctionArn).toBe("arn:aws:lambda:us-east-1:111111111111:function:sdk-fn");
    expect(created.State).toBe("Active");

    const got = await client.send(new GetFunctionCommand({ FunctionName: created.FunctionArn }));
    expect(got.Configuration?.Environment?.Variables).toEqual({ STAGE: "test" });
    const download = await fetch(got.Code!.Location!);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(Buffer.from(await nodeZip()));

    const listed = await client.send(new ListFunctionsCommand({ MaxItems: 10 }));
    expect(listed.Functions?.map((f) => f.FunctionName)).toEqual(["sdk-fn"]);

    const updated = await client.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "sdk-fn", Timeout: 9 }),
    );
    expect(updated.Timeout).toBe(9);

    const worker = await h.addWorker({
      id: "sdk-worker",
      behaviour: () => answers.ok({ answer: 42 }, "log line\n"),
    });
    const invoked = await client.send(
      new InvokeCommand({
        FunctionName: "sdk-fn",
        Payload: new TextEncoder().encode('{"q":1}'),
        LogType: "Tail",
      }),
    );
    expect(invoked.StatusCode).toBe(200);
    expect(invoked.FunctionError).toBeUndefined();
    expect(invoked.ExecutedVersion).toBe("$LATEST");
    expect(JSON.parse(new TextDecoder().decode(invoked.Payload))).toEqual({ answer: 42 });
    expect(Buffer.from(invoked.LogResult!, "base64").toString()).toBe("log line\n");

    worker.behaviour = () => answers.functionError("sdk boom");
    const failed = await client.send(new InvokeCommand({ FunctionName: "sdk-fn" }));
    expect(failed.StatusCode).toBe(200);
    expect(failed.FunctionError).toBe("Unhandled");

    const queued = await client.send(
      new InvokeCommand({ FunctionName: "sdk-fn", InvocationType: "Event" }),
    );
    expect(queued.StatusCode).toBe(202);

    const settings = await client.send(new GetAccountSettingsCommand({}));
    expect(settings.AccountUsage?.FunctionCount).toBe(1);
    expect(settings.AccountLimit?.ConcurrentExecutions).toBe(1);

    await client.send(new DeleteFunctionCommand({ FunctionName: "sdk-fn" }));
    await expect(
      client.send(new GetFunctionCommand({ FunctionName: "sdk-fn" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("surfaces Lambda's error types, including the throttle's Reason", async () => {
    const other = clientFor(CREDENTIALS_B);
    try {
      await expect(
        other.send(new GetFunctionCommand({ FunctionName: "missing" })),
      ).rejects.toMatchObject({
        name: "ResourceNotFoundException",
        $metadata: { httpStatusCode: 404 },
      });
    } finally {
      other.destroy();
    }
    const stranger = clientFor({ accessKeyId: "AKIASTRANGERSTRANGER", secretAccessKey: "x" });
    try {
      await expect(stranger.send(new ListFunctionsCommand({}))).rejects.toMatchObject({
        name: "UnrecognizedClientException",
      });
    } finally {
      stranger.destroy();
    }

    await client.send(
      new CreateFunctionCommand({
        FunctionName: "busy-fn",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::111111111111:role/gust",
        Code: { ZipFile: await nodeZip() },
      }),
    );
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const worker = await h.addWorker({
      id: "busy-worker",
      behaviour: async () => {
        await gate;
        return answers.ok("late");
      },
    });
    h.frontend.workers.forget("sdk-worker", "test");
    const first = client.send(new InvokeCommand({ FunctionName: "busy-fn" }));
    while (worker.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const throttled = await client
      .send(new InvokeCommand({ FunctionName: "busy-fn" }))
      .catch((error: unknown) => error);
    expect(throttled).toBeInstanceOf(TooManyRequestsException);
    expect(throttled).toMatchObject({
      Reason: "ConcurrentInvocationLimitExceeded",
      message: "Rate Exceeded.",
      retryAfterSeconds: "1",
    });
    release();
    expect((await first).StatusCode).toBe(200);
  });
});
