import { describe, expect, it } from "vitest";
import {
  chooseCgroups,
  parentDirectories,
  parseMountInfo,
  parseProcMounts,
  unwritableReason,
} from "./detect.js";

// This machine: v1 controllers, each in its own hierarchy, and a cgroup2 mount with none.
const HYBRID_MOUNTINFO = `22 1 253:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

// A systemd host: one cgroup2 hierarchy with every controller.
const V2_MOUNTINFO = `25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V2_CONTROLLERS = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"];

describe("parseMountInfo", () => {
  it("finds v1 hierarchies with their controllers and the cgroup2 mount, skipping named ones' names", () => {
    const mounts = parseMountInfo(HYBRID_MOUNTINFO);
    expect(mounts.map((mount) => [mount.mountPoint, mount.version, mount.controllers])).toEqual([
      ["/sys/fs/cgroup/cpu", 1, ["cpu"]],
      ["/sys/fs/cgroup/cpuacct", 1, ["cpuacct"]],
      ["/sys/fs/cgroup/memory", 1, ["memory"]],
      ["/sys/fs/cgroup/freezer", 1, ["freezer"]],
      ["/sys/fs/cgroup/pids", 1, ["pids"]],
      ["/sys/fs/cgroup/systemd", 1, []],
      ["/sys/fs/cgroup/unified", 2, []],
    ]);
  });

  it("reads co-mounted controllers, read-only mounts, optional fields and escaped paths", () => {
    const [mount] = parseMountInfo(
      "31 30 0:28 /kubepods /sys/fs/cgroup/cpu\\040x ro,nosuid shared:12 master:3 - cgroup cgroup rw,cpu,cpuacct\n",
    );
    expect(mount).toEqual({
      mountPoint: "/sys/fs/cgroup/cpu x",
      root: "/kubepods",
      version: 1,
      controllers: ["cpu", "cpuacct"],
      readOnly: true,
    });
  });

  it("reads /proc/mounts when mountinfo is missing", () => {
    expect(
      parseProcMounts(
        "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\ncgroup /x/memory cgroup ro,memory 0 0\n",
      ),
    ).toEqual([
      { mountPoint: "/sys/fs/cgroup", root: "/", version: 2, controllers: [], readOnly: false },
      { mountPoint: "/x/memory", root: "/", version: 1, controllers: ["memory"], readOnly: true },
    ]);
  });
});

describe("chooseCgroups", () => {
  it("uses v1 on a hybrid host whose cgroup2 mount has no controllers, at the top of each hierarchy", () => {
    const support = chooseCgroups({
      mounts: parseMountInfo(HYBRID_MOUNTINFO),
      v2Controllers: [],
    });
    expect(support).toEqual({
      available: true,
      version: 1,
      hierarchies: {
        memory: {
          mountPoint: "/sys/fs/cgroup/memory",
          parent: "/sys/fs/cgroup/memory",
        },
        pids: { mountPoint: "/sys/fs/cgroup/pids", parent: "/sys/fs/cgroup/pids" },
        cpu: { mountPoint: "/sys/fs/cgroup/cpu", parent: "/sys/fs/cgroup/cpu" },
        freezer: { mountPoint: "/sys/fs/cgroup/freezer", parent: "/sys/fs/cgroup/freezer" },
      },
    });
    expect(parentDirectories(support)).toContain("/sys/fs/cgroup/memory");
  });

  it("uses v2 when its top offers memory, pids and cpu, at the top", () => {
    expect(
      chooseCgroups({
        mounts: parseMountInfo(V2_MOUNTINFO),
        v2Controllers: V2_CONTROLLERS,
      }),
    ).toEqual({
      available: true,
      version: 2,
      hierarchy: { mountPoint: "/sys/fs/cgroup", parent: "/sys/fs/cgroup" },
    });
  });

  it("prefers v2 on a hybrid host whose cgroup2 mount has the controllers", () => {
    const support = chooseCgroups({
      mounts: parseMountInfo(HYBRID_MOUNTINFO),
      v2Controllers: ["memory", "pids", "cpu"],
    });
    expect(support.available && support.version).toBe(2);
  });

  it("says why when nothing is usable", () => {
    const noPids = chooseCgroups({
      mounts: parseMountInfo(V2_MOUNTINFO),
      v2Controllers: ["cpu", "memory"],
    });
    expect(noPids).toEqual({
      available: false,
      reason:
        "no usable control groups: cgroup2 at /sys/fs/cgroup lacks pids; cgroup v1 lacks memory, pids, cpu, freezer",
    });
    const readOnly = chooseCgroups({
      mounts: parseMountInfo(V2_MOUNTINFO.replace("relatime shared", "relatime,ro shared")),
      v2Controllers: V2_CONTROLLERS,
    });
    expect(readOnly).toEqual({
      available: false,
      reason: "cgroup2 at /sys/fs/cgroup is mounted read-only",
    });
    expect(chooseCgroups({ mounts: [], v2Controllers: undefined })).toMatchObject({
      available: false,
      reason: expect.stringMatching(/no cgroup2 mount/),
    });
  });
});

describe("unwritableReason", () => {
  const support = chooseCgroups({ mounts: parseMountInfo(HYBRID_MOUNTINFO), v2Controllers: [] });

  it("names the first hierarchy this process may not write to, as when not root", async () => {
    const reason = await unwritableReason(support, async (dir) =>
      Promise.resolve(dir.endsWith("/pids") ? "EACCES" : undefined),
    );
    expect(reason).toBe(
      "cannot create control groups in /sys/fs/cgroup/pids (EACCES); the worker needs root or a delegated cgroup",
    );
  });

  it("has nothing to say when every parent is writable, or nothing is available", async () => {
    const writable = async () => Promise.resolve(undefined);
    expect(await unwritableReason(support, writable)).toBeUndefined();
    expect(
      await unwritableReason({ available: false, reason: "x" }, async () =>
        Promise.resolve("EROFS"),
      ),
    ).toBeUndefined();
  });
});
