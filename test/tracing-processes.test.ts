/**
 * Telemetry as the `gust` command starts it: a coordinator, a worker and a
 * frontend as separate processes on a real nats-server, each exporting spans
 * to the test's OTLP receiver (OTEL_EXPORTER_OTLP_ENDPOINT) under its own
 * service name, and serving Prometheus metrics (--metrics-port).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateFunctionCommand, InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { startNatsServer, type NatsServerHandle } from "@gust/bus";
import { spawnGust, type GustProcess } from "@gust/cli";
import { writeTenantKeyFile } from "@gust/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { startOtlpReceiver, type OtlpReceiver } from "./support/otlp-receiver.js";
import { testTenant } from "./support/tenants.js";
import { parseTraceparent, traceHandlerZip, type SeenTrace } from "./support/trace-handler.js";
import { expectConnected, only, SYNC_SPANS } from "./support/traces.js";

describe("telemetry of a fleet of gust processes", () => {
  const tenant = testTenant("traced");
  let nats: NatsServerHandle;
  let receiver: OtlpReceiver;
  let dir: string;
  const processes: GustProcess[] = [];
  let lambda: LambdaClient;
  let frontendMetrics: string;
  let workerMetrics: string;

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    receiver = await startOtlpReceiver();
    dir = await mkdtemp(join(tmpdir(), "gust-tracing-test-"));
    const tenantsFile = join(dir, "tenants.json");
    await writeFile(tenantsFile, JSON.stringify({ tenants: [tenant] }), { mode: 0o600 });
    const tenantKeyFile = join(dir, "tenant.key");
    await writeTenantKeyFile(tenantKeyFile);
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      // Export within a fraction of a second rather than OpenTelemetry's 5 s.
      OTEL_BSP_SCHEDULE_DELAY: "200",
    };

    const coordinator = spawnGust(
      [
        "coordinator",
        "--nats",
        nats.url,
        "--tenants",
        tenantsFile,
        "--tenant-key-file",
        tenantKeyFile,
      ],
      env,
    );
    processes.push(coordinator);
    await coordinator.waitForLog("coordinator started");
    const worker = spawnGust(
      [
        "worker",
        "--nats",
        nats.url,
        "--id",
        "w1",
        "--pool",
        "1",
        "--metrics-port",
        "0",
        "--host",
        "127.0.0.1",
      ],
      env,
    );
    processes.push(worker);
    workerMetrics = (await worker.waitForLog("telemetry started"))["metricsUrl"] as string;
    await worker.waitForLog("worker started");
    const frontend = spawnGust(
      [
        "frontend",
        "--nats",
        nats.url,
        "--tenant-key-file",
        tenantKeyFile,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--metrics-port",
        "0",
      ],
      env,
    );
    processes.push(frontend);
    frontendMetrics = (await frontend.waitForLog("telemetry started"))["metricsUrl"] as string;
    const listening = await frontend.waitForLog("frontend listening");
    lambda = lambdaFor(listening["url"] as string, tenant);
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: "traced",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Code: { ZipFile: await traceHandlerZip() },
      }),
    );
  });

  afterAll(async () => {
    lambda?.destroy();
    await Promise.all(processes.map((process) => process.stop()));
    await nats?.stop();
    await receiver?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("makes one trace of an invocation across the frontend and worker processes", async () => {
    const result = await lambda.send(
      new InvokeCommand({ FunctionName: "traced", Payload: new TextEncoder().encode("{}") }),
    );
    const seen = decodePayload(result.Payload) as SeenTrace;
    const { traceId, spanId } = parseTraceparent(seen.traceparent);
    expect(seen.xray).toBe(
      `Root=1-${traceId.slice(0, 8)}-${traceId.slice(8)};Parent=${spanId};Sampled=1`,
    );

    const spans = await receiver.waitForTrace(traceId, (found) =>
      SYNC_SPANS.every((name) => found.some((span) => span.name === name)),
    );
    expect(expectConnected(spans).name).toBe("gust.invoke");
    expect(only(spans, "gust.invoke").service).toBe("gust-frontend");
    expect(only(spans, "gust.worker.request").service).toBe("gust-frontend");
    expect(only(spans, "gust.worker.invoke").service).toBe("gust-worker");
    const handler = only(spans, "gust.handler");
    expect(handler.service).toBe("gust-worker");
    expect(handler.spanId).toBe(spanId);
    expect(only(spans, "gust.worker.invoke").attributes["gust.worker.id"]).toBe("w1");
  });

  it("serves each process's metrics for Prometheus", async () => {
    const frontend = await (await fetch(frontendMetrics)).text();
    expect(frontend).toMatch(
      /^gust_invocations_total\{tenant="traced",type="RequestResponse",outcome="success"\} 1$/m,
    );
    expect(frontend).toMatch(/^gust_invocations_inflight\{tenant="traced"\} 0$/m);
    expect(frontend).toContain('service_name="gust-frontend"');

    const worker = await (await fetch(workerMetrics)).text();
    expect(worker).toMatch(/^gust_sandbox_starts_total\{kind="(preinitialized|cold)"\} 1$/m);
    expect(worker).toMatch(/^gust_sandboxes\{worker="w1",state="idle"\} 1$/m);
    expect(worker).toContain('service_name="gust-worker"');
    expect(worker).toContain('service_instance_id="w1"');
  });
});
