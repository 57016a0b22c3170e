/**
 * The local fleet traced end to end: invocations sent through its load
 * balancer, every process (frontends, workers, coordinator) exporting OTLP
 * to a receiver this test runs, as they would to Jaeger. Each invocation
 * must be one connected trace: the frontend's request span at the root, the
 * NATS request to the worker, the worker's spans, and the handler's run in
 * the sandbox, whose own trace context (what the handler was handed) is the
 * handler span's.
 *
 * HAProxy adds no `traceparent`: it records no span of its own, so a trace id
 * it made up would leave every trace with a root whose parent Jaeger cannot
 * find. The frontend starts the trace, and its root has no parent.
 */
import { CreateFunctionCommand, InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import {
  HAPROXY_INSTALL_HINT,
  findHaproxyBinary,
  startLocalFleet,
  type LocalFleet,
} from "@gust/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodePayload, lambdaFor } from "./support/lambda.js";
import { recordServedBy } from "./support/load.js";
import {
  startNotifyServer,
  type NotifyServer,
  CALLS_BACK_TO_THE_HOST_FLEET,
} from "./support/notify.js";
import { OtlpKinds, startOtlpReceiver, type OtlpReceiver } from "./support/otlp-receiver.js";
import { parseTraceparent, traceHandlerZip, type SeenTrace } from "./support/trace-handler.js";
import { expectConnected, only, parentName, SYNC_SPANS } from "./support/traces.js";

const haproxy = await findHaproxyBinary();

describe.skipIf(haproxy === undefined)(
  haproxy === undefined ? `fleet tracing (skipped: ${HAPROXY_INSTALL_HINT})` : "fleet tracing",
  () => {
    let fleet: LocalFleet;
    let receiver: OtlpReceiver;
    let notify: NotifyServer;
    let lambda: LambdaClient;

    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      notify = await startNotifyServer();
      fleet = await startLocalFleet({
        port: 0,
        frontends: 2,
        workers: 2,
        pool: 1,
        healthCheckIntervalMs: 250,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          // Export within a fraction of a second rather than OpenTelemetry's 5 s.
          OTEL_BSP_SCHEDULE_DELAY: "200",
        },
        // Handlers report Event runs to a server on the host's loopback, which a jail refuses.
        ...CALLS_BACK_TO_THE_HOST_FLEET,
      });
      if (fleet.tenant === undefined) throw new Error("the fleet generated no tenant");
      lambda = lambdaFor(fleet.url, fleet.tenant);
      recordServedBy(lambda);
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: "traced",
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: "arn:aws:iam::000000000000:role/test",
          Code: { ZipFile: await traceHandlerZip() },
        }),
      );
    }, 180_000);

    afterAll(async () => {
      lambda?.destroy();
      await fleet?.stop();
      await receiver?.close();
      await notify?.close();
    }, 60_000);

    it("makes one connected trace of each invocation across frontend, worker and sandbox", async () => {
      const invocations = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const output = await lambda.send(
            new InvokeCommand({ FunctionName: "traced", Payload: new TextEncoder().encode("{}") }),
          );
          expect(output.FunctionError).toBeUndefined();
          return {
            seen: decodePayload(output.Payload) as SeenTrace,
            servedBy: (output as { servedBy?: string }).servedBy,
            requestId: output.$metadata.requestId,
          };
        }),
      );
      // Through the load balancer, to both frontends.
      expect(new Set(invocations.map((invocation) => invocation.servedBy))).toEqual(
        new Set(["fe1", "fe2"]),
      );

      const traceIds = new Set<string>();
      for (const { seen, requestId } of invocations) {
        const { traceId, spanId } = parseTraceparent(seen.traceparent);
        traceIds.add(traceId);
        const spans = await receiver.waitForTrace(traceId, (found) =>
          SYNC_SPANS.every((name) => found.some((span) => span.name === name)),
        );
        const root = expectConnected(spans);
        expect(root.name).toBe("gust.invoke");
        expect(root.kind).toBe(OtlpKinds.server);
        expect(root.service).toBe("gust-frontend");
        expect(root.attributes["faas.invocation_id"]).toBe(requestId);
        expect(only(spans, "gust.worker.request").service).toBe("gust-frontend");
        const onWorker = only(spans, "gust.worker.invoke");
        expect(onWorker.service).toBe("gust-worker");
        expect(parentName(spans, onWorker)).toBe("gust.worker.request");
        expect(["w1", "w2"]).toContain(onWorker.attributes["gust.worker.id"]);
        // The sandbox ran under the handler span: its context is the one it was handed.
        const handler = only(spans, "gust.handler");
        expect(handler.spanId).toBe(spanId);
        expect(parentName(spans, handler)).toBe("gust.worker.invoke");
        expect(spans.every((span) => span.statusCode !== 2)).toBe(true);
      }
      // One trace per invocation.
      expect(traceIds.size).toBe(invocations.length);
    });

    it("joins a queued Event invocation's run to the trace of the request that queued it", async () => {
      const output = await lambda.send(
        new InvokeCommand({
          FunctionName: "traced",
          InvocationType: "Event",
          Payload: new TextEncoder().encode(JSON.stringify({ notify: notify.url })),
        }),
      );
      expect(output.StatusCode).toBe(202);
      await notify.waitFor(1);
      const seen = notify.received[0]!.event as unknown as SeenTrace;
      const { traceId, spanId } = parseTraceparent(seen.traceparent);
      const spans = await receiver.waitForTrace(traceId, (found) =>
        ["gust.event.dispatch", ...SYNC_SPANS].every((name) =>
          found.some((span) => span.name === name),
        ),
      );
      expect(expectConnected(spans).name).toBe("gust.invoke");
      expect(only(spans, "gust.invoke").attributes["http.response.status_code"]).toBe(202);
      expect(parentName(spans, only(spans, "gust.event.dispatch"))).toBe("gust.invoke");
      expect(only(spans, "gust.handler").spanId).toBe(spanId);
    });
  },
);
