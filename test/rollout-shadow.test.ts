/**
 * Shadowing in a runtime rollout, on a real nats-server with the services
 * the `gust` command runs: a function that breaks on nodejs20.x 2.0.0, which
 * its owner marked safe to repeat (`gust rollout safe`), is judged from
 * shadow invocations alone. Its callers are always answered by 1.0.0 and see
 * no failure, yet the rollout finds it incompatible and pins it.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import {
  CreateFunctionCommand,
  GetRuntimeManagementConfigCommand,
  InvokeCommand,
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

/** 2.0.0 refuses callback handlers (Runtime.CallbackHandlerDeprecated). */
const CALLBACK_HANDLER = `exports.handler = (event, context, callback) => {
  callback(null, { style: "callback", succeed: typeof context.succeed });
};`;

/** Half of the invocations would go to 2.0.0; shadowed, none of their callers' do. */
const FRACTION = 0.5;
const MIN_SAMPLES = 6;
const NAME = "cb-shadowed";

describe("a rollout that judges a safe-to-repeat function from shadows", () => {
  const adminToken = randomBytes(18).toString("base64url");
  let tenant: TenantRecord;
  let nats: NatsServerHandle;
  let roles: RoleConnections;
  let coordinator: CoordinatorService;
  const services: Service[] = [];
  let url: string;
  let lambda: LambdaClient;

  beforeAll(async () => {
    tenant = testTenant("shadows");
    // Each service as its role, on a bus that admits only them.
    nats = await startNatsServer({ jetstream: true, auth: true });
    roles = await connectRoles(nats);
    coordinator = await startCoordinatorService(roles.coordinator, {
      tenants: [tenant],
      rollouts: { flushIntervalMs: 250 },
    });
    services.push(await startWorkerService(roles.worker, { preinitializedPoolSize: 1 }));
    const frontend = await startFrontendService(roles.frontend, {
      host: "127.0.0.1",
      port: 0,
      frontend: { adminToken },
    });
    services.push(frontend);
    url = frontend.url;
    lambda = lambdaFor(url, tenant);
  }, 60_000);

  afterAll(async () => {
    lambda?.destroy();
    await coordinator?.close();
    await closeAll(services);
    await roles?.close();
    await nats?.stop();
  });

  const gust = async (...args: string[]) => {
    const credential = tenant.credentials[0]!;
    const { stdout } = await run(process.execPath, [GUST_MAIN, "rollout", ...args], {
      env: {
        ...process.env,
        GUST_ADMIN_TOKEN: adminToken,
        GUST_ENDPOINT: url,
        AWS_ACCESS_KEY_ID: credential.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
        AWS_REGION: "us-east-1",
      },
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

  it("pins a breaking function whose callers never saw it fail", async () => {
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: NAME,
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Timeout: 10,
        Code: { ZipFile: await zipFiles([{ path: "index.js", data: CALLBACK_HANDLER }]) },
      }),
    );
    expect(await gust("safe", NAME)).toContain("safe to repeat");
    const described = await signedFetch(url, tenant, "GET", `/2015-03-31/functions/${NAME}`);
    expect(JSON.parse(described.body)).toMatchObject({
      GustRuntimeRollout: { SafeToRepeat: true },
    });

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

    const key = `${tenant.id}/${NAME}`;
    let calls = 0;
    const failures: unknown[] = [];
    // Bounded: ~200 invocations at most; at fraction 0.5 the new version
    // needs about 2 × MIN_SAMPLES of them to see its samples.
    for (let round = 0; round < 200; round++) {
      const result = await lambda.send(
        new InvokeCommand({ FunctionName: NAME, Payload: json({ round }) }),
      );
      calls++;
      const payload = decodePayload(result.Payload);
      // Every answer is 1.0.0's: a callback handler, whose context has succeed().
      if (result.FunctionError !== undefined) failures.push(payload);
      else expect(payload).toEqual({ style: "callback", succeed: "function" });
      if (round % 10 === 9 && (await rollout()).functions[key]?.verdict !== undefined) break;
      await sleep(20);
    }
    let record = await rollout();
    for (let i = 0; i < 40 && record.functions[key]?.verdict === undefined; i++) {
      await sleep(250);
      record = await rollout();
    }

    expect(failures).toEqual([]);
    const progress = record.functions[key];
    expect(progress?.verdict?.verdict).toBe("incompatible");
    expect(progress?.verdict?.reason).toContain("Runtime.CallbackHandlerDeprecated");
    expect(progress?.new.sampleError?.errorType).toBe("Runtime.CallbackHandlerDeprecated");
    // The new version's counts are the shadows': no caller was sent there.
    const newTotal = Object.values(progress?.new.counts ?? {}).reduce((a, b) => a + b, 0);
    const oldTotal = Object.values(progress?.old.counts ?? {}).reduce((a, b) => a + b, 0);
    expect(newTotal).toBeGreaterThanOrEqual(MIN_SAMPLES);
    expect(oldTotal).toBeLessThanOrEqual(calls);
    expect(newTotal).toBeLessThan(calls);

    const config = await lambda.send(new GetRuntimeManagementConfigCommand({ FunctionName: NAME }));
    expect(config).toMatchObject({ UpdateRuntimeOn: "Manual", RuntimeVersionArn: V1 });

    // Turned off, the setting is gone from GetFunction's Gust member.
    expect(await gust("safe", NAME, "--off")).toContain("not safe to repeat");
    const after = await signedFetch(url, tenant, "GET", `/2015-03-31/functions/${NAME}`);
    expect(JSON.parse(after.body).GustRuntimeRollout?.SafeToRepeat).toBeUndefined();
  }, 120_000);
});
