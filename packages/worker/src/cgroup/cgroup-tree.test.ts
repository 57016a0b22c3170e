/**
 * Real kernel behaviour, on whichever cgroup version this host offers: these
 * run as root where detectCgroups finds a usable hierarchy, and are skipped
 * with the reason otherwise. Every group is named with a random suffix and
 * removed after its test, processes included.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CgroupTree } from "./cgroup-tree.js";
import { detectCgroups } from "./detect.js";
import { CgroupError } from "./errors.js";
import { JOIN_FAILED_EXIT_CODE } from "./join-script.js";
import {
  TestProcesses,
  cpuTicks,
  isDead,
  kernelSkipReason,
  sessionId,
  uniqueName,
  waitFor,
} from "./kernel-test-support.js";
import { LAMBDA_PIDS_MAX } from "./limits.js";
import type { CgroupLimits } from "./limits.js";

const MiB = 1024 * 1024;
const execFileAsync = promisify(execFile);
const support = await detectCgroups();
const skipReason = kernelSkipReason(support);
const LIMITS: CgroupLimits = { memoryBytes: 256 * MiB, pidsMax: LAMBDA_PIDS_MAX, cpuWeight: 100 };

let tree: CgroupTree | undefined;
let processes: TestProcesses;
const launch: TestProcesses["launch"] = (group, script) => processes.launch(group, script);
const pidFrom = (name: string) => processes.pidFrom(name);

describe.skipIf(skipReason !== undefined)(
  `sandbox control groups on this kernel${skipReason ? ` (skipped: ${skipReason})` : ""}`,
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

    it("holds a launched process and its double-forked setsid grandchild", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      const launched = launch(
        group,
        `(setsid sh -c 'echo $$ > escaped; exec sleep 300' &); exec sleep 300`,
      );
      const escaped = await pidFrom("escaped");
      expect(await sessionId(escaped)).not.toBe(await sessionId(launched.pid));
      const members = await waitFor("both in the group", async () => {
        const pids = await group.pids();
        return pids.includes(launched.pid) && pids.includes(escaped) ? pids : undefined;
      });
      expect(members).toEqual(expect.arrayContaining([launched.pid, escaped]));
      for (const dir of group.directories) {
        const mine = await readFile(`/proc/${escaped}/cgroup`, "utf8");
        expect(mine).toContain(`/${tree!.name}/${group.sandboxId}\n`);
        expect(existsSync(dir)).toBe(true);
      }
      await group.killAll();
      expect(await group.isEmpty()).toBe(true);
      expect(await isDead(escaped)).toBe(true);
      expect((await launched.exited).signal).toBe("SIGKILL");
    });

    it("joinScript, as the prefix of any sh -c command, puts the exec'd command in the group", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      const { stdout } = await execFileAsync("/bin/sh", [
        "-c",
        `${group.joinScript()}; exec cat /proc/self/cgroup`,
      ]);
      // One line per hierarchy the group spans, each naming the sandbox's group.
      const lines = stdout
        .split("\n")
        .filter((line) => line.endsWith(`/gust/${tree!.name}/${group.sandboxId}`));
      expect(lines).toHaveLength(group.directories.length);
    });

    it(
      "kills a double-forked process that allocates beyond the memory limit, and counts the OOM kill",
      {
        timeout: 60_000,
      },
      async () => {
        const group = await tree!.create(uniqueName("sb"), { ...LIMITS, memoryBytes: 64 * MiB });
        expect(await group.oomKills()).toBe(0);
        // tail holds its whole input when it has no newline: 300 MB in one process.
        const launched = launch(
          group,
          `(setsid sh -c 'echo $$ > hog; head -c 300M /dev/zero | tail > /dev/null; echo $? > hog-status' &); exec sleep 300`,
        );
        await pidFrom("hog");
        const status = await pidFrom("hog-status");
        expect(status).toBeGreaterThan(128); // the pipeline's tail died by a signal
        expect(await group.oomKills()).toBeGreaterThanOrEqual(1);
        // The limit holds to within a few pages the kernel may force-charge.
        expect(await group.memoryPeakBytes()).toBeLessThanOrEqual(65 * MiB);
        expect(await group.memoryPeakBytes()).toBeGreaterThan(32 * MiB);
        await group.dispose();
        expect((await launched.exited).signal).toBe("SIGKILL");
      },
    );

    it(
      "moves the memory limit of a live group down and up (a pre-initialized sandbox meets its function)",
      {
        timeout: 60_000,
      },
      async () => {
        const group = await tree!.create(uniqueName("sb"), { ...LIMITS, memoryBytes: 512 * MiB });
        const hold100 = async (): Promise<number> => {
          const run = launch(group, "head -c 100M /dev/zero | tail > /dev/null");
          const { code, signal } = await run.exited;
          return code ?? (signal === null ? -1 : 128);
        };
        expect(await hold100()).toBe(0);
        await group.setMemoryLimit(48 * MiB);
        expect(await hold100()).toBeGreaterThan(128);
        expect(await group.oomKills()).toBeGreaterThanOrEqual(1);
        await group.setMemoryLimit(256 * MiB);
        expect(await hold100()).toBe(0);
        await expect(group.setMemoryLimit(1000)).rejects.toThrow(RangeError);
      },
    );

    it("reports the memory peak and resets it to current use", { timeout: 60_000 }, async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      const run = launch(group, "head -c 120M /dev/zero | tail > /dev/null");
      expect((await run.exited).code).toBe(0);
      expect(await group.memoryPeakBytes()).toBeGreaterThan(100 * MiB);
      await group.resetPeak();
      const peak = await group.memoryPeakBytes();
      expect(peak).toBeLessThan(50 * MiB);
      expect(peak).toBeGreaterThanOrEqual(await group.memoryCurrentBytes());
    });

    it("stops a fork loop at pids.max; killAll leaves nothing", async () => {
      const pidsMax = 40;
      const group = await tree!.create(uniqueName("sb"), { ...LIMITS, pidsMax });
      const launched = launch(
        group,
        "for i in $(seq 200); do sleep 300 & done; echo all-forked >&2; wait",
      );
      const { code } = await launched.exited;
      expect(code).not.toBe(0);
      expect(launched.stderr()).toMatch(/fork/i);
      expect(launched.stderr()).not.toMatch(/all-forked/);
      const left = await group.pids();
      expect(left.length).toBeGreaterThan(0);
      expect(left.length).toBeLessThan(pidsMax);
      await group.killAll();
      expect(await group.isEmpty()).toBe(true);
      for (const pid of left) expect(await isDead(pid)).toBe(true);
    });

    it("freezes a busy loop, its escaped child too, and thaws them", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      const launched = launch(
        group,
        `(setsid sh -c 'echo $$ > spinner; while :; do :; done' &); while :; do :; done`,
      );
      const escaped = await pidFrom("spinner");
      const spinners = [launched.pid, escaped];
      for (const pid of spinners) {
        const start = await cpuTicks(pid);
        await waitFor(`${pid} to run`, async () => (await cpuTicks(pid)) > start);
      }
      await group.freeze();
      const frozenAt = await Promise.all(spinners.map(cpuTicks));
      await sleep(500);
      expect(await Promise.all(spinners.map(cpuTicks))).toEqual(frozenAt);
      await group.thaw();
      for (const [index, pid] of spinners.entries()) {
        await waitFor(`${pid} to run again`, async () => (await cpuTicks(pid)) > frozenAt[index]!);
      }
      // A frozen group is killed too (killAll thaws what it killed).
      await group.freeze();
      await group.killAll();
      expect(await group.isEmpty()).toBe(true);
    });

    it("kills everything, however it forked, while it keeps forking", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      const launched = launch(
        group,
        [
          `(setsid sh -c 'echo $$ > escaped; exec sleep 300' &)`,
          `(setsid sh -c 'while :; do (setsid sleep 300 &); sleep 0.01; done' &)`,
          `exec sleep 300`,
        ].join("; "),
      );
      const escaped = await pidFrom("escaped");
      await waitFor("the forker to have forked", async () => (await group.pids()).length > 10);
      const before = await group.pids();
      await group.killAll();
      expect(await group.isEmpty()).toBe(true);
      expect(await group.pids()).toEqual([]);
      for (const pid of [...before, escaped]) expect(await isDead(pid)).toBe(true);
      expect((await launched.exited).signal).toBe("SIGKILL");
    });

    it("dispose kills and removes the group's directories, once however often it is called", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      launch(group, `(setsid sleep 300 &); exec sleep 300`);
      await waitFor("two members", async () => (await group.pids()).length === 2);
      expect(tree!.sandboxes.get(group.sandboxId)).toBe(group);
      // A recycle and a worker shutdown at once: one disposal, both see it done.
      await Promise.all([group.dispose(), tree!.close()]);
      for (const dir of group.directories) expect(existsSync(dir)).toBe(false);
      expect(tree!.sandboxes.has(group.sandboxId)).toBe(false);
      await group.dispose(); // and again later is fine
      await expect(tree!.create(uniqueName("sb"), LIMITS)).rejects.toMatchObject({
        code: "CLOSED",
      });
    });

    it("a launcher whose group is gone never runs its command", async () => {
      const group = await tree!.create(uniqueName("sb"), LIMITS);
      await group.dispose();
      const launched = launch(group, "touch ran");
      expect((await launched.exited).code).toBe(JOIN_FAILED_EXIT_CODE);
      expect(existsSync(path.join(processes.workDir, "ran"))).toBe(false);
    });

    it("refuses a second group of the same id and leaves the first intact", async () => {
      const id = uniqueName("sb");
      await tree!.create(id, LIMITS);
      const error = await tree!.create(id, LIMITS).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CgroupError);
      expect((error as CgroupError).code).toBe("EEXIST");
      expect(tree!.sandboxes.size).toBe(1);
      await expect(tree!.create("../escape", LIMITS)).rejects.toThrow(RangeError);
    });

    it("removeStale cleans up after a worker that died with sandboxes running", async () => {
      const name = uniqueName("crashed");
      const crashed = await CgroupTree.open(name, support);
      const left = await crashed.create(uniqueName("sb"), LIMITS);
      launch(left, `(setsid sh -c 'echo $$ > orphan; exec sleep 300' &); exec sleep 300`);
      const orphan = await pidFrom("orphan");
      await left.freeze(); // as it was between invocations when the worker died
      // The worker is gone without closing; its successor of the same name starts.
      const successor = await CgroupTree.open(name, support);
      const mine = await successor.create(uniqueName("sb"), LIMITS);
      await successor.removeStale();
      for (const dir of left.directories) expect(existsSync(dir)).toBe(false);
      expect(await isDead(orphan)).toBe(true);
      expect(successor.sandboxes.get(mine.sandboxId)).toBe(mine);
      for (const dir of mine.directories) expect(existsSync(dir)).toBe(true);
      await successor.close();
      for (const dir of successor.directories) expect(existsSync(dir)).toBe(false);
    });
  },
);
