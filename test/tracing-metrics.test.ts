/**
 * The Prometheus endpoint after real invocations through the AWS SDK, with
 * tracing off (no OTLP endpoint): metrics stand on their own.
 */
import {
  CreateFunctionCommand,
  InvokeCommand,
  LambdaClient,
  PutFunctionConcurrencyCommand,
  TooManyRequestsException,
} from "@aws-sdk/client-lambda";
import { startTelemetry, tracingEnabled, type Telemetry } from "@gust/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { echoZip } from "./support/functions.js";
import { startGust, type TestGust } from "./support/gust.js";
import { lambdaFor } from "./support/lambda.js";
import { testTenant } from "./support/tenants.js";

/** The value of one sample line, e.g. `gust_throttles_total{tenant="acme",reason="…"} 1`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf("}");
    const labelText = line.slice(name.length + 1, close);
    const found = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1], match[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
      return Number(line.slice(close + 1).trim());
    }
  }
  return undefined;
}

describe("metrics", () => {
  const acme = testTenant("acme");
  let telemetry: Telemetry;
  let gust: TestGust;
  let lambda: LambdaClient;

  beforeAll(async () => {
    telemetry = await startTelemetry({
      serviceName: "gust-test",
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      env: {},
    });
    gust = await startGust("dev", { tenants: [acme] });
    lambda = lambdaFor(gust.url, acme);
  });

  afterAll(async () => {
    lambda?.destroy();
    await gust?.close();
    await telemetry?.shutdown();
  });

  async function scrape(): Promise<string> {
    const response = await fetch(telemetry.metricsUrl!);
    expect(response.status).toBe(200);
    return response.text();
  }

  it("serves invocations, throttles, sandbox starts and pool sizes after invocations", async () => {
    expect(tracingEnabled()).toBe(false);
    const zip = await echoZip();
    for (const name of ["counted", "stopped"]) {
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: "arn:aws:iam::000000000000:role/test",
          Code: { ZipFile: zip },
        }),
      );
    }
    await lambda.send(
      new PutFunctionConcurrencyCommand({
        FunctionName: "stopped",
        ReservedConcurrentExecutions: 0,
      }),
    );
    for (let i = 0; i < 3; i++) {
      const result = await lambda.send(
        new InvokeCommand({ FunctionName: "counted", Payload: new TextEncoder().encode("{}") }),
      );
      expect(result.StatusCode).toBe(200);
    }
    const failed = await lambda.send(
      new InvokeCommand({
        FunctionName: "counted",
        Payload: new TextEncoder().encode(JSON.stringify({ fail: "on purpose" })),
      }),
    );
    expect(failed.FunctionError).toBe("Unhandled");
    await expect(
      lambda.send(new InvokeCommand({ FunctionName: "stopped", Payload: new Uint8Array() })),
    ).rejects.toBeInstanceOf(TooManyRequestsException);

    const text = await scrape();
    const invocations = (outcome: string) =>
      sample(text, "gust_invocations_total", { tenant: "acme", type: "RequestResponse", outcome });
    expect(invocations("success")).toBe(3);
    expect(invocations("function-error")).toBe(1);
    expect(invocations("throttled")).toBe(1);
    expect(
      sample(text, "gust_throttles_total", {
        tenant: "acme",
        reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
      }),
    ).toBe(1);
    expect(sample(text, "gust_invocations_inflight", { tenant: "acme" })).toBe(0);

    // The first invocation found a sandbox (pre-initialized or new); the others reused it.
    const starts = (kind: string) => sample(text, "gust_sandbox_starts_total", { kind }) ?? 0;
    expect(starts("warm")).toBe(3);
    expect(starts("preinitialized") + starts("cold")).toBe(1);
    expect(sample(text, "gust_sandboxes", { state: "idle" })).toBeGreaterThanOrEqual(1);
    expect(sample(text, "gust_sandboxes", { state: "busy" })).toBe(0);
    expect(text).toContain('service_name="gust-test"');
  });

  it("answers 404 off the metrics path", async () => {
    const url = new URL(telemetry.metricsUrl!);
    url.pathname = "/nothing";
    expect((await fetch(url)).status).toBe(404);
  });
});
