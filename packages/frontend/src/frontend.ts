/**
 * The frontend: Lambda's HTTP API (hono) in front of the worker fleet.
 * Stateless: functions and tenants come from the registry's caches, workers
 * from their heartbeats, Event invocations go through the durable queue.
 */
import type { AddressInfo } from "node:net";
import type { Bus, WorkQueue } from "@gust/bus";
import type { FunctionRegistry, RolloutStore, TenantDirectory } from "@gust/registry";
import { createLogger, type Logger } from "@gust/telemetry";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { LambdaApiError } from "@gust/protocol";
import type { Admission } from "./admission.js";
import { createFleetAdmission } from "./admission-fleet.js";
import { registerAdminApi } from "./admin-api.js";
import { ApiErrors, renderError } from "./api-errors.js";
import { authentication } from "./authentication.js";
import { registerConcurrencyApi } from "./concurrency-api.js";
import { registerControlApi } from "./control-api.js";
import {
  InflightRequests,
  pauseUnlessAborted,
  resolveDrainOptions,
  type DrainHook,
  type DrainOptions,
} from "./drain.js";
import { EventDispatcher } from "./event-dispatcher.js";
import { mountHealthChecks } from "./health.js";
import type { FrontendEnv, Services } from "./http-context.js";
import { registerInvokeApi } from "./invoke-api.js";
import { Invoker, type LocalWorker } from "./invoker.js";
import { resolveFrontendOptions, type FrontendOptions } from "./options.js";
import { registerRolloutApi } from "./rollout-api.js";
import { RolloutReporter } from "./rollout-reporter.js";
import { RolloutShadow } from "./rollout-shadow.js";
import { registerRolloutSettingsApi } from "./rollout-shadow-api.js";
import { registerRuntimeAdminApi, registerRuntimeManagementApi } from "./runtime-management-api.js";
import { UploadBudget } from "./upload-budget.js";
import { WorkerDirectory } from "./worker-directory.js";

export interface FrontendDeps {
  bus: Bus;
  eventQueue: WorkQueue;
  registry: FunctionRegistry;
  tenants: TenantDirectory;
  /**
   * Runtime rollouts (Buckets.rollouts): routes a share of invocations to a
   * rollout's new version and reports outcomes. Absent, no rollout applies.
   */
  rollouts?: RolloutStore;
  /** @default createLogger("frontend") */
  logger?: Logger;
  /**
   * @default FleetAdmission: @gust/admission's controller with gossip over
   * the bus (or standalone, per the options). An injected admission has no
   * gossip, and the admin endpoint answers 404.
   */
  admission?: Admission;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
  /** Workers running in this process (`gust dev`): invocations reach them without the bus. */
  localWorkers?: readonly LocalWorker[];
}

export interface Frontend {
  /** The HTTP application; `app.request()` serves a request in process. */
  app: Hono<FrontendEnv>;
  /** What this frontend knows of the workers. */
  workers: WorkerDirectory;
  /** Listen to worker heartbeats and run queued Event invocations. */
  start(): Promise<void>;
  /**
   * Leave gracefully (drain.ts): readiness 503 and the drain hooks at once,
   * new requests served for `delayMs`, then refused, and the requests and
   * Event invocations in progress awaited up to `timeoutMs`. Resolves when
   * done; call close() after. `onStopAccepting` runs when requests start to
   * be refused: the HTTP server stops listening there.
   */
  drain(options?: DrainOptions, onStopAccepting?: () => void): Promise<void>;
  /** Run `hook` when the frontend starts draining (e.g. to leave the gossip). */
  onDrain(hook: DrainHook): void;
  close(): Promise<void>;
}

