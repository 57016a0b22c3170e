import { TraceFlags } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import {
  parseXRayTraceHeader,
  toTraceparent,
  toXRayTraceHeader,
  XRayIdGenerator,
} from "./trace-context.js";

const context = {
  traceId: "5759e988bd862e3fe1be46a994272793",
  spanId: "53995c3f42cd8ad8",
  traceFlags: TraceFlags.SAMPLED,
};

describe("X-Ray and W3C trace headers", () => {
  it("spells one span context both ways, as Lambda and OpenTelemetry expect", () => {
    expect(toXRayTraceHeader(context)).toBe(
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    );
    expect(toTraceparent(context)).toBe("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    const unsampled = { ...context, traceFlags: TraceFlags.NONE };
    expect(toXRayTraceHeader(unsampled)).toMatch(/;Sampled=0$/);
    expect(toTraceparent(unsampled)).toMatch(/-00$/);
  });

  it("reads back what it writes, in any field order and case", () => {
    expect(parseXRayTraceHeader(toXRayTraceHeader(context))).toEqual({
      ...context,
      isRemote: true,
    });
    expect(
      parseXRayTraceHeader(
        "Sampled=0; Parent=53995C3F42CD8AD8; Root=1-5759E988-BD862E3FE1BE46A994272793; Lineage=a:1",
      ),
    ).toEqual({ ...context, traceFlags: TraceFlags.NONE, isRemote: true });
  });

  it("finds no parent in headers that name none or are malformed", () => {
    for (const value of [
      "",
      "Root=1-5759e988-bd862e3fe1be46a994272793",
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=",
      "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
      "Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
      "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8",
      "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
      "garbage;;==;",
    ]) {
      expect(parseXRayTraceHeader(value), value).toBeUndefined();
    }
  });

  it("makes trace ids whose first 8 hex digits are the time in epoch seconds, as X-Ray requires", () => {
    const ids = new XRayIdGenerator();
    const before = Math.floor(Date.now() / 1000);
    const traceIds = Array.from({ length: 50 }, () => ids.generateTraceId());
    const after = Math.floor(Date.now() / 1000);
    for (const id of traceIds) {
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      const seconds = Number.parseInt(id.slice(0, 8), 16);
      expect(seconds).toBeGreaterThanOrEqual(before);
      expect(seconds).toBeLessThanOrEqual(after);
    }
    expect(new Set(traceIds).size).toBe(traceIds.length);
    const spanIds = Array.from({ length: 50 }, () => ids.generateSpanId());
    for (const id of spanIds) expect(id).toMatch(/^(?!0{16})[0-9a-f]{16}$/);
    expect(new Set(spanIds).size).toBe(spanIds.length);
  });
});
