/**
 * A function as the registry stores it and as workers receive it. Field names
 * follow Lambda's FunctionConfiguration where one exists, camel-cased.
 */
import type { RuntimeManagementConfig } from "./runtime-versions.js";

export const Runtimes = {
  nodejs20: "nodejs20.x",
  provided: "provided",
  providedAl2: "provided.al2",
  providedAl2023: "provided.al2023",
} as const;
export type Runtime = (typeof Runtimes)[keyof typeof Runtimes];

const RUNTIME_SET: ReadonlySet<string> = new Set(Object.values(Runtimes));
export function isRuntime(value: unknown): value is Runtime {
  return typeof value === "string" && RUNTIME_SET.has(value);
}
/** `provided*` runtimes run the bundle's own executable `bootstrap`. */
export function isCustomRuntime(runtime: Runtime): boolean {
  return runtime !== Runtimes.nodejs20;
}

/** Lambda's limits and defaults for the fields Gust supports. */
export const FunctionLimits = {
  minTimeoutSec: 1,
  maxTimeoutSec: 900,
  defaultTimeoutSec: 3,
  minMemoryMb: 128,
  maxMemoryMb: 10_240,
  defaultMemoryMb: 128,
  /** Function names: letters, digits, hyphens, underscores; 1–64 characters. */
  namePattern: /^[A-Za-z0-9_-]{1,64}$/,
  /** Environment variables may total 4 KB (keys and values). */
  maxEnvironmentBytes: 4096,
  /** ZipFile passed directly in CreateFunction/UpdateFunctionCode (zipped). */
  maxZipBytes: 50 * 1024 * 1024,
  /** Unzipped bundle, Lambda's deployment package limit. */
  maxUnzippedBytes: 250 * 1024 * 1024,
  maxZipEntries: 10_000,
  /** Invocation payloads: 6 MB synchronous, 1 MB asynchronous (Event). */
  maxSyncPayloadBytes: 6 * 1024 * 1024,
  maxAsyncPayloadBytes: 1024 * 1024,
  /** Reserved concurrency must leave at least this much of a tenant's maximum unreserved. */
  minUnreservedConcurrency: 100,
} as const;

/**
 * Environment variables Lambda sets itself and does not let a function set
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime):
 * the registry refuses them at configuration time, the worker at sandbox start.
 */
export const RESERVED_ENVIRONMENT_VARIABLES: ReadonlySet<string> = new Set([
  "_HANDLER",
  "_X_AMZN_TRACE_ID",
  "AWS_DEFAULT_REGION",
  "AWS_REGION",
  "AWS_EXECUTION_ENV",
  "AWS_LAMBDA_FUNCTION_NAME",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
  "AWS_LAMBDA_FUNCTION_VERSION",
  "AWS_LAMBDA_INITIALIZATION_TYPE",
  "AWS_LAMBDA_LOG_GROUP_NAME",
  "AWS_LAMBDA_LOG_STREAM_NAME",
  "AWS_ACCESS_KEY",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_LAMBDA_RUNTIME_API",
  "LAMBDA_TASK_ROOT",
  "LAMBDA_RUNTIME_DIR",
  // Gust's: the unix socket a jailed Node.js runtime reaches its Runtime API on.
  "GUST_RUNTIME_API_SOCKET",
]);

export interface FunctionRecord {
  tenantId: string;
  accountId: string;
  name: string;
  functionArn: string;
  runtime: Runtime;
  handler: string;
  description: string;
  role: string;
  timeoutSec: number;
  memoryMb: number;
  environment: Record<string, string>;
  /** Base64 SHA-256 of the zip, as Lambda reports CodeSha256. */
  codeSha256: string;
  codeSize: number;
  /** Changes on every update; workers key warm sandboxes by it. */
  revisionId: string;
  /** Lambda's format: 2026-11-27T08:54:58.000+0000 */
  lastModified: string;
  /**
   * Lambda's reserved concurrency (PutFunctionConcurrency): carved out of the
   * tenant's maximum for this function alone, and its cap; 0 stops it.
   */
  reservedConcurrency?: number;
  /**
   * Lambda's runtime management configuration (PutRuntimeManagementConfig);
   * absent means Auto: the function runs its runtime's default version.
   */
  runtimeManagement?: RuntimeManagementConfig;
  /**
   * Gust's rollout setting: the owner says the function may run twice on the
   * same payload, so a runtime rollout shadows it (runs it on the new version
   * too) instead of answering callers from the new version. Absent means no.
   */
  safeToRepeat?: boolean;
}

/** `tenant/name`, the key under which workers and frontends track a function. */
export function functionKey(tenantId: string, name: string): string {
  return `${tenantId}/${name}`;
}

export function functionArn(region: string, accountId: string, name: string): string {
  return `arn:aws:lambda:${region}:${accountId}:function:${name}`;
}

export function lambdaTimestamp(date: Date): string {
  return date.toISOString().replace("Z", "+0000");
}
