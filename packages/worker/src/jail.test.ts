/**
 * The jail on its own: what a process inside can see and reach. Runs where
 * the host can jail (root, bubblewrap, socat); elsewhere it says why it skips.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  JAIL_OPEN_FILES,
  JAIL_RUNTIME_API,
  JailPaths,
  detectJail,
  jailLaunch,
  environmentWords,
  launchLine,
  writeJailIdentity,
} from "./jail.js";
import { shellQuote } from "./cgroup/index.js";
import type { JailTools } from "./jail.js";

describe("env -i words", () => {
  it("are the variables, then the command and its arguments", () => {
    const words = environmentWords({ A: "1", B: "x y\nz" }, "/bin/sh", ["-c", "echo $A"]);
    expect(words).toEqual(["A=1", "B=x y\nz", "/bin/sh", "-c", "echo $A"]);
  });

  it("drop names env would misread and values with NUL", () => {
    const words = environmentWords({ "A=B": "1", "-u": "2", OK: "3", BAD: "a\0b" }, "/x", []);
    expect(words).toEqual(["OK=3", "/x"]);
  });

  it("refuse a command env would take for a variable", () => {
    expect(() => environmentWords({}, "A=/bin/sh", [])).toThrow(/may not contain/);
  });

  it("reach the runtime exactly through env -S, whatever they hold", async () => {
    const words = [
      "A=x y",
      "B=new\nline",
      "C=$HOME ${HOME} #not a comment",
      "D=back\\slash \\n \\\\",
      `E=quo'te"dq`,
      "F=",
      "G=\\c\\_",
    ];
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        "/bin/sh",
        ["-c", 'exec env -i -S "$1"', "sh", launchLine([...words, "/usr/bin/env", "-0"])],
        (error, stdout) => {
          if (error) reject(new Error(`env -S failed: ${error.message}`));
          else resolve(stdout);
        },
      ),
    );
    expect(output.split("\0").filter((word) => word !== "")).toEqual(words);
  });
});

const support = await detectJail();
const reason = support.available ? "" : ` (skipped: ${support.reason})`;

describe.skipIf(!support.available)(`a jailed process${reason}`, () => {
  const tools = (support as { tools: JailTools }).tools;
  const uid = 100_000 + Math.floor(Math.random() * 1_000_000);
  let dir: string;
  let hostSecret: string;
  let loopbackServer: http.Server;
  let loopbackPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "gust-jail-test-"));
    await Promise.all(
      ["task", "runtime", "run", "etc"].map((name) => mkdir(path.join(dir, name), { mode: 0o755 })),
    );
    await writeFile(path.join(dir, "task", "hello.txt"), "hello from the task root\n", {
      mode: 0o644,
    });
    await writeJailIdentity(path.join(dir, "etc"), uid, uid);
    hostSecret = path.join(dir, "host-secret.txt");
    await writeFile(hostSecret, "secret", { mode: 0o644 });
    loopbackServer = http.createServer((_, response) => response.end("platform"));
    await new Promise<void>((resolve) => loopbackServer.listen(0, "127.0.0.1", resolve));
    loopbackPort = (loopbackServer.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    loopbackServer?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs a shell script in a fresh jail; resolves with its output and exit code. */
  async function jailed(
    script: string,
    env: Record<string, string> = {},
    tmpBytes = 8 * 1024 * 1024,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const launch = await jailLaunch(tools, {
      taskRoot: path.join(dir, "task"),
      runtimeDir: path.join(dir, "runtime"),
      runDir: path.join(dir, "run"),
      etcDir: path.join(dir, "etc"),
      command: "/bin/bash",
      args: ["-c", script],
      env: { PATH: "/usr/bin:/bin", ...env },
      uid,
      gid: uid,
      tmpBytes,
    });
    return new Promise((resolve) => {
      execFile(
        launch.command,
        launch.args,
        { env: launch.env, timeout: 30_000 },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  it("runs as its own uid with no capabilities and no other process in sight", async () => {
    const result = await jailed(
      "id -u; grep CapEff /proc/self/status; ls /proc | grep -c '^[0-9]'",
    );
    const [id, caps, processes] = result.stdout.trim().split("\n");
    expect(id).toBe(String(uid));
    expect(caps).toMatch(/CapEff:\s+0+$/);
    // bwrap's init, bash and the forwarder, nothing of the host's.
    expect(Number(processes)).toBeLessThan(8);
  });

  it("sees its code read-only and no host file outside the system directories", async () => {
    const result = await jailed(
      `cat ${JailPaths.taskRoot}/hello.txt; touch ${JailPaths.taskRoot}/x 2>&1 || echo ro-task;` +
        `cat ${shellQuote(hostSecret)} 2>&1 || echo no-host-file; ls /root 2>&1 || echo no-root;` +
        `touch /usr/x 2>&1 || echo ro-usr; touch /x 2>&1 || echo ro-root`,
    );
    expect(result.stdout).toContain("hello from the task root");
    for (const word of ["ro-task", "no-host-file", "no-root", "ro-usr", "ro-root"]) {
      expect(result.stdout).toContain(word);
    }
    expect(result.stdout).not.toContain("secret\n");
  });

  it("gets the environment it was given and nothing of the host's", async () => {
    process.env["GUST_JAIL_TEST_CANARY"] = "host value";
    try {
      const result = await jailed("env", { FUNCTION_VAR: "mine" });
      expect(result.stdout).toContain("FUNCTION_VAR=mine");
      expect(result.stdout).not.toContain("GUST_JAIL_TEST_CANARY");
    } finally {
      delete process.env["GUST_JAIL_TEST_CANARY"];
    }
  });

  it("has a private /tmp capped at its size, and a private /dev/shm", async () => {
    const result = await jailed(
      "echo mine > /tmp/f; dd if=/dev/zero of=/tmp/big bs=1M count=64 2>&1 | grep -o 'No space left on device'; " +
        "du -sm /tmp | cut -f1; echo x > /dev/shm/s && echo shm-ok",
    );
    expect(result.stdout).toMatch(/No space left on device/);
    const lines = result.stdout.trim().split("\n");
    expect(Number(lines.at(-2))).toBeLessThanOrEqual(8);
    expect(result.stdout).toContain("shm-ok");
    const second = await jailed("ls -A /tmp /dev/shm");
    expect(second.stdout).not.toMatch(/\bf\b|big|\bs\b/);
  });

  it(`caps open files at ${JAIL_OPEN_FILES}, and the cap cannot be raised`, async () => {
    const result = await jailed(`ulimit -n; ulimit -n ${JAIL_OPEN_FILES * 4} 2>&1 || echo refused`);
    expect(result.stdout.split("\n")[0]).toBe(String(JAIL_OPEN_FILES));
    expect(result.stdout).toContain("refused");
  });

  it("reaches its Runtime API at 127.0.0.1:9001 and nothing on the host's loopback", async () => {
    const socketPath = path.join(dir, "run", "runtime.sock");
    const api = http.createServer((request, response) =>
      response.end(`runtime api saw ${request.url}`),
    );
    await new Promise<void>((resolve) => api.listen(socketPath, resolve));
    const { chmod } = await import("node:fs/promises");
    await chmod(socketPath, 0o666);
    try {
      const result = await jailed(
        `curl -s http://${JAIL_RUNTIME_API}/2018-06-01/runtime/invocation/next; echo;` +
          `curl -s -m 2 http://127.0.0.1:${loopbackPort}/ || echo no-host-loopback;` +
          `(exec 3<>/dev/tcp/127.0.0.1/${loopbackPort}) 2>/dev/null || echo no-tcp`,
      );
      expect(result.stdout).toContain("runtime api saw /2018-06-01/runtime/invocation/next");
      expect(result.stdout).toContain("no-host-loopback");
      expect(result.stdout).toContain("no-tcp");
      expect(result.stdout).not.toContain("platform");
    } finally {
      await new Promise<void>((resolve) => api.close(() => resolve()));
    }
  });

  it("dies with the process that launched it, even one killed outright", async () => {
    const launch = await jailLaunch(tools, {
      taskRoot: path.join(dir, "task"),
      runtimeDir: path.join(dir, "runtime"),
      runDir: path.join(dir, "run"),
      etcDir: path.join(dir, "etc"),
      command: "/bin/sleep",
      args: ["617"],
      env: {},
      uid,
      gid: uid,
      tmpBytes: 1024 * 1024,
    });
    // A stand-in worker: spawns the jail, says so, and is then SIGKILLed.
    const { spawn } = await import("node:child_process");
    const worker = spawn(
      process.execPath,
      [
        "-e",
        `const c = require("node:child_process").spawn(process.argv[1], JSON.parse(process.argv[2]), { env: JSON.parse(process.argv[3]), stdio: "ignore", detached: true });
         setTimeout(() => console.log("launched", c.pid), 500); setInterval(() => {}, 1000);`,
        launch.command,
        JSON.stringify(launch.args),
        JSON.stringify(launch.env),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve) => worker.stdout.once("data", () => resolve()));
    const sleepers = async () => {
      const found: number[] = [];
      for (const entry of await readdir("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
        const status = await readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
        if (
          cmdline === "/bin/sleep\u0000617\u0000" &&
          new RegExp(`^Uid:\\s+${uid}\\b`, "m").test(status)
        )
          found.push(Number(entry));
      }
      return found;
    };
    for (let i = 0; i < 50 && (await sleepers()).length === 0; i++) await delay(100);
    expect(await sleepers()).toHaveLength(1);
    worker.kill("SIGKILL");
    let left = await sleepers();
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await delay(100);
      left = await sleepers();
    }
    expect(left).toEqual([]);
  });

  it("keeps the function's variables out of every step that runs as root", async () => {
    const launch = await jailLaunch(tools, {
      taskRoot: path.join(dir, "task"),
      runtimeDir: path.join(dir, "runtime"),
      runDir: path.join(dir, "run"),
      etcDir: path.join(dir, "etc"),
      command: "/bin/true",
      args: [],
      env: { LD_PRELOAD: "/nonexistent.so", SECRET_SETTING: "hunter2" },
      uid,
      gid: uid,
      tmpBytes: 1024 * 1024,
    });
    // Nor on a command line that lives as long as the sandbox.
    expect(launch.args.join(" ")).not.toContain("hunter2");
    // LD_PRELOAD, GLIBC_TUNABLES or BASH_ENV in a root step's environment would run tenant code as root.
    expect(Object.keys(launch.env).sort()).toEqual(["LANG", "PATH"]);
    const result = await jailed("echo $LD_PRELOAD; id -u", { LD_PRELOAD: "/nonexistent.so" });
    // The loader complains inside the jail, as the sandbox user, and the run goes on.
    expect(result.stdout).toContain(String(uid));
    expect(result.stdout).toContain("/nonexistent.so");
  });
});
