/**
 * The lines and error payloads Lambda's platform writes, in Lambda's format,
 * so that tools reading CloudWatch-style logs (and people used to them) read
 * Gust's unchanged. Example of the real thing:
 *
 *   INIT_START Runtime Version: nodejs:20.v13\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:0cdc…
 *   START RequestId: 8f50… Version: $LATEST
 *   END RequestId: 8f50…
 *   REPORT RequestId: 8f50…\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.76 ms
 */
import { runtimeVersionLabel, type RuntimeVersionRef } from "@gust/protocol";
import type { SandboxExit } from "./sandbox.js";

export const EXECUTED_VERSION = "$LATEST";

/** The first line of a sandbox's log: which runtime version it starts. */
export function initStartLine(version: RuntimeVersionRef): string {
  return `INIT_START Runtime Version: ${runtimeVersionLabel(version.runtime, version.version)}\tRuntime Version ARN: ${version.arn}`;
}

export function startLine(requestId: string): string {
  return `START RequestId: ${requestId} Version: ${EXECUTED_VERSION}`;
}

export function endLine(requestId: string): string {
  return `END RequestId: ${requestId}`;
}

export interface Report {
  requestId: string;
  durationMs: number;
  memoryMb: number;
  maxMemoryUsedMb: number;
  /** Present on the first invocation of a sandbox (not on warm starts). */
  initDurationMs?: number;
  /** Lambda adds a status to REPORT when the invocation did not end normally. */
  status?: { kind: "timeout" } | { kind: "error"; errorType: string };
}

export function reportLine(report: Report): string {
  const parts = [
    `REPORT RequestId: ${report.requestId}`,
    `Duration: ${report.durationMs.toFixed(2)} ms`,
    // Lambda bills in 1 ms increments, rounding up.
    `Billed Duration: ${Math.max(1, Math.ceil(report.durationMs))} ms`,
    `Memory Size: ${report.memoryMb} MB`,
    `Max Memory Used: ${Math.round(report.maxMemoryUsedMb)} MB`,
  ];
  if (report.initDurationMs !== undefined)
    parts.push(`Init Duration: ${report.initDurationMs.toFixed(2)} ms`);
  if (report.status?.kind === "timeout") parts.push("Status: timeout");
  if (report.status?.kind === "error")
    parts.push("Status: error", `Error Type: ${report.status.errorType}`);
  return parts.join("\t");
}

const SIGNAL_TEXT: Partial<Record<NodeJS.Signals, string>> = {
  SIGKILL: "killed",
  SIGABRT: "aborted",
  SIGSEGV: "segmentation fault",
  SIGTERM: "terminated",
  SIGINT: "interrupt",
  SIGBUS: "bus error",
  SIGILL: "illegal instruction",
  SIGFPE: "floating point exception",
  SIGHUP: "hangup",
  SIGPIPE: "broken pipe",
};

/** How Lambda describes a runtime's exit: "exit status 1", "signal: killed". */
export function describeExit(exit: SandboxExit): string {
  if (exit.signal !== null) return `signal: ${SIGNAL_TEXT[exit.signal] ?? exit.signal}`;
  return `exit status ${exit.code ?? 0}`;
}

export function timeoutMessage(requestId: string, timeoutSec: number, at: Date): string {
  return `${at.toISOString()} ${requestId} Task timed out after ${timeoutSec.toFixed(2)} seconds`;
}

export function exitMessage(requestId: string, exit: SandboxExit): string {
  return `RequestId: ${requestId} Error: Runtime exited with error: ${describeExit(exit)}`;
}

/** Lambda's error JSON, as a response payload. */
export function lambdaErrorPayload(errorType: string, errorMessage: string): Uint8Array {
  return Buffer.from(JSON.stringify({ errorType, errorMessage }));
}

/** The errorType of Lambda error JSON, if it has one. */
export function errorTypeOf(payload: Uint8Array): string | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload).toString("utf8"));
    if (typeof parsed === "object" && parsed !== null && "errorType" in parsed) {
      const { errorType } = parsed;
      if (typeof errorType === "string") return errorType;
    }
  } catch {
    // Not JSON.
  }
  return undefined;
}

/** A log stream name as Lambda makes them: 2026/11/27/[$LATEST]<32 hex>. */
export function logStreamName(at: Date, id: string): string {
  const day = at.toISOString().slice(0, 10).replaceAll("-", "/");
  return `${day}/[${EXECUTED_VERSION}]${id}`;
}
