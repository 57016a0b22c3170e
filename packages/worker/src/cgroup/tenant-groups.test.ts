/**
 * Tenant groups and CPU caps on the real kernel (skipped with the reason
 * where this host cannot create groups): a tenant's sandboxes share one
 * group of equal weight, a pre-initialized sandbox moves under its tenant's
 * group with every process it started, the tenant's group goes with its last
 * sandbox, a worker's successor removes what a dead worker left at both
 * levels, and a CPU cap is enforced by the kernel.
 */
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CgroupTree, TENANT_GROUP_PREFIX, tenantGroupName } from "./cgroup-tree.js";
import { readText } from "./cgroup-fs.js";
import { detectCgroups } from "./detect.js";
import {
  TestProcesses,
  isDead,
  kernelSkipReason,
  uniqueName,
  waitFor,
} from "./kernel-test-support.js";
import { CPU_PERIOD_US, LAMBDA_PIDS_MAX } from "./limits.js";
import type { CgroupLimits } from "./limits.js";
import type { SandboxCgroup } from "./sandbox-cgroup.js";

const MiB = 1024 * 1024;
const support = await detectCgroups();
const skipReason = kernelSkipReason(support);
const LIMITS: CgroupLimits = { memoryBytes: 256 * MiB, pidsMax: LAMBDA_PIDS_MAX, cpuWeight: 100 };

let tree: CgroupTree | undefined;
let processes: TestProcesses;

/** The group's directories that lie below a tenant's group (v1: cpu only; v2: the one). */
function tenantDirectories(group: SandboxCgroup, tenantId: string): string[] {
  return group.directories.filter(
    (dir) => path.basename(path.dirname(dir)) === tenantGroupName(tenantId),
  );
}

async function members(dir: string): Promise<number[]> {
  return (await readText(`${dir}/cgroup.procs`)).split("\n").filter(Boolean).map(Number);
}

describe("tenant group names", () => {
  it("keeps a plain tenant id and digests anything else", () => {
    expect(tenantGroupName("acme")).toBe("tenant-acme");
    expect(tenantGroupName("123456789012")).toBe("tenant-123456789012");
    const odd = tenantGroupName("../../etc passwd");
    expect(odd).toMatch(/^tenant-h[0-9a-f]{32}$/);
    expect(tenantGroupName("../../etc passwd")).toBe(odd);
    expect(tenantGroupName("x".repeat(101))).toMatch(/^tenant-h/);
  });
});

