/**
 * What takes a worker's sandboxes down when the worker dies without closing
 * (SIGKILL, the OOM killer). Each sandbox's bubblewrap dies with its parent
 * (--die-with-parent), but a sandbox frozen between invocations cannot act on
 * that SIGKILL until it is thawed, and a dead worker thaws nothing: its
 * frozen sandboxes would live on until a successor of the same name ran
 * CgroupTree.removeStale.
 *
 * So every tree starts a reaper: a root shell, in a session of its own and in
 * no sandbox's group, that blocks reading a pipe from the worker. The pipe
 * reaches end-of-file when the worker closes the tree or dies, however it
 * dies; the reaper then SIGKILLs every process in the worker's sandbox
 * groups and thaws them, so the kills land, and exits.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { shellQuote } from "./join-script.js";

export class Reaper {
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /**
   * Watch the groups below `killDirs` (every cgroup.procs under them) and thaw
   * the v1 freezer groups below `freezerDir` or the v2 groups below `v2Dir`.
   */
  static start(options: {
    killDirs: readonly string[];
    freezerDir?: string;
    v2Dir?: string;
  }): Reaper {
    const quoted = (dirs: readonly string[]) => dirs.map(shellQuote).join(" ");
    const lines = [
      "read -r _ || true",
      `find ${quoted(options.killDirs)} -mindepth 2 -name cgroup.procs 2>/dev/null | while read -r f; do`,
      '  while read -r p; do kill -9 "$p" 2>/dev/null; done < "$f"',
      "done",
    ];
    if (options.freezerDir !== undefined) {
      lines.push(
        `find ${shellQuote(options.freezerDir)} -mindepth 2 -name freezer.state 2>/dev/null | while read -r f; do`,
        '  echo THAWED > "$f" 2>/dev/null',
        "done",
      );
    }
    if (options.v2Dir !== undefined) {
      lines.push(
        `find ${shellQuote(options.v2Dir)} -mindepth 2 -name cgroup.freeze 2>/dev/null | while read -r f; do`,
        '  echo 0 > "$f" 2>/dev/null',
        "done",
      );
    }
    lines.push("exit 0");
    const child = spawn("/bin/sh", ["-c", lines.join("\n"), "gust-reaper"], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" },
    });
    child.on("error", () => undefined);
    child.stdin?.on("error", () => undefined);
    // Neither the reaper nor its pipe keeps the worker's event loop alive.
    child.unref();
    // A pipe's stream is a socket, which can be unref'd; Writable's type does not say so.
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return new Reaper(child);
  }

  /** The worker closes its tree: the reaper finds nothing left and exits. */
  close(): void {
    this.#child.stdin?.end();
  }
}
