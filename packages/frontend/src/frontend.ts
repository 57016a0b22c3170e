/**
 * The frontend: Lambda's HTTP API (hono) in front of the worker fleet.
 * Stateless: functions and tenants come from the registry's caches, workers
 * from their heartbeats, Event invocations go through the durable queue.
 */
import type { AddressInfo } from "node:net";
import type { Bus, WorkQueue } from "@gust/bus";
import type { FunctionRegistry, TenantDirectory } from "@gust/registry";
import { createLogger, type Logger } from "@gust/telemetry";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { createTenantConcurrencyAdmission, type Admission } from "./admission.js";
import { ApiErrors, renderError } from "./api-errors.js";
import { authentication } from "./authentication.js";
import { registerConcurrencyApi } from "./concurrency-api.js";
import { registerControlApi } from "./control-api.js";
import { EventDispatcher } from "./event-dispatcher.js";
import { mountHealthChecks } from "./health.js";
import type { FrontendEnv, Services } from "./http-context.js";
import { registerInvokeApi } from "./invoke-api.js";
import { Invoker } from "./invoker.js";
import { resolveFrontendOptions, type FrontendOptions } from "./options.js";
import { WorkerDirectory } from "./worker-directory.js";

export interface FrontendDeps {
  bus: Bus;
  eventQueue: WorkQueue;
  registry: FunctionRegistry;
  tenants: TenantDirectory;
  /** @default createLogger("frontend") */
  logger?: Logger;
  /** @default per-tenant concurrency on this frontend (createTenantConcurrencyAdmission) */
  admission?: Admission;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

export interface Frontend {
  /** The HTTP application; `app.request()` serves a request in process. */
  app: Hono<FrontendEnv>;
  /** What this frontend knows of the workers. */
  workers: WorkerDirectory;
  /** Listen to worker heartbeats and run queued Event invocations. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createFrontend(
  deps: FrontendDeps,
  frontendOptions: FrontendOptions = {},
): Frontend {
  const options = resolveFrontendOptions(frontendOptions);
  const logger = deps.logger ?? createLogger("frontend");
  const now = deps.now ?? Date.now;
  const admission =
    deps.admission ??
    createTenantConcurrencyAdmission((tenantId) => deps.registry.reservedTotal(tenantId));
  const workers = new WorkerDirectory(deps.bus, logger, {
    missedHeartbeatLimit: options.missedHeartbeatLimit,
    frontendId: options.frontendId,
    now,
  });
  const invoker = new Invoker(deps.bus, admission, workers, logger, {
    maxWorkerTries: options.maxWorkerTries,
    invokeTimeoutMarginMs: options.invokeTimeoutMarginMs,
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
  };

  const app = new Hono<FrontendEnv>();
  mountHealthChecks(app, {
    bus: deps.bus,
    workers,
    frontendId: options.frontendId,
    isStarted: () => started,
  });
  app.use("*", authentication(services));
  registerControlApi(app, services);
  registerConcurrencyApi(app, services);
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
  return {
    app,
    workers,
    async start() {
      if (started) return;
      started = true;
      workers.start();
      await dispatcher.start();
    },
    async close() {
      started = false;
      workers.stop();
      await dispatcher.stop();
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
  close(): Promise<void>;
}

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
          const host = info.family === "IPv6" ? `[${info.address}]` : info.address;
          resolve({
            url: `http://${host}:${info.port}`,
            port: info.port,
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