describe.skipIf(skipReason !== undefined)(
  `tenant groups and CPU caps on this kernel${skipReason ? ` (skipped: ${skipReason})` : ""}`,
  () => {
    beforeEach(async () => {
      processes = await TestProcesses.create();
      tree = await CgroupTree.open(uniqueName("test-worker"), support);
    });

    afterEach(async () => {
      try {
        await tree?.close();
        for (const dir of tree?.directories ?? []) expect(existsSync(dir)).toBe(false);
      } finally {
        tree = undefined;
        await processes.cleanup();
      }
    });

    it("puts a tenant's sandboxes under one group of equal weight, removed with its last sandbox", async () => {
      const first = await tree!.create(uniqueName("sb"), LIMITS, "acme");
      const second = await tree!.create(uniqueName("sb"), LIMITS, "acme");
      const other = await tree!.create(uniqueName("sb"), LIMITS, "globex");
      expect(tree!.tenants).toEqual(
        new Map([
          ["tenant-acme", 2],
          ["tenant-globex", 1],
        ]),
      );
      const [acmeDir] = tenantDirectories(first, "acme");
      expect(acmeDir).toBeDefined();
      expect(tenantDirectories(second, "acme")).toHaveLength(1);
      expect(tenantDirectories(other, "globex")).toHaveLength(1);
      const tenantDir = path.dirname(acmeDir!);
      // Equal weights: the default share on either version.
      const weight =
        tree!.version === 1
          ? await readText(`${tenantDir}/cpu.shares`)
          : await readText(`${tenantDir}/cpu.weight`);
      expect(weight.trim()).toBe(tree!.version === 1 ? "1024" : "100");

      const launched = processes.launch(first, "exec sleep 300");
      await waitFor("in the tenant's group", async () =>
        (await members(acmeDir!)).includes(launched.pid) ? true : undefined,
      );
      await first.dispose();
      expect(existsSync(tenantDir)).toBe(true);
      await second.dispose();
      await waitFor("the tenant's group removed", () =>
        Promise.resolve(existsSync(tenantDir) ? undefined : true),
      );
      expect(tree!.tenants).toEqual(new Map([["tenant-globex", 1]]));
      await other.dispose();
    });

    it("moves a pre-initialized sandbox, and every process it started, under its tenant's group", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      expect(tree!.tenants.size).toBe(0);
      const before = [...group.directories];
      const launched = processes.launch(
        group,
        `(setsid sh -c 'echo $$ > escaped; exec sleep 300' &); exec sleep 300`,
      );
      const escaped = await processes.pidFrom("escaped");
      await waitFor("both in the group", async () => {
        const pids = await group.pids();
        return pids.includes(launched.pid) && pids.includes(escaped) ? true : undefined;
      });

      await tree!.assignTenant(group, "acme");
      const moved = tenantDirectories(group, "acme");
      expect(moved.length).toBe(1);
      expect((await members(moved[0]!)).sort()).toEqual([launched.pid, escaped].sort());
      // The old place is gone; what did not move (v1: memory, pids, freezer) keeps both.
      for (const dir of before) expect(existsSync(dir)).toBe(group.directories.includes(dir));
      for (const dir of group.directories)
        expect((await members(dir)).sort()).toEqual([launched.pid, escaped].sort());
      const cgroupFile = await readFile(`/proc/${escaped}/cgroup`, "utf8");
      expect(cgroupFile).toContain(`/${tree!.name}/tenant-acme/${group.sandboxId}\n`);
      // Assigning it again to the same tenant changes nothing; to another, it is refused.
      await tree!.assignTenant(group, "acme");
      await expect(tree!.assignTenant(group, "globex")).rejects.toThrow(/already belongs/);

      await group.dispose();
      expect(await isDead(escaped)).toBe(true);
      expect((await launched.exited).signal).toBe("SIGKILL");
      expect(tree!.tenants.size).toBe(0);
    });

    it("removes what a dead worker left at the sandbox and the tenant level", async () => {
      const name = uniqueName("test-worker");
      const dead = await CgroupTree.open(name, support);
      const assigned = await dead.create(uniqueName("sb"), LIMITS);
      const stray = processes.launch(assigned, "exec sleep 300");
      // Assigned once running, as a pre-initialized sandbox is.
      await waitFor("the stray in its group", async () =>
        (await assigned.pids()).includes(stray.pid) ? true : undefined,
      );
      await dead.assignTenant(assigned, "acme");
      const cold = await dead.create(uniqueName("sb"), LIMITS, "globex");
      const coldStray = processes.launch(cold, "exec sleep 300");
      await waitFor("both running in their groups", async () => {
        const pids = [...(await assigned.pids()), ...(await cold.pids())];
        return pids.includes(stray.pid) && pids.includes(coldStray.pid) ? true : undefined;
      });
      // The worker dies here: its successor of the same name clears the lot.
      const successor = await CgroupTree.open(name, support);
      try {
        await successor.removeStale();
        expect(await isDead(stray.pid)).toBe(true);
        expect(await isDead(coldStray.pid)).toBe(true);
        for (const dir of successor.directories) {
          const children = (await readdir(dir, { withFileTypes: true })).filter((entry) =>
            entry.isDirectory(),
          );
          expect(children.map((entry) => entry.name)).toEqual([]);
        }
        expect(
          [...assigned.directories, ...cold.directories].some((dir) =>
            dir.includes(`/${TENANT_GROUP_PREFIX}`),
          ),
        ).toBe(true);
      } finally {
        await successor.close();
      }
    });

    it("caps a spinning group at its share of a CPU, and lifts the cap", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS, "acme");
      const cpuDir = group.directories.find((dir) => existsSync(`${dir}/cpu.stat`))!;
      await group.setCpuLimit(128 / 1769);
      if (tree!.version === 1) {
        expect((await readText(`${cpuDir}/cpu.cfs_period_us`)).trim()).toBe(String(CPU_PERIOD_US));
        expect((await readText(`${cpuDir}/cpu.cfs_quota_us`)).trim()).toBe("1447");
      } else {
        expect((await readText(`${cpuDir}/cpu.max`)).trim()).toBe(`1447 ${CPU_PERIOD_US}`);
      }
      processes.launch(group, "while :; do :; done");
      // The kernel holds it back: periods in which it ran out of quota.
      await waitFor(
        "throttled periods",
        async () => {
          const throttled = /^nr_throttled (\d+)$/m.exec(await readText(`${cpuDir}/cpu.stat`));
          return Number(throttled?.[1] ?? 0) > 0 ? true : undefined;
        },
        30_000,
      );
      await group.setCpuLimit(undefined);
      if (tree!.version === 1) {
        expect((await readText(`${cpuDir}/cpu.cfs_quota_us`)).trim()).toBe("-1");
      } else {
        expect((await readText(`${cpuDir}/cpu.max`)).trim()).toBe(`max ${CPU_PERIOD_US}`);
      }
      await group.dispose();
    });
  },
);
