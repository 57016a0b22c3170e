import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_FREEZE_WAIT_MS, DEFAULT_KILL_WAIT_MS } from "./sandbox-cgroup.js";
import { V1SandboxCgroup } from "./v1-sandbox-cgroup.js";

// Plain files standing in for a v1 group's, for what kernels other than this
// host's would show; the real files are exercised in cgroup-tree.test.ts.
describe("a v1 group's readings", () => {
  let fake: string;
  let sandbox: V1SandboxCgroup;
  beforeEach(async () => {
    fake = await mkdtemp(path.join(tmpdir(), "gust-v1-fake-"));
    const dirs = {
      memory: path.join(fake, "memory"),
      pids: path.join(fake, "pids"),
      cpu: path.join(fake, "cpu"),
      freezer: path.join(fake, "freezer"),
    };
    for (const dir of Object.values(dirs)) await mkdir(dir);
    sandbox = new V1SandboxCgroup("fake", dirs, {
      killWaitMs: DEFAULT_KILL_WAIT_MS,
      freezeWaitMs: DEFAULT_FREEZE_WAIT_MS,
    });
  });
  afterEach(async () => {
    await rm(fake, { recursive: true, force: true });
  });

  it("counts OOM kills from oom_control (Linux 4.13+)", async () => {
    await writeFile(
      path.join(fake, "memory", "memory.oom_control"),
      "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    await writeFile(path.join(fake, "memory", "memory.failcnt"), "57\n");
    expect(await sandbox.oomKills()).toBe(2);
  });

  it("falls back to failcnt on kernels whose oom_control has no oom_kill line", async () => {
    await writeFile(
      path.join(fake, "memory", "memory.oom_control"),
      "oom_kill_disable 0\nunder_oom 0\n",
    );
    await writeFile(path.join(fake, "memory", "memory.failcnt"), "3\n");
    expect(await sandbox.oomKills()).toBe(3);
  });

  it("lists each member once though it is in every hierarchy", async () => {
    for (const controller of ["memory", "pids", "cpu", "freezer"]) {
      await writeFile(path.join(fake, controller, "cgroup.procs"), "10\n11\n");
    }
    await writeFile(path.join(fake, "freezer", "cgroup.procs"), "10\n11\n12\n");
    expect((await sandbox.pids()).sort()).toEqual([10, 11, 12]);
    expect(await sandbox.isEmpty()).toBe(false);
  });
});
