/**
 * A runtime rollout from start to verdict, on a real nats-server with the
 * services the `gust` command runs, driven by `gust rollout` and the real
 * @aws-sdk/client-lambda.
 *
 * Callback-style handlers break on nodejs20.x 2.0.0 (it refuses them with
 * Runtime.CallbackHandlerDeprecated); async handlers run on both. Under
 * generated traffic the rollout must pin exactly the callback ones to 1.0.0
 * and tell their owners (a NATS event and a signed webhook), move the async
 * ones to 2.0.0, and fail callers no more than its risk budget allows. The
 * coordinator is restarted mid-rollout: nothing it counted may be lost.
 */
import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import {
  CreateFunctionCommand,
  GetFunctionCommand,
  GetRuntimeManagementConfigCommand,
  InvokeCommand,
  PutRuntimeManagementConfigCommand,
  UpdateFunctionCodeCommand,
  type LambdaClient,
} from "@aws-sdk/client-lambda";
import { startNatsServer, type NatsServerHandle } from "@gust/bus";
import { zipFiles } from "@gust/bundle";
import {
  closeAll,
  GUST_MAIN,
  startCoordinatorService,
  startFrontendService,
  startWorkerService,
  type CoordinatorService,
  type Service,
} from "@gust/cli";
import { Subjects, type RolloutVerdictEvent } from "@gust/protocol";
import type { RolloutRecord, TenantRecord } from "@gust/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRoles, type RoleConnections } from "./support/gust.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { signedFetch } from "./support/signed-fetch.js";
import { testTenant } from "./support/tenants.js";
import { builtInArn } from "./support/runtime-versions.js";

const run = promisify(execFile);
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const V1 = builtInArn("nodejs20.x", "1.0.0");
const V2 = builtInArn("nodejs20.x", "2.0.0");

const CALLBACK_HANDLER = `exports.handler = (event, context, callback) => {
  callback(null, { style: "callback", succeed: typeof context.succeed });
};`;
const ASYNC_HANDLER = `exports.handler = async (event, context) => ({
  style: "async",
  succeed: typeof context.succeed,
});`;

const FRACTION = 0.3;
const MIN_SAMPLES = 6;
const BREAKING = ["cb-orders", "cb-mailer"];
const FINE = ["async-api", "async-jobs", "async-report"];
/** Pinned by its owner: no part of the rollout. */
const PINNED = "async-pinned";

interface Webhook {
  body: string;
  signature: string | undefined;
}

