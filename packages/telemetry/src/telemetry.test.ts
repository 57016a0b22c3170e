import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { ConfigError } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import {
  countInflight,
  countInvocation,
  countSandboxStart,
  countThrottle,
  metricsEnabled,
  observeSandboxes,
  observeTenantLimits,
} from "./metrics.js";
import { startTelemetry, type Telemetry } from "./telemetry.js";
import {
  endSpan,
  sandboxTraceContext,
  SpanNames,
  startChildSpan,
  startHttpServerSpan,
  startMessageSpan,
  tracingEnabled,
  traceHeadersOf,
  withTraceHeaders,
} from "./tracing.js";
import { SpanKind } from "@opentelemetry/api";

const quiet = createLogger("telemetry", { level: "silent" });
const request = (headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: new Headers(headers),
});

/** A receiver that accepts OTLP/JSON posts and keeps the span names and ids. */
async function receiver(): Promise<{
  url: string;
  spans: Array<Record<string, string>>;
  server: Server;
}> {
  const spans: Array<Record<string, string>> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, string>> }> }>;
      };
      for (const resource of body.resourceSpans)
        for (const scope of resource.scopeSpans) spans.push(...scope.spans);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

let running: Telemetry | undefined;
const servers: Server[] = [];

afterEach(async () => {
  await running?.shutdown();
  running = undefined;
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe("telemetry off", () => {
  it("records nothing and loads no SDK when neither an endpoint nor a port is set", async () => {
    running = await startTelemetry({ serviceName: "gust-test", env: {}, logger: quiet });
    expect(running.tracing).toBe(false);
    expect(running.metricsUrl).toBeUndefined();
    expect(tracingEnabled()).toBe(false);
    expect(metricsEnabled()).toBe(false);

    expect(startHttpServerSpan(SpanNames.invoke, request(), "/x")).toBeUndefined();
    expect(startMessageSpan(SpanNames.workerInvoke, SpanKind.SERVER, {})).toBeUndefined();
    expect(startChildSpan(SpanNames.handler, undefined)).toBeUndefined();
    const headers = { "gust-request-id": "r1" };
    // The very object comes back: nothing is copied on the hot path.
    expect(withTraceHeaders(undefined, headers)).toBe(headers);
    countInflight("acme", 1);
    countInvocation("acme", "RequestResponse", "success");
    countThrottle("acme", "ConcurrentInvocationLimitExceeded");
    countSandboxStart("warm");
    endSpan(undefined, new Error("ignored"));

    const loaded = Object.keys(createRequire(import.meta.url).cache);
    expect(loaded.filter((file) => /@opentelemetry\/(sdk-|exporter-)/.test(file))).toEqual([]);
  });
});

describe("telemetry on", () => {
  it("records spans that continue the context they are handed, and exports them", async () => {
    const otlp = await receiver();
    servers.push(otlp.server);
    running = await startTelemetry({
      serviceName: "gust-test",
      otlpEndpoint: otlp.url,
      env: {},
      logger: quiet,
    });
    expect(running.tracing).toBe(true);
    expect(running.tracesUrl).toBe(`${otlp.url}/v1/traces`);

    const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const root = startHttpServerSpan(
      SpanNames.invoke,
      request({ traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` }),
      "/x",
    );
    expect(root?.spanContext().traceId).toBe(callerTrace);

    const base = { "gust-request-id": "r1" };
    const carried = withTraceHeaders(root, base);
    expect(carried).not.toBe(base);
    expect(base).toEqual({ "gust-request-id": "r1" });
    expect(carried["traceparent"]).toBe(`00-${callerTrace}-${root?.spanContext().spanId}-01`);
    expect(traceHeadersOf({ ...carried, other: "x" })).toEqual({
      traceparent: carried["traceparent"],
    });

    const remote = startMessageSpan(SpanNames.workerInvoke, SpanKind.SERVER, carried);
    expect(remote?.spanContext().traceId).toBe(callerTrace);
    const handler = startChildSpan(SpanNames.handler, remote);
    const handed = sandboxTraceContext(handler!);
    const { spanId } = handler!.spanContext();
    expect(handed.traceparent).toBe(`00-${callerTrace}-${spanId}-01`);
    expect(handed.xrayTraceId).toBe(
      `Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=${spanId};Sampled=1`,
    );
    endSpan(handler);
    endSpan(remote, new Error("the worker failed"));
    endSpan(root);

    await running.flush();
    const byName = Object.fromEntries(otlp.spans.map((span) => [span["name"], span]));
    expect(byName[SpanNames.invoke]?.["parentSpanId"]).toBe("00f067aa0ba902b7");
    expect(byName[SpanNames.workerInvoke]?.["parentSpanId"]).toBe(root?.spanContext().spanId);
    expect(byName[SpanNames.handler]?.["parentSpanId"]).toBe(remote?.spanContext().spanId);
    expect(byName[SpanNames.workerInvoke]?.["status"]).toMatchObject({ code: 2 });
  });

  it("runs once per process, and can start again after shutdown", async () => {
    running = await startTelemetry({
      serviceName: "gust-test",
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      env: {},
      logger: quiet,
    });
    await expect(startTelemetry({ serviceName: "again", env: {} })).rejects.toThrow(ConfigError);
    const url = running.metricsUrl!;
    expect(metricsEnabled()).toBe(true);
    await running.shutdown();
    running = undefined;
    expect(metricsEnabled()).toBe(false);
    await expect(fetch(url)).rejects.toThrow();
    running = await startTelemetry({ serviceName: "gust-test", env: {}, logger: quiet });
  });

  it("refuses a metrics port in use, and leaves telemetry off", async () => {
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    await expect(
      startTelemetry({
        serviceName: "gust-test",
        metricsPort: port,
        metricsHost: "127.0.0.1",
        env: {},
        logger: quiet,
      }),
    ).rejects.toThrow(new RegExp(`127.0.0.1:${port}`));
    expect(metricsEnabled()).toBe(false);
    running = await startTelemetry({ serviceName: "gust-test", env: {}, logger: quiet });
  });

  it("serves what observers report, and a failing observer costs only its own series", async () => {
    running = await startTelemetry({
      serviceName: "gust-test",
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      env: {},
      logger: quiet,
    });
    const stopBroken = observeTenantLimits(() => {
      throw new Error("admission state unavailable");
    });
    const stopLimits = observeTenantLimits(() => [
      { tenantId: "acme", temporaryLimit: 120, share: 40 },
      { tenantId: "small", temporaryLimit: 10 },
    ]);
    const stopPool = observeSandboxes("w1", () => ({
      busy: 2,
      idle: 1,
      preinitialized: 3,
      warming: 0,
    }));
    try {
      const text = await (await fetch(running.metricsUrl!)).text();
      expect(text).toContain('gust_tenant_temporary_limit{tenant="acme"} 120');
      expect(text).toContain('gust_tenant_temporary_limit{tenant="small"} 10');
      expect(text).toContain('gust_tenant_share{tenant="acme"} 40');
      expect(text).not.toContain('gust_tenant_share{tenant="small"}');
      expect(text).toContain('gust_sandboxes{worker="w1",state="preinitialized"} 3');
    } finally {
      stopBroken();
      stopLimits();
      stopPool();
    }
  });
});
