import { decodeRecord, encodeRecord } from "@gust/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AdmissionController } from "./controller.js";
import { DEMAND_REPORT_TYPE, parseDemandReport } from "./report.js";
import { reportFromWire, reportToWire } from "./wire.js";

describe("demand reports", () => {
  it("survive msgpack and carry only the tenants that are active", () => {
    const c = new AdmissionController({ frontendId: "fe-a" });
    c.setTenant("idle", { maxConcurrency: 10 });
    c.tryAdmit("busy", "fn", 10);
    const report = c.demandReport(100);
    expect(report).toMatchObject({
      type: DEMAND_REPORT_TYPE,
      frontendId: "fe-a",
      seq: 1,
      intervalMs: 100,
    });
    expect(report.pools.map((p) => p[0])).toEqual(["busy"]);
    const decoded = parseDemandReport(decodeRecord(encodeRecord(report)));
    expect(decoded).toEqual(report);
    const overTheWire = parseDemandReport(
      reportFromWire(decodeRecord(encodeRecord(reportToWire(report)))),
    );
    expect(overTheWire).toEqual(report);
  });

  it("cost about 25 bytes per active tenant on the wire: under 260 KB per round for 10,000 tenants", () => {
    const c = new AdmissionController({ frontendId: "frontend-7f3a9c" });
    for (let i = 0; i < 10_000; i++) {
      for (let k = 0; k <= i % 40; k++)
        c.tryAdmit(`tenant-${String(i).padStart(5, "0")}`, "fn", 10);
    }
    const report = c.demandReport(100);
    expect(report.pools).toHaveLength(10_000);
    const bytes = encodeRecord(reportToWire(report)).byteLength;
    expect(bytes).toBeLessThan(260_000);
    expect(bytes).toBeGreaterThan(200_000);
  });

  it("parse nothing that is not a report, and never throw", () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(parseDemandReport(value)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
    const good = {
      type: DEMAND_REPORT_TYPE,
      frontendId: "x",
      seq: 1,
      intervalMs: 100,
      acks: [],
      loansSettledThrough: 0,
      pools: [],
    };
    expect(parseDemandReport(good)).toEqual(good);
    for (const bad of [
      { ...good, seq: -1 },
      { ...good, seq: 1.5 },
      { ...good, intervalMs: 0 },
      { ...good, frontendId: "" },
      { ...good, frontendId: "x".repeat(300) },
      { ...good, pools: {} },
      { ...good, acks: undefined },
      { ...good, loansSettledThrough: Number.NaN },
      { ...good, type: "worker.heartbeat" },
    ]) {
      expect(parseDemandReport(bad)).toBeUndefined();
    }
    // Entries that make no sense are dropped one by one.
    const mixed = parseDemandReport({
      ...good,
      acks: [["y", 3], ["z"], 7],
      pools: [
        ["t", "", 1, 2, 3, 4],
        ["t", "", -1, 2, 3, 4],
      ],
    });
    expect(mixed?.acks).toEqual([["y", 3]]);
    expect(mixed?.pools).toEqual([["t", "", 1, 2, 3, 4]]);
  });
});
