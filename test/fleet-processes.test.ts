/**
 * Fleet mode as separate processes on a real nats-server: one coordinator,
 * two workers, one frontend. Invocations spread over both workers when one
 * is full, and survive a worker being killed. The server admits only
 * Gust's roles, and each process connects with its own role's seed file, as
 * a deployed fleet does; nothing they do is refused.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateFunctionCommand, InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { startNatsServer, type NatsServerHandle } from "@gust/bus";
import { spawnGust, type GustProcess } from "@gust/cli";
import { writeTenantKeyFile } from "@gust/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { echoZip } from "./support/functions.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { testTenant } from "./support/tenants.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("fleet of processes on nats-server", () => {
  const tenant = testTenant("fleet");
  let nats: NatsServerHandle;
  let dir: string;
  let workersDir: string | undefined;
  const processes: GustProcess[] = [];
  let workers: GustProcess[] = [];
  let lambda: LambdaClient;

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true, auth: true });
    const seeds = nats.auth!.seedFiles;
    dir = await mkdtemp(join(tmpdir(), "gust-fleet-test-"));
    const tenantsFile = join(dir, "tenants.json");
    await writeFile(tenantsFile, JSON.stringify({ tenants: [tenant] }), { mode: 0o600 });
    // For the coordinator and the frontend only, as a fleet hands it out.
    const tenantKeyFile = join(dir, "tenant.key");
    await writeTenantKeyFile(tenantKeyFile);

    const coordinator = spawnGust([
      "coordinator",
      "--nats",
      nats.url,
      "--nats-nkey",
      seeds.coordinator,
      "--tenants",
      tenantsFile,
      "--tenant-key-file",
      tenantKeyFile,
    ]);
    processes.push(coordinator);
    await coordinator.waitForLog("coordinator started");
    // The workers' temp dir is the test's: the one killed below leaves its files in it.
    // Sandboxes run under uids of their own and must be able to pass through it.
    const tmp = await mkdtemp(join(tmpdir(), "gust-fleet-test-workers-"));
    workersDir = tmp;
    await chmod(tmp, 0o711);
    workers = ["w1", "w2"].map((id) =>
      spawnGust(
        [
          "worker",
          "--nats",
          nats.url,
          "--nats-nkey",
          seeds.worker,
          "--id",
          id,
          "--max-sandboxes",
          "2",
          "--pool",
          "1",
        ],
        {
          GUST_LOG_LEVEL: "debug",
          TMPDIR: tmp,
        },
      ),
    );
    processes.push(...workers);
    await Promise.all(workers.map((worker) => worker.waitForLog("worker started")));
    const frontend = spawnGust([
      "frontend",
      "--nats",
      nats.url,
      "--nats-nkey",
      seeds.frontend,
      "--tenant-key-file",
      tenantKeyFile,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ]);
    processes.push(frontend);
    const listening = await frontend.waitForLog("frontend listening");
    lambda = lambdaFor(listening["url"] as string, tenant);
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: "echo",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Code: { ZipFile: await echoZip() },
      }),
    );
  });

  afterAll(async () => {
    lambda?.destroy();
    await Promise.all(processes.map((process) => process.stop()));
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (workersDir) await rm(workersDir, { recursive: true, force: true });
  });

  const invoke = async (event: Record<string, unknown>) => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: "echo", Payload: json(event) }),
    );
    expect(result.FunctionError).toBeUndefined();
    return decodePayload(result.Payload) as Record<string, unknown>;
  };

  it("uses both workers when one is full", async () => {
    // Two sandboxes per worker: four concurrent invocations need both workers.
    const results = await Promise.all([1, 2, 3, 4].map((n) => invoke({ n, sleepMs: 1500 })));
    expect(results.map((result) => (result["echo"] as { n: number }).n).sort()).toEqual([
      1, 2, 3, 4,
    ]);
    for (const worker of workers)
      expect(worker.output()).toContain('"message":"invocation finished"');
  });

  it("keeps serving after a worker is killed", async () => {
    await workers[0]!.stop("SIGKILL");
    for (let n = 0; n < 5; n++) {
      const result = await invoke({ n });
      expect((result["echo"] as { n: number }).n).toBe(n);
    }
  });

  it("ran on an authenticated bus that refused none of its processes", () => {
    for (const process of processes) expect(process.output()).not.toContain("without credentials");
    expect(nats.permissionViolations()).toEqual([]);
  });
});
