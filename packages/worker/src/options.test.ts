import os from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, isSubjectToken } from "@gust/protocol";
import { resolveWorkerOptions } from "./options.js";

describe("resolveWorkerOptions", () => {
  it("fills in the documented defaults", () => {
    const resolved = resolveWorkerOptions();
    expect(isSubjectToken(resolved.workerId)).toBe(true);
    expect(resolved).toMatchObject({
      baseDir: undefined,
      heartbeatIntervalMs: 1000,
      keepAliveMs: 300_000,
      preinitializedPoolSize: 2,
      maxSandboxes: 32,
      sandboxUidBase: 61000,
      region: "us-east-1",
      initTimeoutMs: 10_000,
    });
    expect(resolved.memoryMb).toBe(Math.floor((os.totalmem() / 1024 / 1024) * 0.75));
    expect(resolveWorkerOptions().workerId).not.toBe(resolved.workerId);
  });

  it("names the bad property", () => {
    expect(() => resolveWorkerOptions({ workerId: "a.b" })).toThrow(/workerId/);
    expect(() => resolveWorkerOptions({ maxSandboxes: 0 })).toThrow(ConfigError);
    expect(() => resolveWorkerOptions({ keepAliveMs: 1.5 })).toThrow(/keepAliveMs/);
    expect(() => resolveWorkerOptions({ memoryMb: 64 })).toThrow(/memoryMb/);
    expect(() => resolveWorkerOptions({ region: "Mars 1" })).toThrow(/region/);
  });
});
