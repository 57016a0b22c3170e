/**
 * How Gust's services are put together on an Infrastructure. `gust dev` runs
 * all three on the in-memory one; `gust frontend|worker|coordinator` each run
 * one on NATS. Same code either way: only the infrastructure differs.
 */
import type { Infrastructure } from "@gust/bus";
import { startCoordinator, type Coordinator, type CoordinatorOptions } from "@gust/coordinator";
import {
  createFrontend,
  resolveDrainOptions,
  serveFrontend,
  type DrainOptions,
  type FrontendOptions,
  type LocalWorker,
} from "@gust/frontend";
import { Buckets } from "@gust/protocol";
import {
  FunctionRegistry,
  RolloutStore,
  TenantDirectory,
  type TenantKeyring,
} from "@gust/registry";
import { createLogger, startTelemetry, type Telemetry } from "@gust/telemetry";
import { startWorker, type Worker, type WorkerOptions } from "@gust/worker";

export interface Service {
  /**
   * Leave gracefully (SIGTERM): take no new work, finish what is in progress
   * within the options' bounds. close() follows. Absent where there is
   * nothing to drain.
   */
  drain?(options: DrainOptions): Promise<void>;
  close(): Promise<void>;
}

export interface FrontendService extends Service {
  url: string;
  port: number;
}

export interface FrontendServiceOptions {
  host: string;
  port: number;
  frontend?: FrontendOptions;
  /** Workers in this process, reached without the bus (`gust dev`). */
  localWorkers?: readonly LocalWorker[];
  /** Opens tenants' sealed secrets: the coordinator's keys. @default none (tests only) */
  tenantKeyring?: TenantKeyring;
}

async function openRegistry(infra: Infrastructure, region?: string): Promise<FunctionRegistry> {
  return FunctionRegistry.open({
    functions: await infra.kv(Buckets.functions),
    code: await infra.blobs(Buckets.code),
    runtimeVersions: await infra.kv(Buckets.runtimeVersions),
    ...(region === undefined ? {} : { region }),
  });
}

export async function startFrontendService(
  infra: Infrastructure,
  options: FrontendServiceOptions,
): Promise<FrontendService> {
  const logger = createLogger("frontend");
  const registry = await openRegistry(infra, options.frontend?.region);
  const tenants = await TenantDirectory.open(
    await infra.kv(Buckets.tenants),
    logger,
    options.tenantKeyring === undefined ? {} : { keyring: options.tenantKeyring },
  );
  const rollouts = await RolloutStore.open(await infra.kv(Buckets.rollouts), logger);
  const frontend = createFrontend(
    {
      bus: infra.bus,
      eventQueue: await infra.eventQueue(),
      registry,
      tenants,
      rollouts,
      logger,
      ...(options.localWorkers === undefined ? {} : { localWorkers: options.localWorkers }),
    },
    options.frontend,
  );
  await frontend.start();
  const server = await serveFrontend(frontend, { host: options.host, port: options.port });
  logger.info("frontend listening", { url: server.url });
  return {
    url: server.url,
    port: server.port,
    drain: (drainOptions) => server.drain(drainOptions),
    close: async () => {
      await server.close();
      await frontend.close();
      rollouts.close();
      tenants.close();
      registry.close();
    },
  };
}

export interface WorkerService extends Service {
  worker: Worker;
}

export async function startWorkerService(
  infra: Infrastructure,
  options: WorkerOptions = {},
): Promise<WorkerService> {
  const logger = createLogger("worker");
  const registry = await openRegistry(infra, options.region);
  const worker = await startWorker(options, { bus: infra.bus, code: registry, logger });
  logger.info("worker started", { workerId: worker.id });
  return {
    worker,
    // A worker needs no delay: frontends learn from its next heartbeat, sent
    // at once, and any invocation still sent to it is declined as retryable.
    drain: async (drainOptions) => {
      const { timeoutMs, signal } = resolveDrainOptions(drainOptions);
      const bound = new AbortController();
      const timer = setTimeout(() => bound.abort(), timeoutMs);
      const onAbort = () => bound.abort();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await Promise.race([
          worker.drain(),
          new Promise<void>((resolve) => bound.signal.addEventListener("abort", () => resolve())),
        ]);
        if (bound.signal.aborted) {
          logger.warn("worker drain cut short", { inflight: worker.stats().inflight });
        }
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
    },
    close: async () => {
      await worker.close();
      registry.close();
    },
  };
}

export interface CoordinatorService extends Service {
  coordinator: Coordinator;
}

export async function startCoordinatorService(
  infra: Infrastructure,
  options: CoordinatorOptions,
): Promise<CoordinatorService> {
  const coordinator = await startCoordinator(infra, options);
  return { coordinator, close: () => coordinator.close() };
}

/** `service.name` of each `gust` command that runs services, as traces and metrics show it. */
export const SERVICE_NAMES: Readonly<Record<string, string>> = {
  dev: "gust-dev",
  frontend: "gust-frontend",
  worker: "gust-worker",
  coordinator: "gust-coordinator",
};

export interface ServiceTelemetryOptions {
  /** Serve Prometheus metrics here (else GUST_METRICS_PORT, else none). */
  metricsPort?: number;
  /** @default GUST_METRICS_HOST, else 0.0.0.0 */
  metricsHost?: string;
  /** `service.instance.id`, e.g. the worker's --id. */
  instanceId?: string;
}

/**
 * OpenTelemetry for a process running `gust <command>`, started once before
 * its services: spans to OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set,
 * Prometheus metrics with a metrics port. Undefined for a command that runs
 * no service (deploy, invoke, …).
 */
export async function startServiceTelemetry(
  command: string,
  options: ServiceTelemetryOptions = {},
): Promise<Telemetry | undefined> {
  const serviceName = Object.hasOwn(SERVICE_NAMES, command) ? SERVICE_NAMES[command] : undefined;
  if (serviceName === undefined) return undefined;
  return startTelemetry({
    serviceName,
    ...(options.metricsPort === undefined ? {} : { metricsPort: options.metricsPort }),
    ...(options.metricsHost === undefined ? {} : { metricsHost: options.metricsHost }),
    ...(options.instanceId === undefined ? {} : { serviceInstanceId: options.instanceId }),
  });
}

/** Drains every service that can, all at once. */
export async function drainAll(services: Service[], options: DrainOptions): Promise<void> {
  await Promise.all(services.map((service) => service.drain?.(options) ?? Promise.resolve()));
}

/** Closes services in reverse order of start, then the infrastructure. */
export async function closeAll(services: Service[], infra?: Infrastructure): Promise<void> {
  for (const service of [...services].reverse()) await service.close();
  await infra?.close();
}
