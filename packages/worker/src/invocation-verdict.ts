/**
 * How an invocation ended, in Lambda's terms: the outcome Gust counts, the
 * payload the caller gets (the response, or Lambda's error JSON), the status
 * REPORT shows and the platform lines the log gets.
 */
import { Outcomes } from "@gust/protocol";
import type { Outcome } from "@gust/protocol";
import { errorTypeOf, exitMessage, lambdaErrorPayload, timeoutMessage } from "./lambda-log.js";
import type { Report } from "./lambda-log.js";
import type { RuntimeOutcome } from "./runtime-api-server.js";
import type { SandboxExit } from "./sandbox.js";

/** Why a runtime never got to ask for its first invocation. */
export type InitFailure =
  | { kind: "init-error"; body: Uint8Array }
  | { kind: "exit"; exit: SandboxExit }
  | { kind: "timeout" };

/** What ended an invocation other than the runtime's own answer. */
export type Interruption =
  { kind: "exit"; exit: SandboxExit } | { kind: "memory" } | { kind: "timeout" };

export interface Verdict {
  outcome: Outcome;
  payload: Uint8Array;
  status?: Report["status"];
  /** Platform lines for the log, before END. */
  logLines: string[];
}

const EXIT_ERROR = "Runtime.ExitError";
/** The watchdog kills with SIGKILL; Lambda reports an out-of-memory kill the same way. */
const MEMORY_KILL: SandboxExit = { code: null, signal: "SIGKILL" };

export function fromRuntime(outcome: RuntimeOutcome): Verdict {
  switch (outcome.kind) {
    case "response":
      return { outcome: Outcomes.success, payload: outcome.body, logLines: [] };
    case "error":
      return { outcome: Outcomes.functionError, payload: outcome.body, logLines: [] };
    case "abandoned":
      // Only a dispose abandons an invocation that is still awaited.
      return {
        outcome: Outcomes.crash,
        payload: lambdaErrorPayload(EXIT_ERROR, "the sandbox was stopped"),
        status: { kind: "error", errorType: EXIT_ERROR },
        logLines: [],
      };
  }
}

export function fromInterruption(
  requestId: string,
  interruption: Interruption,
  timeoutSec: number,
  now: Date,
): Verdict {
  if (interruption.kind === "timeout") {
    const message = timeoutMessage(requestId, timeoutSec, now);
    return {
      outcome: Outcomes.timeout,
      payload: lambdaErrorPayload("Sandbox.Timedout", message),
      status: { kind: "timeout" },
      logLines: [message],
    };
  }
  const exit = interruption.kind === "exit" ? interruption.exit : MEMORY_KILL;
  const message = exitMessage(requestId, exit);
  return {
    outcome: Outcomes.crash,
    payload: lambdaErrorPayload(EXIT_ERROR, message),
    status: { kind: "error", errorType: EXIT_ERROR },
    logLines: [message, EXIT_ERROR],
  };
}

export function fromInitFailure(
  requestId: string,
  failure: InitFailure,
  initTimeoutMs: number,
  now: Date,
): Verdict {
  if (failure.kind === "timeout") {
    const message = timeoutMessage(requestId, initTimeoutMs / 1000, now);
    return {
      outcome: Outcomes.timeout,
      payload: lambdaErrorPayload("Sandbox.Timedout", message),
      status: { kind: "timeout" },
      logLines: [message],
    };
  }
  if (failure.kind === "exit") {
    const message = exitMessage(requestId, failure.exit);
    return {
      outcome: Outcomes.initError,
      payload: lambdaErrorPayload(EXIT_ERROR, message),
      status: { kind: "error", errorType: EXIT_ERROR },
      logLines: [message, EXIT_ERROR],
    };
  }
  return {
    outcome: Outcomes.initError,
    payload: failure.body,
    status: { kind: "error", errorType: errorTypeOf(failure.body) ?? "Runtime.Unknown" },
    logLines: [],
  };
}