export function createFrontend(
  deps: FrontendDeps,
  frontendOptions: FrontendOptions = {},
): Frontend {
  const options = resolveFrontendOptions(frontendOptions);
  const logger = deps.logger ?? createLogger("frontend");
  const now = deps.now ?? Date.now;
  const workers = new WorkerDirectory(deps.bus, logger, {
    missedHeartbeatLimit: options.missedHeartbeatLimit,
    frontendId: options.frontendId,
    now,
  });
  const fleet =
    deps.admission === undefined
      ? createFleetAdmission(
          {
            bus: deps.bus,
            registry: deps.registry,
            tenants: deps.tenants,
            logger,
            now,
            workerIds: () => workers.workerIds(),
          },
          options,
        )
      : undefined;
  const admission: Admission = deps.admission ?? fleet!.admission;
  const rollouts =
    deps.rollouts === undefined
      ? undefined
      : new RolloutReporter(deps.bus, deps.rollouts, deps.registry.runtimeVersions, logger, {
          frontendId: options.frontendId,
        });
  const shadows =
    deps.rollouts === undefined || rollouts === undefined
      ? undefined
      : new RolloutShadow(deps.rollouts, deps.registry.runtimeVersions, rollouts);
  const invoker = new Invoker(deps.bus, admission, workers, logger, {
    maxWorkerTries: options.maxWorkerTries,
    ...(deps.localWorkers === undefined
      ? {}
      : { localWorkers: new Map(deps.localWorkers.map((worker) => [worker.id, worker])) }),
    invokeTimeoutMarginMs: options.invokeTimeoutMarginMs,
    runtimeVersionFor: (fn) => shadows?.choose(fn) ?? deps.registry.runtimeVersions.choose(fn),
    ...(rollouts === undefined ? {} : { onResult: (fn, result) => rollouts.record(fn, result) }),
    ...(shadows === undefined ? {} : { shadowFor: (fn) => shadows.shadowFor(fn) }),
  });
  const dispatcher = new EventDispatcher(
    { queue: deps.eventQueue, registry: deps.registry, tenants: deps.tenants, invoker, logger },
    {
      concurrency: options.dispatcherConcurrency,
      ackWaitMs: options.eventAckWaitMs,
      retryDelaysMs: options.eventRetryDelaysMs,
      maxEventAgeMs: options.maxEventAgeMs,
      throttleBackoffMs: options.eventThrottleBackoffMs,
      throttleMaxBackoffMs: options.eventThrottleMaxBackoffMs,
      throttleHoldMs: options.eventThrottleHoldMs,
      now,
    },
  );
  const services: Services = {
    registry: deps.registry,
    tenants: deps.tenants,
    eventQueue: deps.eventQueue,
    invoker,
    logger,
    options,
    now,
    uploads: new UploadBudget(options.codeUploadBytesInFlight, options.codeUploadWaitMs),
  };

  const app = new Hono<FrontendEnv>();
  mountHealthChecks(app, {
    bus: deps.bus,
    workers,
    frontendId: options.frontendId,
    isStarted: () => started,
    isDraining: () => drainPhase !== "serving",
    notReadyReasons: () => admissionWarmingUp(),
  });
  // A frontend that has just started has not heard its peers' gossip, and a
  // peer may still claim the tenant's whole limit: until the admission's
  // first rejoin window ends its share can be 0, and it would throttle what
  // the load balancer sends it. Once over, this is not asked again: after a
  // NATS outage the frontend keeps serving on its fallback share.
  let admissionJoined = fleet === undefined;
  const admissionWarmingUp = (): string[] => {
    if (admissionJoined || fleet === undefined || !started) return [];
    if (fleet.admission.fleetStatus().mode === "rejoining") {
      return ["admission has not heard the fleet yet"];
    }
    admissionJoined = true;
    return [];
  };
  // Draining (drain.ts): requests in progress are counted, every answer given
  // while draining closes its connection, and once the frontend has stopped
  // listening a request that still arrives is refused with a retryable 503.
  const inflight = new InflightRequests();
  let drainPhase: "serving" | "draining" | "refusing" = "serving";
  app.use("*", async (c, next) => {
    if (drainPhase === "refusing") {
      c.header("Connection", "close");
      throw new LambdaApiError(
        "ServiceException",
        503,
        "This frontend is shutting down. Retry the request.",
      );
    }
    inflight.begin();
    try {
      await next();
    } finally {
      inflight.end();
      if (drainPhase !== "serving") c.header("Connection", "close");
    }
  });
  registerAdminApi(app, services, fleet?.admission);
  if (deps.rollouts !== undefined) registerRolloutApi(app, services, deps.rollouts);
  registerRuntimeAdminApi(app, services);
  app.use("*", authentication(services));
  registerControlApi(app, services, deps.rollouts);
  registerRolloutSettingsApi(app, services);
  registerConcurrencyApi(app, services);
  registerRuntimeManagementApi(app, services);
  registerInvokeApi(app, services);
  app.notFound((c) => {
    throw ApiErrors.unknownOperation(c.req.method, new URL(c.req.url).pathname);
  });
  app.onError((error, c) => {
    const rendered = renderError(error, {
      requestId: c.get("requestId") ?? "",
      logger,
      retryAfterSec: options.throttleRetryAfterSec,
      method: c.req.method,
      path: new URL(c.req.url).pathname,
    });
    return c.body(rendered.body, rendered.status as 400, rendered.headers);
  });

  let started = false;
  const drainHooks: DrainHook[] = [];
  let drained: Promise<void> | undefined;
  const drain = async (drainOptions: DrainOptions, onStopAccepting?: () => void) => {
    const { delayMs, timeoutMs, signal } = resolveDrainOptions(drainOptions);
    drainPhase = "draining";
    logger.info("frontend draining", { delayMs, timeoutMs, inflight: inflight.count });
    const hooksRun = Promise.all(
      drainHooks.map(async (hook) => {
        try {
          await hook();
        } catch (error) {
          logger.warn("a drain hook failed", { error });
        }
      }),
    );
    const dispatcherStopped = dispatcher.stop();
    await pauseUnlessAborted(delayMs, signal);
    drainPhase = "refusing";
    onStopAccepting?.();
    const patience = new AbortController();
    const abortPatience = () => patience.abort();
    if (signal?.aborted === true) patience.abort();
    else signal?.addEventListener("abort", abortPatience, { once: true });
    const finished = await Promise.race([
      Promise.all([inflight.idle(), dispatcherStopped, hooksRun]).then(() => true),
      pauseUnlessAborted(timeoutMs, patience.signal).then(() => false),
    ]);
    patience.abort();
    signal?.removeEventListener("abort", abortPatience);
    if (finished) logger.info("frontend drained");
    else logger.warn("frontend drain cut short", { inflight: inflight.count });
  };
  return {
    app,
    workers,
    async start() {
      if (started) return;
      started = true;
      workers.start();
      await fleet?.start();
      rollouts?.start();
      await dispatcher.start();
    },
    drain(drainOptions = {}, onStopAccepting) {
      drained ??= drain(drainOptions, onStopAccepting);
      return drained;
    },
    onDrain(hook) {
      drainHooks.push(hook);
    },
    async close() {
      started = false;
      workers.stop();
      // Gossip ends with the frontend, not when it starts draining: until
      // then it still admits, and its reports must keep counting its slots.
      fleet?.stop();
      await dispatcher.stop();
      rollouts?.stop();
    },
  };
}

