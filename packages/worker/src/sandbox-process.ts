/**
 * The operating-system side of a process sandbox: the runtime's child
 * process in its own process group (so that killing the group takes
 * everything it forked), its output, its exit, and the memory watchdog
 * that kills it when it outgrows its MemorySize.
 */
import { existsSync } from "node:fs";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import os, { getPriority, setPriority } from "node:os";
import type { Logger } from "@gust/telemetry";
import { MemoryWatchdog } from "./memory-watchdog.js";
import type { SandboxExit } from "./sandbox.js";
import type { SandboxIdentity } from "./sandbox-isolation.js";
import { Signal, delay } from "./signal.js";

/**
 * Sandboxes run this much nicer than their worker (and in `gust dev` its frontend): a
 * function that keeps a core busy cannot slow down the dispatch of every
 * other invocation, and a sandbox woken by its next event does not preempt
 * the process that dispatches it. Measured: `gust dev` served 7–10% more
 * no-op invocations at 64 clients than with sandboxes at the worker's own.
 */
export const SANDBOX_NICE = 5;

/** coreutils' nice, which execs its command (the same pid) after raising its niceness. */
const NICE = ["/usr/bin/nice", "/bin/nice"].find((candidate) => existsSync(candidate));

export interface SandboxProcessOptions {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  identity: SandboxIdentity | undefined;
  /**
   * The command is a jail (jail.ts): bubblewrap reports a runtime killed by
   * signal N as exit status 128 + N, which is turned back into the signal.
   */
  jailed?: boolean;
  memoryLimitMb: number;
  /** Count the RSS of child processes too (custom runtimes fork; Node.js sandboxes cannot). */
  includeDescendants: boolean;
  /**
   * Run the RSS watchdog. Off where a control group bounds the sandbox's
   * memory: the kernel counts shared pages once, where a sum of RSS counts
   * them in every process, and it sees processes that left the tree.
   * @default true
   */
  watchMemory?: boolean;
  onOutput: (stream: "stdout" | "stderr", chunk: Buffer) => void;
  onMemoryExceeded: (rssMb: number) => void;
  logger: Logger;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]),
);

/** A jail's exit status as the runtime's own: 128 + N is "killed by signal N". */
export function fromJailStatus(code: number | null, signal: NodeJS.Signals | null): SandboxExit {
  if (code !== null && code > 128) {
    const name = SIGNAL_NAMES.get(code - 128);
    if (name !== undefined) return { code: null, signal: name };
  }
  return { code, signal };
}

export class SandboxProcess {
  /** Settles when the process has exited (or could not be started). */
  readonly exit = new Signal<SandboxExit>();
  /** Settles when its stdout and stderr are closed: all its output has been read. */
  readonly outputClosed = new Signal<void>();
  /** Set when the process could not be started at all (no executable, no permission). */
  spawnError: NodeJS.ErrnoException | undefined;
  readonly watchdog: MemoryWatchdog | undefined;
  readonly #child: ChildProcess;
  #groupGone = false;

  constructor(options: SandboxProcessOptions) {
    // Nicer from its first instruction: a setPriority after spawn would miss what the
    // launcher forks meanwhile (a jail's chain), on a busy host.
    const [command, args] =
      NICE === undefined
        ? [options.command, options.args]
        : [NICE, ["-n", String(SANDBOX_NICE), options.command, ...options.args]];
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.identity ? { uid: options.identity.uid, gid: options.identity.gid } : {}),
    });
    this.#child = child;
    if (child.pid !== undefined && NICE === undefined) {
      try {
        setPriority(child.pid, Math.min(19, getPriority() + SANDBOX_NICE));
      } catch {
        // Not allowed here (no such process any more): it runs at the worker's priority.
      }
    }
    child.stdout?.on("data", (chunk: Buffer) => options.onOutput("stdout", chunk));
    child.stderr?.on("data", (chunk: Buffer) => options.onOutput("stderr", chunk));
    child.once("close", () => this.outputClosed.resolve());
    child.once("exit", (code, signal) =>
      this.#exited(options.jailed === true ? fromJailStatus(code, signal) : { code, signal }),
    );
    child.once("error", (error: NodeJS.ErrnoException) => {
      // Only a failed spawn has no pid; it is followed by no 'exit'.
      if (child.pid !== undefined) return;
      options.logger.info("sandbox runtime could not be started", { error });
      this.spawnError = error;
      this.outputClosed.resolve();
      this.#exited({ code: 127, signal: null });
    });
    if (child.pid !== undefined && options.watchMemory !== false) {
      this.watchdog = new MemoryWatchdog({
        pid: child.pid,
        limitMb: options.memoryLimitMb,
        includeDescendants: options.includeDescendants,
        onExceeded: options.onMemoryExceeded,
      });
    }
  }

  /** SIGKILL the whole process group, synchronously. */
  kill(): void {
    const pid = this.#child.pid;
    if (pid === undefined || this.#groupGone) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // The group is already gone.
    }
  }

  /** Kill and wait (a bounded time) for the exit. */
  async stop(waitMs: number): Promise<void> {
    this.kill();
    if (!this.exit.settled) {
      const wait = delay(waitMs);
      await Promise.race([this.exit.promise, wait.promise]);
      wait.cancel();
    }
    this.watchdog?.stop();
  }

  #exited(exit: SandboxExit): void {
    if (this.exit.settled) return;
    // Whatever the runtime forked dies with it. After this the group id may be
    // reused by an unrelated process, so it is never signalled again.
    this.kill();
    this.#groupGone = true;
    this.watchdog?.stop();
    this.exit.resolve(exit);
  }
}
