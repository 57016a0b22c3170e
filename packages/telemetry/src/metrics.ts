/**
 * Gust's metrics, through OpenTelemetry, served for Prometheus by
 * startTelemetry. Names are OpenTelemetry's dotted ones; Prometheus sees
 * them with underscores, and counters with `_total`
 * (`gust.throttles` → `gust_throttles_total`).
 *
 *   gust.invocations.inflight     up-down counter  {tenant}                 admitted, not yet answered (frontend)
 *   gust.invocations              counter          {tenant, type, outcome}  finished invocations (frontend)
 *   gust.throttles                counter          {tenant, reason}         429s, by Lambda's Reason (frontend)
 *   gust.sandbox.starts           counter          {kind}                   warm / preinitialized / cold (worker)
 *   gust.sandboxes                gauge            {worker, state}          busy / idle / preinitialized / warming (worker)
 *   gust.tenant.temporary_limit   gauge            {tenant}                 registered by the admission (frontend)
 *   gust.tenant.share             gauge            {tenant}                 this frontend's share of it (frontend)
 *   gust.rollout.verdicts         counter          {runtime, version, verdict}  (coordinator)
 *
 * Until startTelemetry serves metrics every recording function returns at
 * its first line; observers registered before then are kept and read once it
 * does. Labels hold tenant ids, never function names or request ids, so the
 * number of series stays bounded by the number of tenants.
 */
import type { Counter, Meter, ObservableResult, UpDownCounter } from "@opentelemetry/api";
import type { Logger } from "./logger.js";

export const MetricNames = {
  inflight: "gust.invocations.inflight",
  invocations: "gust.invocations",
  throttles: "gust.throttles",
  sandboxStarts: "gust.sandbox.starts",
  sandboxes: "gust.sandboxes",
  temporaryLimit: "gust.tenant.temporary_limit",
  share: "gust.tenant.share",
  rolloutVerdicts: "gust.rollout.verdicts",
} as const;

/** Sandboxes of one worker, by state (the worker's pool stats). */
export interface SandboxCounts {
  busy: number;
  idle: number;
  /** Function-less, ready to be assigned. */
  preinitialized: number;
  /** Function-less, still starting. */
  warming: number;
}

/** One tenant's limits as this frontend's admission sees them; absent fields are not reported. */
export interface TenantLimitSample {
  tenantId: string;
  temporaryLimit?: number;
  share?: number;
}

interface Instruments {
  inflight: UpDownCounter;
  invocations: Counter;
  throttles: Counter;
  sandboxStarts: Counter;
  rolloutVerdicts: Counter;
}

let instruments: Instruments | undefined;
const sandboxObservers = new Map<object, { workerId: string; read: () => SandboxCounts }>();
const tenantLimitObservers = new Set<() => Iterable<TenantLimitSample>>();
let observerLogger: Logger | undefined;

export function countInflight(tenantId: string, delta: 1 | -1): void {
  if (instruments === undefined) return;
  instruments.inflight.add(delta, { tenant: tenantId });
}

/** `outcome`: a protocol Outcome, "throttled" or "error" (Gust could not run it). */
export function countInvocation(tenantId: string, invocationType: string, outcome: string): void {
  if (instruments === undefined) return;
  instruments.invocations.add(1, { tenant: tenantId, type: invocationType, outcome });
}

export function countThrottle(tenantId: string, reason: string): void {
  if (instruments === undefined) return;
  instruments.throttles.add(1, { tenant: tenantId, reason });
}

/** `kind`: warm, preinitialized or cold (protocol StartKinds). */
export function countSandboxStart(kind: string): void {
  if (instruments === undefined) return;
  instruments.sandboxStarts.add(1, { kind });
}

/** A verdict a runtime rollout reached on a function (e.g. compatible, incompatible). */
export function countRolloutVerdict(runtime: string, version: string, verdict: string): void {
  if (instruments === undefined) return;
  instruments.rolloutVerdicts.add(1, { runtime, version, verdict });
}

/** Report a worker's sandboxes on every scrape; returns the function that stops it. */
export function observeSandboxes(workerId: string, read: () => SandboxCounts): () => void {
  const key = {};
  sandboxObservers.set(key, { workerId, read });
  return () => {
    sandboxObservers.delete(key);
  };
}

/**
 * Report tenants' temporary limits and this frontend's shares on every
 * scrape (for the admission to call); returns the function that stops it.
 */
export function observeTenantLimits(read: () => Iterable<TenantLimitSample>): () => void {
  tenantLimitObservers.add(read);
  return () => {
    tenantLimitObservers.delete(read);
  };
}

function safely(what: string, run: () => void): void {
  try {
    run();
  } catch (error) {
    observerLogger?.warn("a metrics observer failed", { metric: what, error });
  }
}

function observeSandboxGauge(result: ObservableResult): void {
  for (const { workerId, read } of sandboxObservers.values()) {
    safely(MetricNames.sandboxes, () => {
      const counts = read();
      for (const state of ["busy", "idle", "preinitialized", "warming"] as const) {
        result.observe(counts[state], { worker: workerId, state });
      }
    });
  }
}

function observeTenantGauge(field: "temporaryLimit" | "share", result: ObservableResult): void {
  for (const read of tenantLimitObservers) {
    safely(field, () => {
      for (const sample of read()) {
        const value = sample[field];
        if (value !== undefined && Number.isFinite(value)) {
          result.observe(value, { tenant: sample.tenantId });
        }
      }
    });
  }
}

/** Create the instruments on a meter and start recording (startTelemetry). */
export function startMetrics(meter: Meter, logger: Logger): void {
  observerLogger = logger;
  const sandboxes = meter.createObservableGauge(MetricNames.sandboxes, {
    description: "Sandboxes of a worker, by state",
  });
  sandboxes.addCallback(observeSandboxGauge);
  const temporaryLimit = meter.createObservableGauge(MetricNames.temporaryLimit, {
    description: "A tenant's temporary concurrency limit",
  });
  temporaryLimit.addCallback((result) => observeTenantGauge("temporaryLimit", result));
  const share = meter.createObservableGauge(MetricNames.share, {
    description: "This frontend's share of a tenant's temporary concurrency limit",
  });
  share.addCallback((result) => observeTenantGauge("share", result));
  instruments = {
    inflight: meter.createUpDownCounter(MetricNames.inflight, {
      description: "Invocations admitted by this frontend and not yet answered",
    }),
    invocations: meter.createCounter(MetricNames.invocations, {
      description: "Invocations finished, by invocation type and outcome",
    }),
    throttles: meter.createCounter(MetricNames.throttles, {
      description: "Invocations refused with 429 TooManyRequestsException, by reason",
    }),
    sandboxStarts: meter.createCounter(MetricNames.sandboxStarts, {
      description: "Invocations by how their sandbox was found: warm, preinitialized or cold",
    }),
    rolloutVerdicts: meter.createCounter(MetricNames.rolloutVerdicts, {
      description: "Verdicts runtime rollouts reached on functions",
    }),
  };
}

/** Stop recording (telemetry shutdown); observers stay registered. */
export function stopMetrics(): void {
  instruments = undefined;
  observerLogger = undefined;
}

/** Whether metrics are being recorded in this process. */
export function metricsEnabled(): boolean {
  return instruments !== undefined;
}
