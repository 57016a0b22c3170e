/**
 * Running the host's network tools (`ip`, `nsenter`, `iptables`). They run as
 * the worker (root) with a fixed environment, never a tenant's, and are
 * found in the system directories rather than through PATH.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import { GustError } from "@gust/protocol";

/** A network tool failed. Retrying the same command rarely helps. */
export class SandboxNetworkError extends GustError {
  override name = "SandboxNetworkError";
  readonly command: string;
  readonly stderr: string;
  constructor(
    message: string,
    options: { command?: string; stderr?: string; cause?: unknown } = {},
  ) {
    super(message, "sandbox-network", { cause: options.cause, retryable: false });
    this.command = options.command ?? "";
    this.stderr = options.stderr ?? "";
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs one program to completion; `input` is written to its stdin. Never
 * throws for a non-zero exit: callers decide which failures matter.
 */
export type CommandRunner = (
  file: string,
  args: string[],
  input?: string,
) => Promise<CommandResult>;

const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };

export const runCommand: CommandRunner = (file, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: TOOL_ENV, stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (cause) =>
      reject(new SandboxNetworkError(`cannot run ${file}`, { command: file, cause })),
    );
    child.on("close", (code, signal) =>
      resolve({
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
        exitCode: code ?? (signal ? 128 : 1),
      }),
    );
    child.stdin.on("error", () => {
      // The program exited without reading its input; its exit code says why.
    });
    child.stdin.end(input ?? "");
  });

/** Like the runner, but a non-zero exit is a SandboxNetworkError carrying stderr. */
export async function runChecked(
  run: CommandRunner,
  file: string,
  args: string[],
  input?: string,
): Promise<string> {
  const result = await run(file, args, input);
  if (result.exitCode !== 0) {
    const command = [path.basename(file), ...args].join(" ");
    const detail = result.stderr.trim() || `exit code ${result.exitCode}`;
    throw new SandboxNetworkError(`${command}: ${detail}`, { command, stderr: result.stderr });
  }
  return result.stdout;
}

const SYSTEM_BIN_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The first executable `name` in the system directories. */
export async function findTool(name: string): Promise<string | undefined> {
  for (const dir of SYSTEM_BIN_DIRS) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}
