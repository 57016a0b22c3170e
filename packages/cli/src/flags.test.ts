import { describe, expect, it } from "vitest";
import { integer, sandboxOptions } from "./flags.js";

describe("command-line flags", () => {
  it("turns the sandbox flags into worker options, leaving absent ones to their defaults", () => {
    expect(sandboxOptions({})).toEqual({});
    expect(sandboxOptions({ "max-sandboxes": "40", pool: "0", "dispatch-slots": "0" })).toEqual({
      maxSandboxes: 40,
      preinitializedPoolSize: 0,
      dispatchSlots: 0,
    });
    expect(sandboxOptions({ "dispatch-slots": "8" })).toEqual({ dispatchSlots: 8 });
    expect(sandboxOptions({ "trust-tenants": true, "no-jail": true })).toEqual({
      trustTenants: true,
      jail: false,
    });
    expect(
      sandboxOptions({ "no-egress": true, "deny-cidr": ["10.0.0.0/8", "192.168.1.7"] }),
    ).toEqual({ egress: false, denyCidrs: ["10.0.0.0/8", "192.168.1.7"] });
    expect(sandboxOptions({ "sandbox-cpu": "shared" })).toEqual({ sandboxCpu: "shared" });
    expect(sandboxOptions({ "sandbox-cpu": "memory" })).toEqual({ sandboxCpu: "memory" });
  });

  it("refuses a CPU model it does not know", () => {
    expect(() => sandboxOptions({ "sandbox-cpu": "fair" })).toThrow(
      "--sandbox-cpu must be memory or shared, got fair",
    );
  });

  it("refuses what is not a non-negative integer, naming the flag", () => {
    expect(() => sandboxOptions({ "dispatch-slots": "two" })).toThrow(
      "--dispatch-slots must be a non-negative integer, got two",
    );
    expect(() => integer("-1", "port")).toThrow("--port must be a non-negative integer");
    expect(() => integer("1.5", "pool")).toThrow("--pool");
    expect(integer(undefined, "port")).toBeUndefined();
  });
});
