/**
 * What a sandbox process starts with: the command line (Node's permission
 * model flags, the heap cap) and an environment holding only what Lambda
 * sets plus the function's own variables — never the host's.
 */
import path from "node:path";
import type { InvokeTarget, Runtime } from "@gust/protocol";
import { RESERVED_ENVIRONMENT_VARIABLES, Runtimes } from "@gust/protocol";
import { EXECUTED_VERSION } from "./lambda-log.js";

export interface SandboxPaths {
  /** The function's code (LAMBDA_TASK_ROOT), read-only to the sandbox. */
  taskRoot: string;
  /** The sandbox's writable directory (TMPDIR, HOME). */
  tmpDir: string;
  /** The runtime's files (LAMBDA_RUNTIME_DIR). */
  runtimeDir: string;
}

/** Lambda's rule for variable names. */
const VARIABLE_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * NODE_OPTIONS a function may set. Anything else is dropped: flags such as
 * `--allow-fs-read=/` would otherwise widen the permission model from inside.
 */
const ALLOWED_NODE_OPTIONS = [
  /^--enable-source-maps$/,
  /^--no-warnings$/,
  /^--no-deprecation$/,
  /^--trace-warnings$/,
  /^--trace-uncaught$/,
  /^--stack-trace-limit=\d{1,6}$/,
  /^--unhandled-rejections=(strict|warn|none|throw|warn-with-error-code)$/,
  /^--max-http-header-size=\d{1,9}$/,
];

export function sanitizeNodeOptions(value: string): string {
  return value
    .split(/\s+/)
    .filter((flag) => ALLOWED_NODE_OPTIONS.some((pattern) => pattern.test(flag)))
    .join(" ");
}

/** V8 heap cap for a MemorySize: room is left for code, stacks and buffers outside the heap. */
export function nodeHeapLimitMb(memoryMb: number): number {
  return Math.max(32, Math.floor(memoryMb * 0.85));
}

/** `node`'s command line; `extraFlags` are the runtime version's (checked against RECIPE_NODE_FLAGS). */
export function nodeArguments(
  paths: SandboxPaths,
  heapLimitMb: number,
  bootstrapFile: string,
  extraFlags: readonly string[] = [],
): string[] {
  return [
    "--experimental-permission",
    `--allow-fs-read=${paths.runtimeDir}`,
    `--allow-fs-read=${paths.taskRoot}`,
    // Lambda functions read back what they write to /tmp.
    `--allow-fs-read=${paths.tmpDir}`,
    `--allow-fs-write=${paths.tmpDir}`,
    `--max-old-space-size=${heapLimitMb}`,
    // Printed at every start, it would open every cold start's log.
    "--disable-warning=ExperimentalWarning",
    ...extraFlags,
    bootstrapFile,
  ];
}

/** Lambda's variables that do not depend on the function: all a pre-initialized sandbox starts with. */
export function platformEnvironment(
  paths: SandboxPaths,
  runtimeApi: string,
  region: string,
  runtime: Runtime,
): Record<string, string> {
  const env: Record<string, string> = {
    AWS_LAMBDA_RUNTIME_API: runtimeApi,
    LAMBDA_TASK_ROOT: paths.taskRoot,
    LAMBDA_RUNTIME_DIR: paths.runtimeDir,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    TZ: ":UTC",
    LANG: "en_US.UTF-8",
    PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    TMPDIR: paths.tmpDir,
    HOME: paths.tmpDir,
  };
  // Lambda sets AWS_EXECUTION_ENV for managed runtimes only, not for OS-only ones.
  if (runtime === Runtimes.nodejs20) env["AWS_EXECUTION_ENV"] = "AWS_Lambda_nodejs20.x";
  return env;
}

/**
 * The function's part of the environment: its Lambda variables and its own
 * Environment (names checked, NUL-free values, NODE_OPTIONS filtered). Lambda
 * variables win over the function's, as Lambda refuses to let them be set.
 */
export function functionEnvironment(
  target: InvokeTarget,
  logStreamName: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(target.environment)) {
    if (!VARIABLE_NAME.test(name) || RESERVED_ENVIRONMENT_VARIABLES.has(name)) continue;
    if (typeof value !== "string" || value.includes("\0")) continue;
    env[name] = name === "NODE_OPTIONS" ? sanitizeNodeOptions(value) : value;
  }
  return {
    ...env,
    _HANDLER: target.handler,
    AWS_LAMBDA_FUNCTION_NAME: target.name,
    AWS_LAMBDA_FUNCTION_VERSION: EXECUTED_VERSION,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(target.memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${target.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: logStreamName,
  };
}

/** The full environment of a sandbox started for its function. */
export function sandboxEnvironment(
  paths: SandboxPaths,
  runtimeApi: string,
  region: string,
  target: InvokeTarget,
  logStreamName: string,
): Record<string, string> {
  const platform = platformEnvironment(paths, runtimeApi, region, target.runtime);
  const own = functionEnvironment(target, logStreamName);
  // Platform defaults such as PATH, LANG and TZ may be overridden, reserved names may not.
  const merged: Record<string, string> = { ...platform, ...own };
  for (const name of Object.keys(platform)) {
    if (RESERVED_ENVIRONMENT_VARIABLES.has(name)) merged[name] = platform[name] as string;
  }
  return merged;
}
