import { describe, expect, it } from "vitest";
import {
  LAMBDA_PIDS_MAX,
  checkLimits,
  cpuSharesForWeight,
  limitWrites,
  memoryLimitWrites,
} from "./limits.js";

const MiB = 1024 * 1024;
const lambda128 = { memoryBytes: 128 * MiB, pidsMax: LAMBDA_PIDS_MAX, cpuWeight: 100 };

describe("limitWrites", () => {
  it("puts a v2 sandbox's limits in memory.max, memory.swap.max, pids.max and cpu.weight", () => {
    expect(limitWrites(2, lambda128)).toEqual([
      { controller: "memory", file: "memory.max", value: "134217728", ifPresent: false },
      { controller: "memory", file: "memory.swap.max", value: "0", ifPresent: true },
      { controller: "pids", file: "pids.max", value: "1024", ifPresent: false },
      { controller: "cpu", file: "cpu.weight", value: "100", ifPresent: false },
    ]);
  });

  it("puts a v1 sandbox's limits in limit_in_bytes, then memsw (no swap), pids.max and cpu.shares", () => {
    expect(limitWrites(1, { ...lambda128, cpuWeight: 50 })).toEqual([
      { controller: "memory", file: "memory.limit_in_bytes", value: "134217728", ifPresent: false },
      {
        controller: "memory",
        file: "memory.memsw.limit_in_bytes",
        value: "134217728",
        ifPresent: true,
      },
      { controller: "pids", file: "pids.max", value: "1024", ifPresent: false },
      { controller: "cpu", file: "cpu.shares", value: "512", ifPresent: false },
    ]);
  });

  it("refuses limits the kernel would misread, naming the property", () => {
    expect(() => limitWrites(2, { ...lambda128, memoryBytes: 128 })).toThrow(/memoryBytes/);
    expect(() => limitWrites(2, { ...lambda128, memoryBytes: 1.5 * MiB * 100 + 0.5 })).toThrow(
      /memoryBytes/,
    );
    expect(() => limitWrites(1, { ...lambda128, pidsMax: 0 })).toThrow(/pidsMax/);
    expect(() => limitWrites(1, { ...lambda128, cpuWeight: 0 })).toThrow(/cpuWeight/);
    expect(() => limitWrites(2, { ...lambda128, cpuWeight: 10_001 })).toThrow(/cpuWeight/);
    expect(checkLimits(lambda128)).toBe(lambda128);
  });
});

describe("memoryLimitWrites", () => {
  it("on v1 raises memsw before the memory limit and lowers it after, keeping limit ≤ memsw", () => {
    const files = (direction: "up" | "down") =>
      memoryLimitWrites(1, 256 * MiB, direction).map((write) => write.file);
    expect(files("up")).toEqual(["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]);
    expect(files("down")).toEqual(["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);
  });

  it("on v2 sets memory.max and no swap in either direction", () => {
    expect(memoryLimitWrites(2, 256 * MiB, "up")).toEqual(memoryLimitWrites(2, 256 * MiB, "down"));
    expect(memoryLimitWrites(2, 256 * MiB).map((write) => [write.file, write.value])).toEqual([
      ["memory.max", String(256 * MiB)],
      ["memory.swap.max", "0"],
    ]);
  });
});

describe("cpuSharesForWeight", () => {
  it("maps v2's default weight onto v1's default shares and stays in the kernel's range", () => {
    expect(cpuSharesForWeight(100)).toBe(1024);
    expect(cpuSharesForWeight(1)).toBe(10);
    expect(cpuSharesForWeight(10_000)).toBe(102_400);
    expect(cpuSharesForWeight(33)).toBe(338);
  });
});
