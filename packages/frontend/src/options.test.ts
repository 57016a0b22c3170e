import { ConfigError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { resolveFrontendOptions } from "./options.js";

describe("resolveFrontendOptions", () => {
  it("fills in Lambda's defaults", () => {
    const options = resolveFrontendOptions();
    expect(options.region).toBe("us-east-1");
    expect(options.eventRetryDelaysMs).toEqual([60_000, 120_000]);
    expect(options.maxEventAgeMs).toBe(6 * 60 * 60 * 1000);
    expect(options.maxClockSkewMs).toBe(15 * 60 * 1000);
    expect(options.publicUrl).toBeUndefined();
  });

  it("names the property that is wrong", () => {
    expect(() => resolveFrontendOptions({ dispatcherConcurrency: 0 })).toThrow(
      /dispatcherConcurrency/,
    );
    expect(() => resolveFrontendOptions({ eventRetryDelaysMs: [10, -1] })).toThrow(
      /eventRetryDelaysMs\[1\]/,
    );
    expect(() => resolveFrontendOptions({ region: "moon" })).toThrow(ConfigError);
    expect(() => resolveFrontendOptions({ publicUrl: "not a url" })).toThrow(/publicUrl/);
    expect(() =>
      resolveFrontendOptions({ eventThrottleBackoffMs: 100, eventThrottleMaxBackoffMs: 50 }),
    ).toThrow(/eventThrottleMaxBackoffMs/);
  });

  it("keeps only the origin of publicUrl", () => {
    expect(
      resolveFrontendOptions({ publicUrl: "https://lambda.example.com/some/path" }).publicUrl,
    ).toBe("https://lambda.example.com");
  });

  it("gives each start its own gossip id", () => {
    const random = resolveFrontendOptions();
    expect(random.instanceId).toBe(random.frontendId);
    const first = resolveFrontendOptions({ frontendId: "fe1" });
    const second = resolveFrontendOptions({ frontendId: "fe1" });
    expect(first.frontendId).toBe("fe1");
    expect(first.instanceId).toMatch(/^fe1-[0-9a-f]{6}$/);
    expect(second.instanceId).not.toBe(first.instanceId);
  });

  it("checks the admission options", () => {
    expect(() => resolveFrontendOptions({ adminToken: "short" })).toThrow(/adminToken/);
    expect(() => resolveFrontendOptions({ fleetSizeHint: 0 })).toThrow(/fleetSizeHint/);
    expect(() => resolveFrontendOptions({ admissionPolicy: { gossipIntervalMs: 0 } })).toThrow(
      /gossipIntervalMs/,
    );
    expect(resolveFrontendOptions().admissionPolicy.gossipIntervalMs).toBe(100);
    expect(resolveFrontendOptions().standalone).toBe(false);
  });
});
