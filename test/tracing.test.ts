/**
 * One trace per invocation, in both modes: `gust dev` (in-memory bus) and a
 * fleet on a real nats-server, where the trace context crosses NATS in
 * message headers and JetStream carries it with queued Event invocations.
 *
 * The test runs its own OTLP/HTTP receiver; telemetry exports to it as it
 * would to Jaeger. Each invocation is driven by the AWS SDK, and the handler
 * returns (or, for Event, posts) the trace context its sandbox was handed.
 */
import { randomBytes } from "node:crypto";
import {
  CreateFunctionCommand,
  InvokeCommand,
  LambdaClient,
  PutFunctionConcurrencyCommand,
} from "@aws-sdk/client-lambda";
import { startTelemetry, type Telemetry } from "@gust/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODES, startGust, type TestGust } from "./support/gust.js";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { startNotifyServer, type NotifyServer, CALLS_BACK_TO_THE_HOST } from "./support/notify.js";
import {
  OtlpKinds,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from "./support/otlp-receiver.js";
import { expectConnected, only, parentName, SYNC_SPANS } from "./support/traces.js";
import { signedFetch } from "./support/signed-fetch.js";
import {
  parseTraceparent,
  traceHandlerZip,
  type SeenTrace as Seen,
} from "./support/trace-handler.js";
import { testTenant } from "./support/tenants.js";

/** Random ids, so that no two tests (or modes) share a trace. */
const hex = (bytes: number) => randomBytes(bytes).toString("hex");

describe("tracing", () => {
  let receiver: OtlpReceiver;
  let telemetry: Telemetry;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    telemetry = await startTelemetry({
      serviceName: "gust-test",
      otlpEndpoint: receiver.endpoint,
      env: {},
    });
  });

  afterAll(async () => {
    await telemetry?.shutdown();
    await receiver?.close();
  });

  /** The spans of one trace, flushing until those named are all there. */
  async function traceOf(traceId: string, names: string[]): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      await telemetry.flush();
      const spans = receiver.spans().filter((span) => span.traceId === traceId);
      if (names.every((name) => spans.some((span) => span.name === name))) return spans;
      if (Date.now() > deadline) {
        throw new Error(
          `trace ${traceId} lacks some of ${names.join(", ")}: ${JSON.stringify(spans.map((s) => s.name))}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  describe.each(MODES)("gust %s", (mode) => {
    const acme = testTenant("acme");
    let gust: TestGust;
    let lambda: LambdaClient;
    let notify: NotifyServer;

    beforeAll(async () => {
      // Handlers report Event runs to a server on the host's loopback, which a jail refuses.
      gust = await startGust(mode, { tenants: [acme], worker: CALLS_BACK_TO_THE_HOST });
      lambda = lambdaFor(gust.url, acme);
      notify = await startNotifyServer();
      const zip = await traceHandlerZip();
      for (const name of ["traced", "stopped"]) {
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
    });

    afterAll(async () => {
      lambda?.destroy();
      await notify?.close();
      await gust?.close();
    });

    async function invokeTraced(): Promise<Seen> {
      const result = await lambda.send(
        new InvokeCommand({ FunctionName: "traced", Payload: new TextEncoder().encode("{}") }),
      );
      expect(result.FunctionError).toBeUndefined();
      return decodePayload(result.Payload) as Seen;
    }

    it("makes one connected trace of an invocation, and hands the handler its context", async () => {
      const seen = await invokeTraced();
      const { traceId, spanId } = parseTraceparent(seen.traceparent);
      // Lambda's X-Ray header: the same trace id, split at 8 hex digits, and the same parent.
      expect(seen.xray).toBe(
        `Root=1-${traceId.slice(0, 8)}-${traceId.slice(8)};Parent=${spanId};Sampled=1`,
      );

      const spans = await traceOf(traceId, SYNC_SPANS);
      const root = expectConnected(spans);
      expect(root.name).toBe("gust.invoke");
      for (const name of SYNC_SPANS) only(spans, name);

      const invoke = only(spans, "gust.invoke");
      expect(invoke.kind).toBe(OtlpKinds.server);
      expect(invoke.service).toBe("gust-test");
      expect(invoke.attributes).toMatchObject({
        "gust.tenant.id": "acme",
        "faas.name": "traced",
        "gust.invocation.type": "RequestResponse",
        "gust.admission.decision": "admitted",
        "gust.invocation.outcome": "success",
        "http.request.method": "POST",
        "http.route": "/2015-03-31/functions/:name/invocations",
        "http.response.status_code": 200,
      });
      const request = only(spans, "gust.worker.request");
      expect(request.kind).toBe(OtlpKinds.client);
      expect(parentName(spans, request)).toBe("gust.invoke");
      // gust dev's worker shares the frontend's process: no bus between them.
      expect(request.attributes["messaging.system"]).toBe(mode === "dev" ? "in-process" : "nats");

      const worker = only(spans, "gust.worker.invoke");
      expect(worker.kind).toBe(OtlpKinds.server);
      expect(parentName(spans, worker)).toBe("gust.worker.request");
      expect(worker.attributes["faas.invocation_id"]).toBe(invoke.attributes["faas.invocation_id"]);
      expect(["preinitialized", "cold"]).toContain(worker.attributes["gust.sandbox.start"]);
      expect(worker.attributes["faas.coldstart"]).toBe(true);
      expect(worker.attributes["gust.invocation.outcome"]).toBe("success");
      expect(parentName(spans, only(spans, "gust.sandbox.acquire"))).toBe("gust.worker.invoke");

      // The sandbox was handed the handler span's own context.
      const handler = only(spans, "gust.handler");
      expect(handler.spanId).toBe(spanId);
      expect(parentName(spans, handler)).toBe("gust.worker.invoke");
      expect(handler.statusCode).not.toBe(2);
    });

    it("traces a warm invocation as a trace of its own", async () => {
      const first = parseTraceparent((await invokeTraced()).traceparent);
      const second = parseTraceparent((await invokeTraced()).traceparent);
      expect(second.traceId).not.toBe(first.traceId);
      const spans = await traceOf(second.traceId, SYNC_SPANS);
      expectConnected(spans);
      const worker = only(spans, "gust.worker.invoke");
      expect(worker.attributes["gust.sandbox.start"]).toBe("warm");
      expect(worker.attributes["faas.coldstart"]).toBe(false);
      expect(spans.some((span) => span.name === "gust.sandbox.init")).toBe(false);
    });

    it("continues the trace a load balancer or client started with traceparent", async () => {
      const callerTrace = hex(16);
      const callerSpan = hex(8);
      const response = await signedFetch(
        gust.url,
        acme,
        "POST",
        "/2015-03-31/functions/traced/invocations",
        "{}",
        { traceparent: `00-${callerTrace}-${callerSpan}-01` },
      );
      expect(response.status).toBe(200);
      const seen = JSON.parse(response.body) as Seen;
      expect(parseTraceparent(seen.traceparent).traceId).toBe(callerTrace);
      const spans = await traceOf(callerTrace, SYNC_SPANS);
      const root = expectConnected(spans, callerSpan);
      expect(root.name).toBe("gust.invoke");
    });

    it("continues an AWS client's X-Amzn-Trace-Id when there is no traceparent", async () => {
      const [epoch, rest, parent] = [hex(4), hex(12), hex(8)];
      const response = await signedFetch(
        gust.url,
        acme,
        "POST",
        "/2015-03-31/functions/traced/invocations",
        "{}",
        { "x-amzn-trace-id": `Root=1-${epoch}-${rest};Parent=${parent};Sampled=1` },
      );
      expect(response.status).toBe(200);
      const seen = JSON.parse(response.body) as Seen;
      const { spanId } = parseTraceparent(seen.traceparent);
      expect(seen.xray).toBe(`Root=1-${epoch}-${rest};Parent=${spanId};Sampled=1`);
      const spans = await traceOf(`${epoch}${rest}`, SYNC_SPANS);
      expect(expectConnected(spans, parent).name).toBe("gust.invoke");
    });

    it("joins an Event invocation's run to the trace of the request that queued it", async () => {
      const result = await lambda.send(
        new InvokeCommand({
          FunctionName: "traced",
          InvocationType: "Event",
          Payload: new TextEncoder().encode(JSON.stringify({ notify: notify.url })),
        }),
      );
      expect(result.StatusCode).toBe(202);
      await notify.waitFor(1);
      const seen = notify.received[0]!.event as unknown as Seen;
      const { traceId, spanId } = parseTraceparent(seen.traceparent);
      const spans = await traceOf(traceId, ["gust.event.dispatch", ...SYNC_SPANS]);
      expectConnected(spans);

      const request = only(spans, "gust.invoke");
      expect(request.attributes["gust.invocation.type"]).toBe("Event");
      expect(request.attributes["http.response.status_code"]).toBe(202);
      const dispatch = only(spans, "gust.event.dispatch");
      expect(dispatch.kind).toBe(OtlpKinds.consumer);
      expect(dispatch.parentSpanId).toBe(request.spanId);
      expect(dispatch.attributes).toMatchObject({
        "gust.event.attempt": 1,
        "gust.admission.decision": "admitted",
        "gust.invocation.outcome": "success",
      });
      expect(parentName(spans, only(spans, "gust.worker.request"))).toBe("gust.event.dispatch");
      expect(only(spans, "gust.handler").spanId).toBe(spanId);
    });

    it("records a throttle's admission decision and reason on the request's span", async () => {
      const callerTrace = hex(16);
      const response = await signedFetch(
        gust.url,
        acme,
        "POST",
        "/2015-03-31/functions/stopped/invocations",
        "{}",
        { traceparent: `00-${callerTrace}-${hex(8)}-01` },
      );
      expect(response.status).toBe(429);
      const spans = await traceOf(callerTrace, ["gust.invoke"]);
      expect(spans.map((span) => span.name)).toEqual(["gust.invoke"]);
      expect(spans[0]!.attributes).toMatchObject({
        "gust.admission.decision": "throttled",
        "gust.admission.reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        "http.response.status_code": 429,
      });
      // A throttle is the caller's limit, not a fault of Gust's.
      expect(spans[0]!.statusCode).not.toBe(2);
    });
  });

  it("sends OTLP as JSON over HTTP", () => {
    expect(receiver.contentTypes().length).toBeGreaterThan(0);
    expect(receiver.contentTypes().every((type) => type.startsWith("application/json"))).toBe(true);
  });
});
