import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  JOIN_FAILED_EXIT_CODE,
  joinScriptFor,
  launcherArgsFor,
  shellQuote,
} from "./join-script.js";

// Plain files stand in for cgroup.procs: what is tested is the shell's side.
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gust-join-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr, pid: child.pid! }));
  });
}

describe("shellQuote", () => {
  it("survives quotes, spaces and expansions", async () => {
    const word = `it's a $HOME \`date\` "x" \\ ;|&`;
    const result = await run(["-c", `printf %s ${shellQuote(word)}`]);
    expect(result.stdout).toBe(word);
  });
});

describe("the launcher", () => {
  it("writes its own pid into every procs file, then execs the command with its arguments verbatim", async () => {
    const files = [path.join(dir, "memory procs"), path.join(dir, "it's pids")];
    for (const file of files) await writeFile(file, "");
    const result = await run(
      launcherArgsFor(files, "/bin/sh", ["-c", 'echo "$$ $1"', "sh", "a $b 'c'"]),
    );
    expect(result.code).toBe(0);
    // exec keeps the pid: the command ran as the very process that joined.
    expect(result.stdout).toBe(`${result.pid} a $b 'c'\n`);
    for (const file of files)
      expect((await readFile(file, "utf8")).trim()).toBe(String(result.pid));
  });

  it("never runs the command when a join fails", async () => {
    const joined = path.join(dir, "joined");
    await writeFile(joined, "");
    const marker = path.join(dir, "ran");
    const result = await run(
      launcherArgsFor([joined, path.join(dir, "missing", "cgroup.procs")], "/bin/sh", [
        "-c",
        `touch ${shellQuote(marker)}`,
      ]),
    );
    expect(result.code).toBe(JOIN_FAILED_EXIT_CODE);
    expect(result.stderr).toMatch(/cannot join/);
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
  });

  it("needs a procs file", () => {
    expect(() => joinScriptFor([])).toThrow(RangeError);
  });
});
