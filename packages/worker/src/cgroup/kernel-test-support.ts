/**
 * Helpers for the tests that run against the real kernel: processes started
 * inside a group the way a sandbox launcher will start them, and readings of
 * /proc that show what a process is doing. Test-only; not exported.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CgroupSupport } from "./detect.js";
import type { SandboxCgroup } from "./sandbox-cgroup.js";

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(support: CgroupSupport): string | undefined {
  if (!support.available) return support.reason;
  if (process.getuid?.() !== 0) return "not running as root";
  return undefined;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export interface Launched {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Processes a test starts, in a scratch directory of their own, all killed by cleanup(). */
export class TestProcesses {
  readonly workDir: string;
  readonly #children: ChildProcess[] = [];

  private constructor(workDir: string) {
    this.workDir = workDir;
  }

  static async create(): Promise<TestProcesses> {
    return new TestProcesses(await mkdtemp(path.join(tmpdir(), "gust-cgroup-")));
  }

  /** Start `script` under /bin/sh inside `group` through its launcher arguments. */
  launch(group: SandboxCgroup, script: string): Launched {
    const child = spawn("/bin/sh", group.launcherArgs("/bin/sh", ["-c", script]), {
      stdio: ["ignore", "ignore", "pipe"],
      cwd: this.workDir,
    });
    this.#children.push(child);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    if (child.pid === undefined) throw new Error("could not start /bin/sh");
    return { pid: child.pid, exited, stderr: () => stderr };
  }

  /** A pid a script wrote into `name` in the work dir (`echo $$ > name`). */
  pidFrom(name: string): Promise<number> {
    return waitFor(`pid file ${name}`, async () => {
      const text = await readFile(path.join(this.workDir, name), "utf8").catch(() => "");
      return text.trim() === "" ? undefined : Number(text.trim());
    });
  }

  async cleanup(): Promise<void> {
    for (const child of this.#children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    await rm(this.workDir, { recursive: true, force: true });
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The fields of /proc/<pid>/stat after the command name: [0] is the state, [3] the session. */
async function statFields(pid: number): Promise<string[] | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** User plus system CPU time in clock ticks (stat fields 14 and 15). */
export async function cpuTicks(pid: number): Promise<number> {
  const fields = await statFields(pid);
  if (!fields) throw new Error(`process ${pid} is gone`);
  return Number(fields[11]) + Number(fields[12]);
}

export async function sessionId(pid: number): Promise<number> {
  const fields = await statFields(pid);
  if (!fields) throw new Error(`process ${pid} is gone`);
  return Number(fields[3]);
}

/** Gone, or a zombie waiting for its parent to reap it: it runs no more and is in no group. */
export async function isDead(pid: number): Promise<boolean> {
  const fields = await statFields(pid);
  return fields === undefined || fields[0] === "Z";
}
