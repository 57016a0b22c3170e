import { decodeRecord, encodeRecord } from "@gust/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoanMessageTypes, parseLoanMessage, type LoanMessage } from "./loans.js";
import { DEMAND_REPORT_TYPE, parseDemandReport, type DemandReport } from "./report.js";
import { loanFromWire, loanToWire, reportFromWire, reportSender, reportToWire } from "./wire.js";

const report: DemandReport = {
  type: DEMAND_REPORT_TYPE,
  frontendId: "fe1-3f9c2a",
  seq: 123_456,
  intervalMs: 100,
  acks: [
    ["fe2-0a1b2c", 123_450],
    ["fe3-77aa4c", 123_451],
  ],
  loansSettledThrough: 12_300,
  pools: [
    ["acme", "", 72, 71.53, 70, 77],
    ["acme", "reserved-fn", 3, 2.5, 2, 10],
  ],
};

const loan: LoanMessage = {
  type: LoanMessageTypes.grant,
  from: "fe1-3f9c2a",
  to: "fe2-0a1b2c",
  tenantId: "acme",
  functionName: "",
  loanId: 4242,
  slots: 3,
};

const roundTrip = (value: Record<string, unknown>) => decodeRecord(encodeRecord(value));

describe("the gossip wire form", () => {
  it("carries a report exactly, in well under the readable form's bytes", () => {
    const wire = roundTrip(reportToWire(report));
    expect(reportSender(wire)).toBe("fe1-3f9c2a");
    expect(parseDemandReport(reportFromWire(wire))).toEqual(report);
    const compact = encodeRecord(reportToWire(report)).byteLength;
    const readable = encodeRecord(report).byteLength;
    expect(compact).toBeLessThan(readable * 0.7);
  });

  it("carries a loan message to the frontend whose subject it came in on", () => {
    for (const type of Object.values(LoanMessageTypes)) {
      const message = { ...loan, type };
      const wire = roundTrip(loanToWire(message));
      expect(wire).not.toHaveProperty("to");
      expect(parseLoanMessage(loanFromWire(wire, "fe2-0a1b2c"))).toEqual(message);
    }
    expect(encodeRecord(loanToWire(loan)).byteLength).toBeLessThan(50);
  });

  it("still reads the readable form a frontend without the wire form sends", () => {
    const readable = roundTrip(report as unknown as Record<string, unknown>);
    expect(reportSender(readable)).toBe("fe1-3f9c2a");
    expect(parseDemandReport(reportFromWire(readable))).toEqual(report);
    const readableLoan = roundTrip(loan as unknown as Record<string, unknown>);
    expect(parseLoanMessage(loanFromWire(readableLoan, "ignored"))).toEqual(loan);
  });

  it("turns junk into nothing, never into a report or a loan, and never throws", () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom("v", "f", "s", "i", "a", "l", "p", "k", "t", "n"),
          fc.anything(),
        ),
        (fields) => {
          const value = { ...fields, v: 2 };
          const parsed = parseDemandReport(reportFromWire(value));
          if (parsed) expect(parsed.type).toBe(DEMAND_REPORT_TYPE);
          const message = parseLoanMessage(loanFromWire(value, "me"));
          if (message) expect(message.to).toBe("me");
        },
      ),
    );
  });
});
