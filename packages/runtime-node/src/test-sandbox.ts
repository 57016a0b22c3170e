/**
 * Starts the built bootstrap the way the worker does: copied on its own into
 * a runtime directory, under Node's permission model (read: runtime dir and
 * task root; write: a tmp dir), with an explicit environment.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { nodeBootstrap } from "@gust/runtime-node";
import { FakeRuntimeApi } from "./fake-runtime-api.js";

export interface SandboxOptions {
  /** Files of the task root, path → content. */
  files: Record<string, string>;
  /** Offer Gust's result-then-next exchange, as a Gust worker does. @default false */
  resultThenNext?: boolean;
  /** `_HANDLER`; omitted starts a function-less pool sandbox. */
  handler?: string;
  env?: Record<string, string>;
  /** The bootstrap version to run. @default "1.0.0" */
  bootstrapVersion?: string;
}

export interface Sandbox {
  api: FakeRuntimeApi;
  child: ChildProcess;
  taskRoot: string;
  tmpDir: string;
  /** A directory the sandbox must not be able to read. */
  outsideDir: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const bootstrap = nodeBootstrap(options.bootstrapVersion ?? "1.0.0");
  if (bootstrap === undefined) throw new Error(`no bootstrap ${options.bootstrapVersion}`);
  const base = await mkdtemp(join(tmpdir(), "gust-runtime-node-"));
  const runtimeDir = join(base, "runtime");
  const taskRoot = join(base, "task");
  const tmpDir = join(base, "tmp");
  const outsideDir = join(base, "outside");
  await cp(bootstrap.dir, runtimeDir, { recursive: true });
  await mkdir(taskRoot);
  await mkdir(tmpDir);
  await mkdir(outsideDir);
  await writeFile(join(outsideDir, "secret.txt"), "another tenant's secret");
  for (const [path, content] of Object.entries(options.files)) {
    await mkdir(dirname(join(taskRoot, path)), { recursive: true });
    await writeFile(join(taskRoot, path), content);
  }

  const api = await FakeRuntimeApi.start({ resultThenNext: options.resultThenNext ?? false });
  const env: Record<string, string> = {
    AWS_LAMBDA_RUNTIME_API: api.endpoint,
    LAMBDA_TASK_ROOT: taskRoot,
    AWS_LAMBDA_FUNCTION_NAME: "fn",
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128",
    TMPDIR: tmpDir,
    ...(options.handler === undefined ? {} : { _HANDLER: options.handler }),
    ...options.env,
  };
  const child = spawn(
    process.execPath,
    [
      "--experimental-permission",
      `--allow-fs-read=${runtimeDir}`,
      `--allow-fs-read=${taskRoot}`,
      `--allow-fs-write=${tmpDir}`,
      "--max-old-space-size=128",
      "--disable-warning=ExperimentalWarning",
      join(runtimeDir, bootstrap.entry),
    ],
    { cwd: taskRoot, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );

  return {
    api,
    child,
    taskRoot,
    tmpDir,
    outsideDir,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      await api.close();
      await rm(base, { recursive: true, force: true });
    },
  };
}
