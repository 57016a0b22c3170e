/**
 * A worker killed outright leaves frozen sandboxes behind unless its reaper
 * takes them down (reaper.ts). Here a separate worker-like process opens a
 * tree, starts a process in a sandbox group, freezes the group and is
 * SIGKILLed; the process must not outlive it. Real kernel, as root; skipped
 * with the reason elsewhere. Uses the built package (npm test builds first).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { detectCgroups } from "./detect.js";
import { isDead, kernelSkipReason, uniqueName, waitFor } from "./kernel-test-support.js";

const support = await detectCgroups();
const built = fileURLToPath(new URL("../../dist/cgroup/index.js", import.meta.url));
const skipReason = kernelSkipReason(support) ?? (existsSync(built) ? undefined : "not built");

/** Opens a tree, freezes a sleeping sandbox, prints the sleeper's pid, then waits to be killed. */
const WORKER = `
import { spawn } from "node:child_process";
const { CgroupTree, detectCgroups } = await import(process.argv[1]);
const tree = await CgroupTree.open(process.argv[2], await detectCgroups());
const group = await tree.create("sb-reaped", { memoryBytes: 64 * 1024 * 1024, pidsMax: 64, cpuWeight: 100 });
const child = spawn("/bin/sh", group.launcherArgs("/bin/sh", ["-c", "exec sleep 300"]), { stdio: "ignore", detached: true });
while (!(await group.pids()).includes(child.pid)) await new Promise((r) => setTimeout(r, 10));
await group.freeze();
process.stdout.write(child.pid + "\\n");
setInterval(() => {}, 1000);
`;

describe.skipIf(skipReason !== undefined)(
  `a worker's reaper${skipReason ? ` (skipped: ${skipReason})` : ""}`,
  () => {
    it("takes a killed worker's frozen sandboxes down with it", async () => {
      const name = uniqueName("test-reaped");
      const worker = spawn(process.execPath, ["--input-type=module", "-e", WORKER, built, name], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let output = "";
      worker.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const sleeper = await waitFor("the sandbox frozen", () =>
        Promise.resolve(output.includes("\n") ? Number(output.trim()) : undefined),
      );
      expect(await isDead(sleeper)).toBe(false);
      worker.kill("SIGKILL");
      await waitFor("the frozen sandbox gone", async () =>
        (await isDead(sleeper)) ? true : undefined,
      );
      // What the dead worker left, its groups, its successor of the same name removes.
      const { CgroupTree } = await import("./cgroup-tree.js");
      const successor = await CgroupTree.open(name, support);
      await successor.removeStale();
      await successor.close();
    });
  },
);
