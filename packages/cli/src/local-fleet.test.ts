import { ConfigError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_FLEET_START_TIMEOUT_MS,
  drainDelayFor,
  resolveLocalFleetOptions,
} from "./local-fleet.js";

describe("resolveLocalFleetOptions", () => {
  it("defaults to three frontends on the ports after the load balancer's, and two workers", () => {
    const resolved = resolveLocalFleetOptions();
    expect(resolved).toMatchObject({
      port: 9000,
      host: "127.0.0.1",
      frontends: 3,
      workers: 2,
      frontendBasePort: 9001,
      healthCheckIntervalMs: 1000,
      startTimeoutMs: DEFAULT_FLEET_START_TIMEOUT_MS,
    });
  });

  it("lets every frontend pick a free port when the load balancer does", () => {
    expect(resolveLocalFleetOptions({ port: 0 }).frontendBasePort).toBe(0);
    expect(resolveLocalFleetOptions({ port: 8000, frontendBasePort: 0 }).frontendBasePort).toBe(0);
  });

  it.each([
    [{ frontends: 0 }, /frontends/],
    [{ workers: 1.5 }, /workers/],
    [{ port: 70_000 }, /port/],
    [{ port: 9002, frontendBasePort: 9001 }, /also one of the frontends' ports/],
    [{ frontendBasePort: 65_535, frontends: 2 }, /no room/],
    [{ healthCheckIntervalMs: 10 }, /healthCheckIntervalMs/],
    [{ startTimeoutMs: 0 }, /startTimeoutMs/],
    [{ drainTimeoutMs: -1 }, /drainTimeoutMs/],
    [{ natsSeedsDir: "/keys" }, /natsSeedsDir goes with natsUrl/],
  ])("rejects %o, naming the option", (options, message) => {
    expect(() => resolveLocalFleetOptions(options)).toThrow(ConfigError);
    expect(() => resolveLocalFleetOptions(options)).toThrow(message);
  });
});

describe("drainDelayFor", () => {
  it("outlasts HAProxy's two failed checks, by at least a second", () => {
    expect(drainDelayFor(1_000)).toBe(3_000);
    expect(drainDelayFor(250)).toBe(1_500);
    expect(resolveLocalFleetOptions({ healthCheckIntervalMs: 2_000 }).drainDelayMs).toBe(6_000);
    for (const interval of [100, 250, 1_000, 5_000]) {
      expect(drainDelayFor(interval)).toBeGreaterThanOrEqual(2 * interval + 1_000);
    }
  });
});
