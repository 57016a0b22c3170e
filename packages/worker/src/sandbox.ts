/**
 * The Sandbox seam: one execution environment serving one function of one
 * tenant for its whole life. ProcessSandbox (a child process) is the portable
 * implementation; the seam leaves room for microVMs, and unit tests of the
 * pool use a fake.
 */
import { GustError } from "@gust/protocol";
import type { InvokeTarget, Outcome, RuntimeVersionRef } from "@gust/protocol";
import type { Span } from "@gust/telemetry";

export interface SandboxInvocation {
  requestId: string;
  payload: Uint8Array;
  /** Client context JSON text (already base64-decoded). */
  clientContext?: string;
  /** X-Ray trace header the caller sent; handed on when the invocation is not traced. */
  traceId?: string;
  /** The worker's span; the sandbox records its run as a child and hands that context on. */
  parentSpan?: Span | undefined;
  /** Collect the invocation's log tail (costs a short wait for the runtime's output to drain). */
  tailLog: boolean;
}

export interface SandboxResult {
  outcome: Outcome;
  /** The handler's response, or Lambda's error JSON. */
  payload: Uint8Array;
  /** Handler run time, as REPORT's Duration. */
  durationMs: number;
  /**
   * The run time inside the sandbox, from its event to its result, as its
   * runtime reported it (Gust's Node.js runtime does; others do not): the
   * run without the wait for a core.
   */
  runDurationMs?: number;
  /** Last 4 KB of the invocation's log when asked for. */
  logTail?: string;
  /** False once the sandbox cannot take another invocation (crash, timeout, init error). */
  reusable: boolean;
}

export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Sandbox {
  readonly id: string;
  /** True once the process (or VM) is gone. */
  readonly exited: boolean;
  /**
   * Resolves when the runtime has started and asks for work; rejects if it
   * dies first. A pre-initialized sandbox is only handed out once ready.
   */
  ready(): Promise<void>;
  /** Give a function-less sandbox its function: code into its task root, then the assignment. */
  assign(target: InvokeTarget, zip: Uint8Array): Promise<void>;
  /**
   * Run one invocation; never rejects for anything the function does.
   * Rejects with SandboxExitedError when the sandbox died after its previous
   * invocation, before this one reached it.
   */
  invoke(invocation: SandboxInvocation): Promise<SandboxResult>;
  /** Called once when the sandbox dies on its own or is disposed. */
  onExit(listener: (exit: SandboxExit) => void): void;
  /** Kill everything it runs and remove its files. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * A sandbox died between invocations, before the one it was handed reached
 * its runtime: nothing of that invocation ran, and another sandbox may run it.
 */
export class SandboxExitedError extends GustError {
  override name = "SandboxExitedError";
  constructor(message: string) {
    super(message, "sandbox-exited", { retryable: true });
  }
}

export interface SandboxFactory {
  /** A started, function-less Node.js sandbox of one runtime version, for its pre-initialized pool. */
  startPreinitialized(version: RuntimeVersionRef): Promise<Sandbox>;
  /**
   * A sandbox started for one function, its code already in place (a cold
   * start), on the target's runtime version.
   */
  startFor(target: InvokeTarget, zip: Uint8Array): Promise<Sandbox>;
  /** Release what the factory holds (runtime files, directories). */
  close(): Promise<void>;
}
