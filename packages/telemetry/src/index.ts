/**
 * @module
 * Observability shared by Gust's services: the structured logger, and
 * OpenTelemetry tracing and metrics (startTelemetry, the spans of an
 * invocation, the trace context handed to sandboxes, Prometheus metrics).
 */
export { createLogger, LogLevels } from "./logger.js";
export { startTelemetry, TELEMETRY_SHUTDOWN_TIMEOUT_MS } from "./telemetry.js";
export {
  resolveTelemetryOptions,
  DEFAULT_METRICS_HOST,
  METRICS_PATH,
  OTLP_TRACES_PATH,
  TelemetryEnv,
} from "./options.js";
export {
  SpanNames,
  SpanAttributes,
  tracingEnabled,
  startHttpServerSpan,
  startMessageSpan,
  startChildSpan,
  withTraceHeaders,
  traceHeadersOf,
  sandboxTraceContext,
  endSpan,
  failSpan,
} from "./tracing.js";
export {
  toXRayTraceHeader,
  toTraceparent,
  parseXRayTraceHeader,
  XRayIdGenerator,
} from "./trace-context.js";
export {
  MetricNames,
  countInflight,
  countInvocation,
  countThrottle,
  countSandboxStart,
  countRolloutVerdict,
  observeSandboxes,
  observeTenantLimits,
  metricsEnabled,
} from "./metrics.js";
export { SpanKind } from "@opentelemetry/api";

export type { Logger, LogLevel, LogFields, LoggerOptions } from "./logger.js";
export type { Telemetry } from "./telemetry.js";
export type { TelemetryOptions, ResolvedTelemetryOptions } from "./options.js";
export type {
  SpanName,
  HttpHeaders,
  HttpRequest,
  MessageHeaders,
  SandboxTraceContext,
} from "./tracing.js";
export type { SandboxCounts, TenantLimitSample } from "./metrics.js";
export type { Span, SpanContext } from "@opentelemetry/api";
