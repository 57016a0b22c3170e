/**
 * Health endpoints for load balancers and orchestrators, which sign nothing,
 * so they are mounted ahead of authentication:
 *
 * - `GET /healthz` (liveness): 200 whenever the process serves HTTP. A
 *   liveness probe that failed on a lost NATS connection would have the
 *   orchestrator restart frontends that are only waiting for NATS to return,
 *   all of them at once.
 * - `GET /readyz` (readiness): 200 only while this frontend can route an
 *   invocation: it is started and not draining, its bus is connected and it
 *   knows at least one worker. Otherwise 503 with the reasons, so the load balancer sends
 *   traffic to the frontends that can serve it.
 *
 * Both answer JSON and forbid caching: a cached "ready" would outlive the
 * condition it reports.
 */
import type { Bus, BusStatus } from "@gust/bus";
import type { Hono } from "hono";
import type { FrontendEnv } from "./http-context.js";

export const HEALTH_PATHS = { liveness: "/healthz", readiness: "/readyz" } as const;

export interface HealthSources {
  bus: Bus;
  /** Workers that may take new work right now. */
  workers: { liveCount(): number };
  frontendId: string;
  /** True between the frontend's start() and close(). */
  isStarted(): boolean;
  /** True once the frontend has begun to drain: the load balancer should send it nothing new. */
  isDraining?(): boolean;
  /** Other reasons not to take traffic yet, in words an operator can act on. */
  notReadyReasons?(): string[];
}

export interface Readiness {
  ready: boolean;
  /** Why not, in words an operator can act on; empty when ready. */
  reasons: string[];
  workers: number;
}

export interface FrontendHealth {
  readiness(): Readiness;
}

const NO_STORE = { "content-type": "application/json", "cache-control": "no-store" };

/**
 * Follows the bus's connection state. Until the bus reports one, the frontend
 * counts as not connected: readiness must be earned, not assumed.
 */
function trackBusStatus(bus: Bus): () => BusStatus | undefined {
  let status: BusStatus | undefined;
  // Kept for the bus's lifetime: the bus drops its listeners when it closes,
  // and a frontend started again after close() must still know the state.
  bus.onStatus((next) => {
    status = next;
  });
  return () => status;
}

export function assessReadiness(
  sources: Omit<HealthSources, "bus">,
  busStatus: BusStatus | undefined,
): Readiness {
  const reasons: string[] = [];
  if (!sources.isStarted()) reasons.push("frontend is not started");
  if (sources.isDraining?.() === true) reasons.push("frontend is draining");
  reasons.push(...(sources.notReadyReasons?.() ?? []));
  if (busStatus === undefined) reasons.push("bus has not connected yet");
  else if (busStatus === "disconnected") reasons.push("bus is disconnected");
  const workers = sources.workers.liveCount();
  if (workers === 0) reasons.push("no worker is known");
  return { ready: reasons.length === 0, reasons, workers };
}

/** Registers /healthz and /readyz; call before any authenticating middleware. */
export function mountHealthChecks(app: Hono<FrontendEnv>, sources: HealthSources): FrontendHealth {
  const busStatus = trackBusStatus(sources.bus);
  const readiness = () => assessReadiness(sources, busStatus());

  app.get(HEALTH_PATHS.liveness, (c) =>
    c.body(JSON.stringify({ status: "ok", frontendId: sources.frontendId }), 200, NO_STORE),
  );
  app.get(HEALTH_PATHS.readiness, (c) => {
    const { ready, reasons, workers } = readiness();
    const body = ready
      ? { status: "ready", frontendId: sources.frontendId, workers }
      : { status: "not ready", frontendId: sources.frontendId, workers, reasons };
    return c.body(JSON.stringify(body), ready ? 200 : 503, NO_STORE);
  });
  return { readiness };
}