describe("a runtime rollout of nodejs20.x 1.0.0 → 2.0.0 under traffic", () => {
  const adminToken = randomBytes(18).toString("base64url");
  const webhookSecret = randomBytes(18).toString("base64url");
  const webhooks: Webhook[] = [];
  const events: RolloutVerdictEvent[] = [];
  let hookServer: Server;
  let tenant: TenantRecord;
  let nats: NatsServerHandle;
  let roles: RoleConnections;
  let coordinator: CoordinatorService;
  const services: Service[] = [];
  let url: string;
  let lambda: LambdaClient;

  const startCoordinator = () =>
    startCoordinatorService(roles.coordinator, {
      tenants: [tenant],
      rollouts: { flushIntervalMs: 250 },
    });

  beforeAll(async () => {
    hookServer = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const signature = request.headers["x-gust-signature"];
        webhooks.push({
          body: Buffer.concat(chunks).toString("utf8"),
          signature: typeof signature === "string" ? signature : undefined,
        });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, "127.0.0.1", resolve));
    const hookPort = (hookServer.address() as AddressInfo).port;
    tenant = {
      ...testTenant("rollouts"),
      webhook: { url: `http://127.0.0.1:${hookPort}/gust`, secret: webhookSecret },
    };

    // Each service as its role, on a bus that admits only them.
    nats = await startNatsServer({ jetstream: true, auth: true });
    roles = await connectRoles(nats);
    coordinator = await startCoordinator();
    services.push(await startWorkerService(roles.worker, { preinitializedPoolSize: 1 }));
    const frontend = await startFrontendService(roles.frontend, {
      host: "127.0.0.1",
      port: 0,
      frontend: { adminToken },
    });
    services.push(frontend);
    url = frontend.url;
    lambda = lambdaFor(url, tenant);
    roles.admin.bus.subscribe(Subjects.rolloutVerdict, (message) => {
      events.push(JSON.parse(new TextDecoder().decode(message.data)) as RolloutVerdictEvent);
    });
  }, 60_000);

  afterAll(async () => {
    lambda?.destroy();
    await coordinator?.close();
    await closeAll(services);
    await roles?.close();
    await nats?.stop();
    await new Promise<void>((resolve) =>
      hookServer ? hookServer.close(() => resolve()) : resolve(),
    );
  });

  const gust = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [GUST_MAIN, "rollout", ...args], {
      env: { ...process.env, GUST_ADMIN_TOKEN: adminToken, GUST_ENDPOINT: url },
      timeout: 30_000,
    });
    return stdout;
  };

  const rollout = async (): Promise<RolloutRecord> => {
    const response = await fetch(new URL("/gust/admin/runtimes/nodejs20.x/rollout", url), {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as RolloutRecord;
  };

  const invoke = async (name: string) => {
    const result = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: json({}) }));
    return {
      failed: result.FunctionError !== undefined,
      payload: decodePayload(result.Payload) as Record<string, unknown>,
    };
  };

  it("pins exactly the breaking functions, moves the others, and tells the owners", async () => {
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
    for (const name of BREAKING) await create(name, CALLBACK_HANDLER);
    for (const name of [...FINE, PINNED]) await create(name, ASYNC_HANDLER);
    await lambda.send(
      new PutRuntimeManagementConfigCommand({
        FunctionName: PINNED,
        UpdateRuntimeOn: "Manual",
        RuntimeVersionArn: V1,
      }),
    );

    expect(
      await gust(
        "start",
        "nodejs20.x",
        "2.0.0",
        "--fraction",
        String(FRACTION),
        "--min-samples",
        String(MIN_SAMPLES),
      ),
    ).toContain("1.0.0 → 2.0.0 started");

    const all = [...BREAKING, ...FINE, PINNED];
    const failures = new Map(all.map((name) => [name, 0]));
    const calls = new Map(all.map((name) => [name, 0]));
    const judged = (record: RolloutRecord) =>
      [...BREAKING, ...FINE].every(
        (name) => record.functions[`${tenant.id}/${name}`]?.verdict !== undefined,
      );
    let restarted = false;
    // Bounded: ~60 invocations of each function at most.
    for (let round = 0; round < 60; round++) {
      await Promise.all(
        all.map(async (name) => {
          const { failed } = await invoke(name);
          calls.set(name, (calls.get(name) ?? 0) + 1);
          if (failed) failures.set(name, (failures.get(name) ?? 0) + 1);
        }),
      );
      if (round === 8 && !restarted) {
        // The coordinator stops mid-rollout; its successor carries on from KV.
        restarted = true;
        await coordinator.close();
        coordinator = await startCoordinator();
      }
      if (round % 5 === 4 && judged(await rollout())) break;
      await sleep(40);
    }
    // Verdicts act (pin, notify) right after they are written.
    let record = await rollout();
    for (let i = 0; i < 40 && !judged(record); i++) {
      await sleep(250);
      record = await rollout();
    }
    expect(judged(record)).toBe(true);
    expect(record.state).toBe("running");

    for (const name of BREAKING) {
      const progress = record.functions[`${tenant.id}/${name}`];
      expect(progress?.verdict?.verdict, name).toBe("incompatible");
      expect(progress?.verdict?.reason).toContain("Runtime.CallbackHandlerDeprecated");
      expect(progress?.new.sampleError?.errorType).toBe("Runtime.CallbackHandlerDeprecated");
      const config = await lambda.send(
        new GetRuntimeManagementConfigCommand({ FunctionName: name }),
      );
      expect(config).toMatchObject({ UpdateRuntimeOn: "Manual", RuntimeVersionArn: V1 });
      const fn = await lambda.send(new GetFunctionCommand({ FunctionName: name }));
      expect(fn.Configuration?.RuntimeVersionConfig?.RuntimeVersionArn).toBe(V1);
      // GetFunction tells the owner why, in Gust's own member.
      const raw = await signedFetch(url, tenant, "GET", `/2015-03-31/functions/${name}`);
      expect(JSON.parse(raw.body)).toMatchObject({
        GustRuntimeRollout: {
          Verdict: "incompatible",
          FromVersion: "1.0.0",
          ToVersion: "2.0.0",
          SampleError: { ErrorType: "Runtime.CallbackHandlerDeprecated" },
        },
      });
      // Pinned, it works again for its callers.
      expect((await invoke(name)).failed).toBe(false);
    }
    for (const name of FINE) {
      expect(record.functions[`${tenant.id}/${name}`]?.verdict?.verdict, name).toBe("compatible");
      expect(failures.get(name), name).toBe(0);
      // Every invocation now runs on 2.0.0, whose context has no succeed().
      for (let i = 0; i < 3; i++) {
        const { failed, payload } = await invoke(name);
        expect(failed).toBe(false);
        expect(payload).toEqual({ style: "async", succeed: "undefined" });
      }
    }
    expect(record.functions[`${tenant.id}/${PINNED}`]).toBeUndefined();
    expect(failures.get(PINNED)).toBe(0);

    // The risk budget: a breaking function fails only on the new version,
    // MIN_SAMPLES times before it is judged, plus what the fraction sends
    // there while the verdict travels (a report interval and a flush).
    for (const name of BREAKING) {
      const failed = failures.get(name) ?? 0;
      expect(failed, name).toBeGreaterThanOrEqual(MIN_SAMPLES);
      expect(failed, name).toBeLessThanOrEqual(2 * MIN_SAMPLES + 4);
      expect(failed / (calls.get(name) ?? 1), name).toBeLessThan(0.75);
    }

    // Owners are told: on NATS and by a signed webhook, once per function.
    for (let i = 0; i < 40 && (events.length < 5 || webhooks.length < 5); i++) await sleep(100);
    const verdictOf = (list: { functionName: string; verdict: string }[]) =>
      Object.fromEntries(list.map((event) => [event.functionName, event.verdict]));
    const expected = {
      ...Object.fromEntries(BREAKING.map((name) => [name, "incompatible"])),
      ...Object.fromEntries(FINE.map((name) => [name, "compatible"])),
    };
    expect(verdictOf(events)).toEqual(expected);
    const incompatible = events.find((event) => event.functionName === BREAKING[0]);
    expect(incompatible).toMatchObject({
      runtimeVersionArn: V1,
      toVersion: "2.0.0",
      errorTypes: { "Runtime.CallbackHandlerDeprecated": expect.any(Number) as number },
      sampleError: { errorType: "Runtime.CallbackHandlerDeprecated" },
    });
    for (const event of events.filter((candidate) => candidate.verdict === "compatible")) {
      expect(event.runtimeVersionArn).toBe(V2);
    }
    for (const hook of webhooks) {
      const expectedSignature = `sha256=${createHmac("sha256", webhookSecret).update(hook.body).digest("hex")}`;
      expect(hook.signature).toBe(expectedSignature);
    }
    expect(verdictOf(webhooks.map((hook) => JSON.parse(hook.body) as RolloutVerdictEvent))).toEqual(
      expected,
    );

    const status = await gust("status", "nodejs20.x");
    expect(status).toContain("3 compatible, 2 incompatible, 0 pending");
    expect(status).toMatch(/rollouts\/cb-orders\s.*incompatible/);
  }, 90_000);

  it("judges a function again once its owner fixes the code", async () => {
    const name = BREAKING[0]!;
    const key = `${tenant.id}/${name}`;
    await lambda.send(
      new UpdateFunctionCodeCommand({
        FunctionName: name,
        ZipFile: await zipFiles([{ path: "index.js", data: ASYNC_HANDLER }]),
      }),
    );
    let record = await rollout();
    for (let i = 0; i < 40 && record.functions[key]?.verdict !== undefined; i++) {
      await sleep(100);
      record = await rollout();
    }
    expect(record.functions[key]?.verdict).toBeUndefined();
    const config = await lambda.send(new GetRuntimeManagementConfigCommand({ FunctionName: name }));
    expect(config.UpdateRuntimeOn).toBe("Auto");

    for (let round = 0; round < 80; round++) {
      expect((await invoke(name)).failed).toBe(false);
      if (round % 10 === 9 && (await rollout()).functions[key]?.verdict !== undefined) break;
      await sleep(20);
    }
    for (let i = 0; i < 40 && (await rollout()).functions[key]?.verdict === undefined; i++) {
      await sleep(100);
    }
    expect((await rollout()).functions[key]?.verdict?.verdict).toBe("compatible");
  }, 60_000);

  it("shows progress live with status --watch", async () => {
    // --watch runs until interrupted: let it refresh a few times, then stop it.
    const output = await run(
      process.execPath,
      [GUST_MAIN, "rollout", "status", "nodejs20.x", "--watch"],
      {
        env: { ...process.env, GUST_ADMIN_TOKEN: adminToken, GUST_ENDPOINT: url },
        timeout: 3500,
        killSignal: "SIGINT",
      },
    ).then(
      ({ stdout }) => stdout,
      (error: { stdout?: string }) => error.stdout ?? "",
    );
    const tables = output.split("nodejs20.x 1.0.0 → 2.0.0: running").length - 1;
    expect(tables).toBeGreaterThanOrEqual(2);
    expect(output).toMatch(/rollouts\/cb-mailer\s.*incompatible/);
  });

  it("goes back to 1.0.0 everywhere on abort", async () => {
    expect(await gust("abort", "nodejs20.x")).toContain("aborted");
    for (let i = 0; i < 20; i++) {
      if ((await rollout()).state === "aborted") break;
      await sleep(100);
    }
    await sleep(300);
    for (const name of FINE) {
      const { failed, payload } = await invoke(name);
      expect(failed).toBe(false);
      expect(payload).toEqual({ style: "async", succeed: "function" });
    }
  });
});
