/**
 * cgroup v2's core interface — joining, cgroup.freeze with cgroup.events'
 * "frozen", cgroup.kill, "populated", removal — needs no controller, so it
 * is tested on any cgroup2 mount, including a hybrid host's controller-less
 * one where the worker itself uses v1. The limits (memory.*, pids.max,
 * cpu.weight) are tested through CgroupTree where the host uses v2.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exists, makeDirectory, readText } from "./cgroup-fs.js";
import { parseMountInfo } from "./detect.js";
import { TestProcesses, cpuTicks, isDead, uniqueName, waitFor } from "./kernel-test-support.js";
import { DEFAULT_FREEZE_WAIT_MS, DEFAULT_KILL_WAIT_MS } from "./sandbox-cgroup.js";
import { V2SandboxCgroup } from "./v2-sandbox-cgroup.js";

const TIMEOUTS = { killWaitMs: DEFAULT_KILL_WAIT_MS, freezeWaitMs: DEFAULT_FREEZE_WAIT_MS };
const mountInfo = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
const cgroup2 = parseMountInfo(mountInfo).find((mount) => mount.version === 2 && !mount.readOnly);
const skipReason = !cgroup2
  ? "no writable cgroup2 mount"
  : process.getuid?.() !== 0
    ? "not running as root"
    : undefined;

/** v2 without cgroup.kill (before 5.14): the freeze, SIGKILL, thaw loop. */
class WithoutKillSwitch extends V2SandboxCgroup {
  protected override killByKernel(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

describe.skipIf(skipReason !== undefined)(
  `cgroup v2 freeze and kill on ${cgroup2?.mountPoint ?? "cgroup2"}${skipReason ? ` (skipped: ${skipReason})` : ""}`,
  () => {
    let processes: TestProcesses;
    let dir: string;
    const groups: V2SandboxCgroup[] = [];

    beforeEach(async () => {
      processes = await TestProcesses.create();
      dir = path.join(cgroup2!.mountPoint, uniqueName("gust-v2-test"));
      await makeDirectory(dir);
    });

    afterEach(async () => {
      try {
        for (const group of groups.splice(0)) await group.dispose();
        expect(existsSync(dir)).toBe(false);
      } finally {
        await processes.cleanup();
      }
    });

    function group(kind: typeof V2SandboxCgroup = V2SandboxCgroup): V2SandboxCgroup {
      const created = new kind(path.basename(dir), dir, TIMEOUTS);
      groups.push(created);
      return created;
    }

    it("freezes a spinning process and its setsid child until thawed (cgroup.events frozen 1)", async () => {
      const sandbox = group();
      const launched = processes.launch(
        sandbox,
        `(setsid sh -c 'echo $$ > spinner; while :; do :; done' &); while :; do :; done`,
      );
      const spinners = [launched.pid, await processes.pidFrom("spinner")];
      await waitFor("both in the group", async () => (await sandbox.pids()).length === 2);
      await sandbox.freeze();
      expect(await readText(`${dir}/cgroup.events`)).toMatch(/^frozen 1$/m);
      const frozenAt = await Promise.all(spinners.map(cpuTicks));
      await sleep(500);
      expect(await Promise.all(spinners.map(cpuTicks))).toEqual(frozenAt);
      await sandbox.thaw();
      for (const [index, pid] of spinners.entries()) {
        await waitFor(`${pid} to run again`, async () => (await cpuTicks(pid)) > frozenAt[index]!);
      }
    });

    it("kills the whole frozen group with cgroup.kill and sees it unpopulated", async () => {
      const sandbox = group();
      expect(await exists(`${dir}/cgroup.kill`)).toBe(true);
      const launched = processes.launch(
        sandbox,
        `(setsid sh -c 'echo $$ > escaped; exec sleep 300' &); exec sleep 300`,
      );
      const escaped = await processes.pidFrom("escaped");
      expect(await sandbox.isEmpty()).toBe(false);
      await sandbox.freeze(); // an idle sandbox is frozen when it is recycled
      await sandbox.killAll();
      expect(await sandbox.isEmpty()).toBe(true);
      expect(await isDead(escaped)).toBe(true);
      expect((await launched.exited).signal).toBe("SIGKILL");
    });

    it("without cgroup.kill, kills a forking, frozen group by freeze, SIGKILL, thaw", async () => {
      const sandbox = group(WithoutKillSwitch);
      processes.launch(
        sandbox,
        `(setsid sh -c 'while :; do (setsid sleep 300 &); sleep 0.01; done' &); exec sleep 300`,
      );
      await waitFor("the forker to have forked", async () => (await sandbox.pids()).length > 10);
      const before = await sandbox.pids();
      await sandbox.freeze();
      await sandbox.killAll();
      expect(await sandbox.isEmpty()).toBe(true);
      for (const pid of before) expect(await isDead(pid)).toBe(true);
      await sandbox.dispose();
      expect(existsSync(dir)).toBe(false);
    });
  },
);

// The readings' arithmetic, on plain files standing in for a v2 group's: what
// this file's kernel tests cannot reach on a host without v2 controllers.
describe("a v2 group's readings", () => {
  let fake: string;
  beforeEach(async () => {
    fake = await mkdtemp(path.join(tmpdir(), "gust-v2-fake-"));
  });
  afterEach(async () => {
    await rm(fake, { recursive: true, force: true });
  });
  const write = (file: string, text: string) => writeFile(path.join(fake, file), text);

  it("counts oom_kill, not oom_group_kill, and reads populated", async () => {
    const sandbox = new V2SandboxCgroup("fake", fake, TIMEOUTS);
    await write("memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 7\n");
    await write("cgroup.events", "populated 1\nfrozen 0\n");
    expect(await sandbox.oomKills()).toBe(1);
    expect(await sandbox.isEmpty()).toBe(false);
    await write("cgroup.events", "populated 0\nfrozen 0\n");
    expect(await sandbox.isEmpty()).toBe(true);
  });

  it("without memory.peak, reports the largest memory.current sampled since the last reset", async () => {
    const sandbox = new V2SandboxCgroup("fake", fake, TIMEOUTS);
    await write("memory.current", "300\n");
    expect(await sandbox.memoryCurrentBytes()).toBe(300);
    await write("memory.current", "100\n");
    expect(await sandbox.memoryPeakBytes()).toBe(300);
    await sandbox.resetPeak();
    expect(await sandbox.memoryPeakBytes()).toBe(100);
    await write("memory.current", "200\n");
    await sandbox.memoryCurrentBytes();
    await write("memory.current", "150\n");
    expect(await sandbox.memoryPeakBytes()).toBe(200);
  });

  it("reads memory.peak where the kernel has it, never below current use", async () => {
    const sandbox = new V2SandboxCgroup("fake", fake, TIMEOUTS);
    await write("memory.current", "100\n");
    await write("memory.peak", "4096\n");
    expect(await sandbox.memoryPeakBytes()).toBe(4096);
  });
});
