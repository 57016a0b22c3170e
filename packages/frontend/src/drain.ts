/**
 * Draining a frontend before it exits (SIGTERM, as Kubernetes and a rolling
 * restart send it), so that no client sees a failed request:
 *
 * 1. At once: `/readyz` answers 503, the frontend's drain hooks run, and
 *    the Event dispatcher stops taking jobs; those in progress run to their
 *    end, throttled ones waiting in backoff are handed back to the queue.
 *    The fleet-wide admission keeps gossiping until the frontend closes: its
 *    invocations still hold slots while they run, and peers that expired it
 *    early would hand those slots out a second time. Its share moves to the
 *    others when its reports stop and it expires.
 * 2. For `delayMs` the frontend goes on serving whatever still reaches it:
 *    a load balancer only notices the failing readiness at its next health
 *    checks (HAProxy: `fall` × `inter`; Kubernetes: the readiness probe's
 *    period × failureThreshold, plus the time for endpoints to update). A
 *    frontend that refused requests in that window would fail them.
 * 3. Then it stops listening: new connections are refused, which a load
 *    balancer may safely retry on another frontend, since nothing reached
 *    this one. A request that still arrives on an open keep-alive connection
 *    is answered 503 ServiceException, which SDKs retry; every response sent
 *    while draining carries `Connection: close`.
 * 4. It waits for the requests and Event invocations in progress, at most
 *    `timeoutMs` after step 3, then lets the caller close it.
 *
 * An Event invocation still running at the timeout is left unacknowledged:
 * the queue delivers it again after its ack wait, so it runs at least once
 * (it may run twice, which Lambda's at-least-once delivery allows).
 */
import { ConfigError } from "@gust/protocol";

export interface DrainOptions {
  /**
   * How long the frontend keeps serving after its readiness turns 503, so the
   * load balancer stops sending it requests before it stops listening.
   * @default DEFAULT_DRAIN_DELAY_MS
   */
  delayMs?: number;
  /** The longest wait for requests and Event invocations in progress, after the delay. @default DEFAULT_DRAIN_TIMEOUT_MS */
  timeoutMs?: number;
  /** Aborting cuts the drain short (a second signal: stop now). */
  signal?: AbortSignal;
}

export interface ResolvedDrainOptions {
  delayMs: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

/** Covers the frontend readiness probe of deploy/k8s (every 2 s, 2 failures) and HAProxy's defaults. */
export const DEFAULT_DRAIN_DELAY_MS = 5_000;
/** With the delay, within Kubernetes' termination grace period (deploy/k8s: 60 s). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** Run when a frontend starts draining, e.g. to leave the gossip. A hook that throws is logged and skipped. */
export type DrainHook = () => void | Promise<void>;

function duration(name: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < 0) {
    throw new ConfigError(
      `drain option ${name} must be a non-negative integer (ms), got ${String(resolved)}`,
    );
  }
  return resolved;
}

export function resolveDrainOptions(options: DrainOptions = {}): ResolvedDrainOptions {
  return {
    delayMs: duration("delayMs", options.delayMs, DEFAULT_DRAIN_DELAY_MS),
    timeoutMs: duration("timeoutMs", options.timeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
    signal: options.signal,
  };
}

/** Resolves after ms, or as soon as the signal aborts; never rejects. */
export function pauseUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Counts requests in progress and tells when there are none. */
export class InflightRequests {
  #count = 0;
  #idle: Array<() => void> = [];

  get count(): number {
    return this.#count;
  }

  begin(): void {
    this.#count++;
  }

  end(): void {
    this.#count = Math.max(0, this.#count - 1);
    if (this.#count === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  /** Resolves once nothing is in progress. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
