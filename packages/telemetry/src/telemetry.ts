/**
 * startTelemetry: OpenTelemetry for one Gust process, called once by the
 * `gust` command (or a test) before the services start.
 *
 * With tracing off (no OTLP endpoint) the SDK is not even loaded: the
 * packages are imported on demand, and the span helpers in tracing.ts return
 * at their first line. Spans are batched and posted as OTLP/JSON over HTTP,
 * which Jaeger (4318) and the OpenTelemetry Collector accept as they are.
 *
 * Metrics go to a Prometheus exporter that renders on each scrape; it is
 * served from a node:http server of ours rather than the exporter's own so
 * that port 0 works and the bound address is known.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { DiagLogLevel, diag, metrics, propagation, trace } from "@opentelemetry/api";
import type { Attributes, DiagLogger } from "@opentelemetry/api";
import { ConfigError } from "@gust/protocol";
import {
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_NAMESPACE,
  ATTR_SERVICE_VERSION,
} from "@opentelemetry/semantic-conventions";
import type { Logger } from "./logger.js";
import { startMetrics, stopMetrics } from "./metrics.js";
import { METRICS_PATH, resolveTelemetryOptions } from "./options.js";
import type { ResolvedTelemetryOptions, TelemetryOptions } from "./options.js";
import { XRayIdGenerator } from "./trace-context.js";
import { setActiveTracing } from "./tracing.js";

export interface Telemetry {
  /** Whether spans are recorded and exported. */
  readonly tracing: boolean;
  /** The URL spans are posted to, when tracing. */
  readonly tracesUrl: string | undefined;
  /** The Prometheus endpoint (`http://host:port/metrics`), when metrics are served. */
  readonly metricsUrl: string | undefined;
  /** Export every span ended so far. */
  flush(): Promise<void>;
  /** Flush, stop exporting and serving; telemetry in this process is off again. Idempotent. */
  shutdown(): Promise<void>;
}

interface Part {
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

let running = false;

/**
 * How long shutdown waits for the last spans to be exported. A process
 * stopping while its collector is unreachable must not hang on it.
 */
export const TELEMETRY_SHUTDOWN_TIMEOUT_MS = 5_000;

/** OpenTelemetry's own warnings (e.g. a failed export) go to Gust's log. */
function diagLogger(logger: Logger): DiagLogger {
  const ignore = () => undefined;
  const warn = (message: string, ...args: unknown[]) =>
    logger.warn(`opentelemetry: ${message}`, args.length > 0 ? { details: args.map(String) } : {});
  return { error: warn, warn, info: ignore, debug: ignore, verbose: ignore };
}

function resourceAttributes(options: ResolvedTelemetryOptions): Attributes {
  return {
    [ATTR_SERVICE_NAME]: options.serviceName,
    [ATTR_SERVICE_INSTANCE_ID]: options.serviceInstanceId,
    [ATTR_SERVICE_NAMESPACE]: "gust",
    ...(options.serviceVersion === undefined
      ? {}
      : { [ATTR_SERVICE_VERSION]: options.serviceVersion }),
  };
}

async function startTracing(options: ResolvedTelemetryOptions, tracesUrl: string): Promise<Part> {
  const [
    { BasicTracerProvider, BatchSpanProcessor },
    { OTLPTraceExporter },
    { resourceFromAttributes },
    { W3CTraceContextPropagator },
  ] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/core"),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resourceAttributes(options)),
    idGenerator: new XRayIdGenerator(),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }))],
  });
  const propagator = new W3CTraceContextPropagator();
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(propagator);
  setActiveTracing({ tracer: provider.getTracer("@gust/telemetry"), propagator });
  return {
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      setActiveTracing(undefined);
      await provider.shutdown();
      trace.disable();
      propagation.disable();
    },
  };
}

async function startMetricsServer(
  options: ResolvedTelemetryOptions,
  port: number,
): Promise<Part & { url: string }> {
  const [{ MeterProvider }, { PrometheusExporter }, { resourceFromAttributes }] = await Promise.all(
    [
      import("@opentelemetry/sdk-metrics"),
      import("@opentelemetry/exporter-prometheus"),
      import("@opentelemetry/resources"),
    ],
  );
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes(resourceAttributes(options)),
    readers: [exporter],
  });
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "").split("?", 1)[0];
    if (request.method !== "GET" || path !== METRICS_PATH) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    try {
      exporter.getMetricsRequestHandler(request, response);
    } catch (error) {
      options.logger.warn("could not render metrics", { error });
      if (!response.headersSent) response.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new ConfigError(
          `cannot serve metrics on ${options.metricsHost}:${port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(port, options.metricsHost, () => resolve());
  });
  metrics.setGlobalMeterProvider(provider);
  startMetrics(provider.getMeter("@gust/telemetry"), options.logger);
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}${METRICS_PATH}`,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      stopMetrics();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await provider.shutdown();
      metrics.disable();
    },
  };
}

/**
 * Start this process's tracing and metrics as the options and environment
 * say. Throws ConfigError for a bad endpoint or port, or when telemetry is
 * already running in the process.
 */
export async function startTelemetry(telemetryOptions: TelemetryOptions): Promise<Telemetry> {
  const options = resolveTelemetryOptions(telemetryOptions);
  if (running) throw new ConfigError("telemetry is already running in this process");
  running = true;
  const parts: Part[] = [];
  try {
    diag.setLogger(diagLogger(options.logger), DiagLogLevel.WARN);
    const { tracesUrl, metricsPort } = options;
    if (tracesUrl !== undefined) parts.push(await startTracing(options, tracesUrl));
    let metricsUrl: string | undefined;
    if (metricsPort !== undefined) {
      const served = await startMetricsServer(options, metricsPort);
      metricsUrl = served.url;
      parts.push(served);
    }
    options.logger.info("telemetry started", {
      service: options.serviceName,
      tracesUrl: tracesUrl ?? null,
      metricsUrl: metricsUrl ?? null,
    });
    let stopped: Promise<void> | undefined;
    return {
      tracing: tracesUrl !== undefined,
      tracesUrl,
      metricsUrl,
      flush: async () => {
        await Promise.all(parts.map((part) => part.flush()));
      },
      shutdown: () => {
        stopped ??= stop(parts, options.logger);
        return stopped;
      },
    };
  } catch (error) {
    await stop(parts, options.logger);
    throw error;
  }
}

async function stop(parts: Part[], logger: Logger): Promise<void> {
  for (const part of parts) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        logger.warn("telemetry shutdown timed out; unexported spans are dropped", {
          timeoutMs: TELEMETRY_SHUTDOWN_TIMEOUT_MS,
        });
        resolve();
      }, TELEMETRY_SHUTDOWN_TIMEOUT_MS);
      timer.unref();
    });
    await Promise.race([
      part.shutdown().catch((error: unknown) => {
        logger.warn("telemetry did not shut down cleanly", { error });
      }),
      timeout,
    ]);
    clearTimeout(timer);
  }
  diag.disable();
  running = false;
}
