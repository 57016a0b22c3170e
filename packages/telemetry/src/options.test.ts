import { ConfigError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { DEFAULT_METRICS_HOST, resolveTelemetryOptions } from "./options.js";

const resolve = (env: Record<string, string>, options: Record<string, unknown> = {}) =>
  resolveTelemetryOptions({ serviceName: "gust-frontend", env, ...options });

describe("resolveTelemetryOptions", () => {
  it("turns nothing on without an endpoint or a metrics port", () => {
    const resolved = resolve({});
    expect(resolved.tracesUrl).toBeUndefined();
    expect(resolved.metricsPort).toBeUndefined();
    expect(resolved.metricsHost).toBe(DEFAULT_METRICS_HOST);
    expect(resolved.serviceName).toBe("gust-frontend");
    expect(resolved.serviceInstanceId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("reads the OTLP endpoint variables as the OpenTelemetry specification defines them", () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318" }).tracesUrl).toBe(
      "http://jaeger:4318/v1/traces",
    );
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector/otlp/" }).tracesUrl).toBe(
      "http://collector/otlp/v1/traces",
    );
    // The traces-specific variable is the full URL, used as it is, and wins.
    expect(
      resolve({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/custom",
      }).tracesUrl,
    ).toBe("https://traces.example/custom");
    expect(
      resolve(
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318" },
        { otlpEndpoint: "http://127.0.0.1:1234" },
      ).tracesUrl,
    ).toBe("http://127.0.0.1:1234/v1/traces");
  });

  it("keeps tracing off when the SDK or the traces exporter is switched off", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318" };
    expect(resolve({ ...endpoint, OTEL_SDK_DISABLED: "true" }).tracesUrl).toBeUndefined();
    expect(resolve({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }).tracesUrl).toBeUndefined();
  });

  it("takes the metrics port and host from GUST_METRICS_PORT and GUST_METRICS_HOST", () => {
    const resolved = resolve({ GUST_METRICS_PORT: "9464", GUST_METRICS_HOST: "127.0.0.1" });
    expect(resolved.metricsPort).toBe(9464);
    expect(resolved.metricsHost).toBe("127.0.0.1");
    expect(resolve({ GUST_METRICS_PORT: "9464" }, { metricsPort: 0 }).metricsPort).toBe(0);
  });

  it("lets OTEL_SERVICE_NAME name the service", () => {
    expect(resolve({ OTEL_SERVICE_NAME: "edge-frontend" }).serviceName).toBe("edge-frontend");
  });

  it("names the setting at fault", () => {
    const cases: Array<[Record<string, string>, Record<string, unknown>, RegExp]> = [
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "jaeger:4318" }, {}, /OTEL_EXPORTER_OTLP_ENDPOINT/],
      [
        { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "not a url" },
        {},
        /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/,
      ],
      [{}, { otlpEndpoint: "ftp://x" }, /otlpEndpoint/],
      [{ GUST_METRICS_PORT: "http" }, {}, /GUST_METRICS_PORT/],
      [{}, { metricsPort: 70_000 }, /metricsPort/],
      [{}, { serviceName: " " }, /serviceName/],
    ];
    for (const [env, options, message] of cases) {
      expect(() => resolve(env, options)).toThrow(ConfigError);
      expect(() => resolve(env, options)).toThrow(message);
    }
  });
});
