import { ConfigError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_GOSSIP_INTERVAL_MS,
  DEFAULT_INITIAL_LIMIT,
  DEFAULT_MIN_UNRESERVED,
  DEFAULT_RISE_INTERVAL_MS,
  DEFAULT_RISE_STEP,
  resolveAdmissionPolicy,
} from "./policy.js";

describe("resolveAdmissionPolicy", () => {
  it("fills in Lambda's figures by default", () => {
    const policy = resolveAdmissionPolicy();
    expect(policy.riseStep).toBe(DEFAULT_RISE_STEP);
    expect(policy.riseIntervalMs).toBe(DEFAULT_RISE_INTERVAL_MS);
    expect([
      policy.riseStep,
      policy.riseIntervalMs,
      policy.initialLimit,
      policy.minUnreserved,
    ]).toEqual([1000, 10_000, DEFAULT_INITIAL_LIMIT, DEFAULT_MIN_UNRESERVED]);
    expect(policy.gossipIntervalMs).toBe(DEFAULT_GOSSIP_INTERVAL_MS);
    expect(Object.isFrozen(policy)).toBe(true);
  });

  it("keeps what it is given", () => {
    expect(resolveAdmissionPolicy({ gossipIntervalMs: 250, lendingEnabled: false })).toMatchObject({
      gossipIntervalMs: 250,
      lendingEnabled: false,
    });
  });

  it("names the bad property", () => {
    expect(() => resolveAdmissionPolicy({ gossipIntervalMs: 0 })).toThrow(ConfigError);
    expect(() => resolveAdmissionPolicy({ gossipIntervalMs: 0 })).toThrow(/gossipIntervalMs/);
    expect(() => resolveAdmissionPolicy({ initialLimit: 1.5 })).toThrow(
      /initialLimit must be a positive integer/,
    );
    expect(() => resolveAdmissionPolicy({ decayFraction: 2 })).toThrow(/decayFraction/);
    expect(() => resolveAdmissionPolicy({ limitHeadroom: Number.NaN })).toThrow(/limitHeadroom/);
    expect(() => resolveAdmissionPolicy({ lendingEnabled: "yes" as unknown as boolean })).toThrow(
      /lendingEnabled/,
    );
  });
});
