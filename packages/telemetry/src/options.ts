/**
 * What a process's telemetry does, from its options and the environment.
 *
 * Tracing is on only when an OTLP endpoint is named: by the `otlpEndpoint`
 * option, or by the standard variables OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * (the full URL of the traces endpoint) or OTEL_EXPORTER_OTLP_ENDPOINT (a base
 * URL, to which `/v1/traces` is added), as the OpenTelemetry specification
 * defines them. OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it
 * off again. Metrics are served only when a port is named (`metricsPort` or
 * GUST_METRICS_PORT).
 *
 * Reference: https://opentelemetry.io/docs/specs/otel/protocol/exporter/
 */
import { randomUUID } from "node:crypto";
import { ConfigError } from "@gust/protocol";
import { createLogger, type Logger } from "./logger.js";

/** Where the Prometheus endpoint listens when no host is given: every interface, for a scraper elsewhere. */
export const DEFAULT_METRICS_HOST = "0.0.0.0";
/** The path Prometheus scrapes. */
export const METRICS_PATH = "/metrics";
/** The OTLP/HTTP path of spans under a base endpoint. */
export const OTLP_TRACES_PATH = "/v1/traces";

export const TelemetryEnv = {
  otlpEndpoint: "OTEL_EXPORTER_OTLP_ENDPOINT",
  otlpTracesEndpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  sdkDisabled: "OTEL_SDK_DISABLED",
  tracesExporter: "OTEL_TRACES_EXPORTER",
  serviceName: "OTEL_SERVICE_NAME",
  metricsPort: "GUST_METRICS_PORT",
  metricsHost: "GUST_METRICS_HOST",
} as const;

export interface TelemetryOptions {
  /** `service.name` of everything this process exports, e.g. "gust-frontend". OTEL_SERVICE_NAME wins when set. */
  serviceName: string;
  /** `service.instance.id`, e.g. the worker's id. @default a random UUID */
  serviceInstanceId?: string;
  /** `service.version`. @default none */
  serviceVersion?: string;
  /**
   * Base URL of an OTLP/HTTP receiver (Jaeger, an OpenTelemetry Collector),
   * e.g. `http://127.0.0.1:4318`; spans are posted as JSON to `<url>/v1/traces`.
   * @default from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; without either, no tracing
   */
  otlpEndpoint?: string;
  /** Serve Prometheus metrics on this port; 0 picks a free one. @default GUST_METRICS_PORT; without it, no metrics */
  metricsPort?: number;
  /** @default GUST_METRICS_HOST, else DEFAULT_METRICS_HOST */
  metricsHost?: string;
  /** The variables read. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** @default createLogger("telemetry") */
  logger?: Logger;
}

export interface ResolvedTelemetryOptions {
  serviceName: string;
  serviceInstanceId: string;
  serviceVersion: string | undefined;
  /** The full URL spans are posted to; undefined when tracing is off. */
  tracesUrl: string | undefined;
  /** undefined when metrics are off. */
  metricsPort: number | undefined;
  metricsHost: string;
  logger: Logger;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

function httpUrl(value: string, property: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new ConfigError(`${property} must be an http(s) URL, got ${JSON.stringify(value)}`, {
      cause: error,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${property} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  return url;
}

/** A base endpoint plus the traces path, as the specification says for OTEL_EXPORTER_OTLP_ENDPOINT. */
function tracesUnder(base: string, property: string): string {
  const url = httpUrl(base, property);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}${OTLP_TRACES_PATH}${url.search}`;
}

function resolveTracesUrl(
  options: TelemetryOptions,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const explicit = nonEmpty(options.otlpEndpoint);
  if (explicit !== undefined) return tracesUnder(explicit, "otlpEndpoint");
  if (nonEmpty(env[TelemetryEnv.sdkDisabled])?.toLowerCase() === "true") return undefined;
  if (nonEmpty(env[TelemetryEnv.tracesExporter])?.toLowerCase() === "none") return undefined;
  const traces = nonEmpty(env[TelemetryEnv.otlpTracesEndpoint]);
  if (traces !== undefined) return httpUrl(traces, TelemetryEnv.otlpTracesEndpoint).href;
  const base = nonEmpty(env[TelemetryEnv.otlpEndpoint]);
  return base === undefined ? undefined : tracesUnder(base, TelemetryEnv.otlpEndpoint);
}

function port(value: number | string, property: string): number {
  const parsed = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) {
    throw new ConfigError(`${property} must be a port number (0–65535), got ${String(value)}`);
  }
  return parsed;
}

export function resolveTelemetryOptions(options: TelemetryOptions): ResolvedTelemetryOptions {
  const env = options.env ?? process.env;
  const serviceName = nonEmpty(env[TelemetryEnv.serviceName]) ?? nonEmpty(options.serviceName);
  if (serviceName === undefined) throw new ConfigError("serviceName must not be empty");
  const envPort = nonEmpty(env[TelemetryEnv.metricsPort]);
  const metricsPort =
    options.metricsPort !== undefined
      ? port(options.metricsPort, "metricsPort")
      : envPort === undefined
        ? undefined
        : port(envPort, TelemetryEnv.metricsPort);
  return {
    serviceName,
    serviceInstanceId: nonEmpty(options.serviceInstanceId) ?? randomUUID(),
    serviceVersion: nonEmpty(options.serviceVersion),
    tracesUrl: resolveTracesUrl(options, env),
    metricsPort,
    metricsHost:
      nonEmpty(options.metricsHost) ??
      nonEmpty(env[TelemetryEnv.metricsHost]) ??
      DEFAULT_METRICS_HOST,
    logger: options.logger ?? createLogger("telemetry"),
  };
}