export interface ServeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface ServedFrontend {
  url: string;
  port: number;
  /** The frontend's drain, closing the listener when it stops taking requests; call close() after. */
  drain(options?: DrainOptions): Promise<void>;
  close(): Promise<void>;
}

/**
 * How long an idle client connection stays open: longer than a load
 * balancer keeps its idle connections to a frontend (HAProxy in the local
 * fleet closes them within seconds; AWS's ALB after 60 s), so that the load
 * balancer, never the frontend, closes an idle one, and no request can be
 * sent on a connection the frontend is closing.
 */
export const FRONTEND_KEEP_ALIVE_MS = 65_000;

/** How long a drained server waits for its last responses to be written before close() cuts them. */
const LAST_WRITES_MS = 2_000;

/** Serve the frontend over HTTP. Closing stops listening and drops open connections. */
export function serveFrontend(frontend: Frontend, options: ServeOptions): Promise<ServedFrontend> {
  return new Promise((resolve, reject) => {
    let server: ServerType;
    const onError = (error: unknown) =>
      reject(error instanceof Error ? error : new Error(String(error)));
    try {
      server = serve(
        { fetch: frontend.app.fetch, hostname: options.host, port: options.port },
        (info: AddressInfo) => {
          server.off("error", onError);
          if ("keepAliveTimeout" in server) server.keepAliveTimeout = FRONTEND_KEEP_ALIVE_MS;
          const host = info.family === "IPv6" ? `[${info.address}]` : info.address;
          let listenerClosed: Promise<void> | undefined;
          resolve({
            url: `http://${host}:${info.port}`,
            port: info.port,
            async drain(drainOptions) {
              await frontend.drain(drainOptions, () => {
                // Refuses new connections and ends idle keep-alive ones; resolves once
                // every connection has ended.
                listenerClosed = new Promise((done) => server.close(() => done()));
              });
              if (listenerClosed !== undefined) {
                const patience = new AbortController();
                await Promise.race([
                  listenerClosed.then(() => patience.abort()),
                  pauseUnlessAborted(LAST_WRITES_MS, patience.signal),
                ]);
                patience.abort();
              }
            },
            close: () =>
              new Promise<void>((done) => {
                server.close(() => done());
                if ("closeAllConnections" in server) server.closeAllConnections();
              }),
          });
        },
      );
      server.once("error", onError);
    } catch (error) {
      onError(error);
    }
  });
}
