import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CapacityError } from "@gust/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { leaseUidBlock, UID_BLOCK_SIZE } from "./uid-lease.js";

describe("uid block leases", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "gust-uid-lease-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives concurrent leases distinct blocks and reuses a released one", async () => {
    const leases = await Promise.all(
      [1, 2, 3].map(() => leaseUidBlock({ rangeStart: 70_000, dir })),
    );
    const bases = leases.map((lease) => lease.base).sort((a, b) => a - b);
    expect(bases).toEqual([70_000, 70_000 + UID_BLOCK_SIZE, 70_000 + 2 * UID_BLOCK_SIZE]);
    const lowest = leases.find((lease) => lease.base === 70_000)!;
    await lowest.release();
    expect((await leaseUidBlock({ rangeStart: 70_000, dir })).base).toBe(70_000);
  });

  it("reclaims a block whose holder died, never one whose holder lives", async () => {
    // A pid that certainly existed and is gone now.
    const dead = spawnSync(process.execPath, [
      "-e",
      "process.stdout.write(String(process.pid))",
    ]).stdout.toString();
    await writeFile(path.join(dir, "block-80000-0"), dead);
    await writeFile(path.join(dir, "block-80000-1"), String(process.ppid));
    const lease = await leaseUidBlock({ rangeStart: 80_000, dir });
    expect(lease.base).toBe(80_000);
    const next = await leaseUidBlock({ rangeStart: 80_000, dir });
    expect(next.base).toBe(80_000 + 2 * UID_BLOCK_SIZE);
    expect((await readdir(dir)).filter((name) => name.includes("stale"))).toEqual([]);
  });

  it("says so when every block is taken", async () => {
    await leaseUidBlock({ rangeStart: 90_000, dir, blocks: 1 });
    await expect(leaseUidBlock({ rangeStart: 90_000, dir, blocks: 1 })).rejects.toBeInstanceOf(
      CapacityError,
    );
  });
});
