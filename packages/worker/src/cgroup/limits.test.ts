import { describe, expect, it } from "vitest";
import {
  LAMBDA_PIDS_MAX,
  checkLimits,
  cpuCoresForMemory,
  cpuLimitWrites,
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

describe("cpuLimitWrites", () => {
  const pairs = (version: 1 | 2, cores: number | undefined) =>
    cpuLimitWrites(version, cores).map((write) => [write.file, write.value]);

  it("caps at Lambda's share of a CPU per 20 ms, with a burst of one quota set after it", () => {
    expect(cpuCoresForMemory(1769)).toBe(1);
    expect(pairs(1, cpuCoresForMemory(128))).toEqual([
      ["cpu.cfs_period_us", "20000"],
      ["cpu.cfs_quota_us", "1447"],
      ["cpu.cfs_burst_us", "1447"],
    ]);
    expect(pairs(2, cpuCoresForMemory(3538))).toEqual([
      ["cpu.max", "40000 20000"],
      ["cpu.max.burst", "40000"],
    ]);
    // Burst accounting is a kernel option: written where it exists.
    expect(cpuLimitWrites(1, 1).find((write) => write.file === "cpu.cfs_burst_us")?.ifPresent).toBe(
      true,
    );
  });

  it("never asks for less than the kernel's 1 ms quota, and lifts the cap burst first", () => {
    expect(pairs(1, 0.01)[1]).toEqual(["cpu.cfs_quota_us", "1000"]);
    expect(pairs(1, undefined)).toEqual([
      ["cpu.cfs_burst_us", "0"],
      ["cpu.cfs_quota_us", "-1"],
    ]);
    expect(pairs(2, undefined)).toEqual([
      ["cpu.max.burst", "0"],
      ["cpu.max", "max 20000"],
    ]);
  });

  it("refuses what is not a positive number of cores or megabytes", () => {
    expect(() => cpuLimitWrites(1, 0)).toThrow(RangeError);
    expect(() => cpuLimitWrites(2, Number.NaN)).toThrow(RangeError);
    expect(() => cpuCoresForMemory(0)).toThrow(RangeError);
  });
});
