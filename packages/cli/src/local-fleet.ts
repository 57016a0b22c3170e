/**
 * A whole fleet on one machine, as separate processes: nats-server with
 * JetStream, the coordinator, workers, frontends and HAProxy in front of the
 * frontends, health-checking each one's `/readyz`. `gust local-fleet` runs
 * one for people; tests start one, kill pieces of it and watch the rest cope.
 *
 * Start order follows the dependencies: NATS, then the coordinator (it loads
 * the tenants), then the workers, then the frontends (ready once they know a
 * worker), then the load balancer, which is only opened to clients once it
 * has seen every frontend pass its health check. Stop runs the other way, so
 * nothing loses a peer it still needs while shutting down.
 *
 * Restarting a frontend is a drain (SIGTERM): it turns unready, serves for
 * `drainDelayMs` — long enough for HAProxy's health checks (two failures at
 * `healthCheckIntervalMs`) to take it out — then refuses connections, which
 * HAProxy retries on another frontend, and finishes what it has in progress.
 * So a rolling restart fails no request.
 *
 * The bus is authenticated: the fleet makes a fresh nkey per role for each
 * run, writes the seeds to its temp dir (mode 0600, in a directory only its
 * user can enter) and starts nats-server admitting only those keys, each
 * with its role's permissions. Each process gets its own role's seed file
 * and nothing else; sandboxes, under other uids, can read none of them.
 *
 * Tenants' secrets are sealed in KV with a tenant key made for each run
 * (`tenant.key` in the temp dir, mode 0600), handed to the coordinator and
 * the frontends, not to the workers.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BUS_ROLES,
  generateBusCredentials,
  seedFileName,
  startNatsServer,
  writeBusSeeds,
  type BusRole,
  type NatsServerHandle,
} from "@gust/bus";
import { DEFAULT_DRAIN_TIMEOUT_MS } from "@gust/frontend";
import { ConfigError, GustError } from "@gust/protocol";
import { writeTenantKeyFile, type TenantRecord } from "@gust/registry";
import { devCredentials, devTenant } from "./dev-credentials.js";
import { spawnGust, type GustProcess } from "./gust-process.js";
import { DEFAULT_HEALTH_CHECK_INTERVAL_MS, startHaproxy, type HaproxyHandle } from "./haproxy.js";

export interface LocalFleetOptions {
  /** The load balancer's port; 0 picks a free one. @default DEFAULT_FLEET_PORT */
  port?: number;
  /** Where the load balancer listens. @default "127.0.0.1" */
  host?: string;
  /** @default DEFAULT_FLEET_FRONTENDS */
  frontends?: number;
  /** @default DEFAULT_FLEET_WORKERS */
  workers?: number;
  /**
   * The first frontend's port; the others take the next ones. 0 lets each
   * pick a free port. @default port + 1, or 0 when port is 0
   */
  frontendBasePort?: number;
  /** An existing NATS server (with JetStream) to use instead of starting one. */
  natsUrl?: string;
  /**
   * With `natsUrl`: a directory of `gust nats-config`'s seeds
   * (`<role>.nk`), one handed to each process. @default none: processes
   * connect to `natsUrl` without credentials
   */
  natsSeedsDir?: string;
  /** The coordinator's tenants file. @default a generated one with a fresh tenant */
  tenantsFile?: string;
  /** Sandboxes per worker. @default the worker's default */
  maxSandboxes?: number;
  /** Pre-initialized sandboxes per worker. @default the worker's default */
  pool?: number;
  /**
   * Every tenant is trusted (`gust worker --trust-tenants`): workers start
   * where they cannot jail sandboxes. @default false
   */
  trustTenants?: boolean;
  /** Jail sandboxes (`false`: `gust worker --no-jail`, which needs trustTenants). @default true */
  jail?: boolean;
  /** More environment for every gust process, e.g. GUST_LOG_LEVEL or OTEL_EXPORTER_OTLP_ENDPOINT. */
  env?: Record<string, string>;
  /** How often HAProxy checks each frontend's /readyz. @default DEFAULT_HEALTH_CHECK_INTERVAL_MS */
  healthCheckIntervalMs?: number;
  /**
   * How long a draining frontend or worker (SIGTERM, restartFrontend) waits
   * for the work in progress. @default DEFAULT_DRAIN_TIMEOUT_MS (from @gust/frontend)
   */
  drainTimeoutMs?: number;
  /** The frontends' gossip interval (`gust frontend --gossip-interval`). @default the frontend's own, 100 */
  gossipIntervalMs?: number;
  /** For each start: a process's first log line, a frontend's readiness, HAProxy. @default DEFAULT_FLEET_START_TIMEOUT_MS */
  startTimeoutMs?: number;
  /** Every line the fleet's gust processes print, and the fleet's own notices. */
  onLog?: (source: string, line: string) => void;
  /** Aborting gives up a start in progress: what started is stopped, and the start rejects. */
  signal?: AbortSignal;
}

export interface ResolvedLocalFleetOptions {
  port: number;
  host: string;
  frontends: number;
  workers: number;
  frontendBasePort: number;
  natsUrl: string | undefined;
  natsSeedsDir: string | undefined;
  tenantsFile: string | undefined;
  maxSandboxes: number | undefined;
  pool: number | undefined;
  trustTenants: boolean;
  jail: boolean;
  env: Record<string, string>;
  healthCheckIntervalMs: number;
  /** A draining frontend's delay: derived from healthCheckIntervalMs (drainDelayFor). */
  drainDelayMs: number;
  drainTimeoutMs: number;
  gossipIntervalMs: number | undefined;
  startTimeoutMs: number;
  onLog: ((source: string, line: string) => void) | undefined;
  signal: AbortSignal | undefined;
}

export const DEFAULT_FLEET_PORT = 9000;
export const DEFAULT_FLEET_FRONTENDS = 3;
export const DEFAULT_FLEET_WORKERS = 2;
/** Generous: a loaded 2-core machine starts a dozen Node processes slowly. */
export const DEFAULT_FLEET_START_TIMEOUT_MS = 60_000;

/**
 * How long a draining frontend keeps serving: HAProxy marks it down after two
 * failed checks (`fall 2`), at most two intervals after readiness turns 503,
 * plus one more interval, and at least a second, for a check answered late
 * on a busy machine.
 */
export function drainDelayFor(healthCheckIntervalMs: number): number {
  return 2 * healthCheckIntervalMs + Math.max(healthCheckIntervalMs, 1_000);
}

function count(name: string, value: number | undefined, fallback: number, min: number): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < min || resolved > 64) {
    throw new ConfigError(
      `local fleet option ${name} must be an integer from ${min} to 64, got ${String(value)}`,
    );
  }
  return resolved;
}

function portNumber(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new ConfigError(
      `local fleet option ${name} must be a port from 0 to 65535, got ${String(value)}`,
    );
  }
  return value;
}

export function resolveLocalFleetOptions(
  options: LocalFleetOptions = {},
): ResolvedLocalFleetOptions {
  const port = portNumber("port", options.port ?? DEFAULT_FLEET_PORT);
  const frontends = count("frontends", options.frontends, DEFAULT_FLEET_FRONTENDS, 1);
  const frontendBasePort = portNumber(
    "frontendBasePort",
    options.frontendBasePort ?? (port === 0 ? 0 : port + 1),
  );
  if (options.natsSeedsDir !== undefined && options.natsUrl === undefined) {
    throw new ConfigError(
      "local fleet option natsSeedsDir goes with natsUrl: a fleet that starts its own NATS server makes its own keys",
    );
  }
  if (frontendBasePort !== 0 && frontendBasePort + frontends - 1 > 65_535) {
    throw new ConfigError(
      `local fleet option frontendBasePort leaves no room for ${frontends} frontends`,
    );
  }
  if (frontendBasePort !== 0 && port >= frontendBasePort && port < frontendBasePort + frontends) {
    throw new ConfigError(`local fleet option port ${port} is also one of the frontends' ports`);
  }
  const interval = options.healthCheckIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS;
  if (!Number.isInteger(interval) || interval < 100) {
    throw new ConfigError(
      `local fleet option healthCheckIntervalMs must be an integer ≥ 100, got ${String(interval)}`,
    );
  }
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_FLEET_START_TIMEOUT_MS;
  if (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0) {
    throw new ConfigError(
      `local fleet option startTimeoutMs must be positive, got ${String(startTimeoutMs)}`,
    );
  }
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  if (!Number.isInteger(drainTimeoutMs) || drainTimeoutMs < 0) {
    throw new ConfigError(
      `local fleet option drainTimeoutMs must be a non-negative integer, got ${String(drainTimeoutMs)}`,
    );
  }
  const gossipIntervalMs = options.gossipIntervalMs;
  if (
    gossipIntervalMs !== undefined &&
    (!Number.isInteger(gossipIntervalMs) || gossipIntervalMs <= 0)
  ) {
    throw new ConfigError(
      `local fleet option gossipIntervalMs must be a positive integer, got ${String(gossipIntervalMs)}`,
    );
  }
  return {
    port,
    host: options.host ?? "127.0.0.1",
    frontends,
    workers: count("workers", options.workers, DEFAULT_FLEET_WORKERS, 1),
    frontendBasePort,
    natsUrl: options.natsUrl,
    natsSeedsDir: options.natsSeedsDir,
    tenantsFile: options.tenantsFile,
    maxSandboxes: options.maxSandboxes,
    pool: options.pool,
    trustTenants: options.trustTenants ?? false,
    jail: options.jail ?? true,
    env: options.env ?? {},
    healthCheckIntervalMs: interval,
    drainDelayMs: drainDelayFor(interval),
    drainTimeoutMs,
    gossipIntervalMs,
    startTimeoutMs,
    onLog: options.onLog,
    signal: options.signal,
  };
}

/** One gust process of the fleet. A restart puts a new member in its place in the fleet's list. */
export interface FleetMember {
  readonly id: string;
  readonly process: GustProcess;
}

export interface FleetFrontend extends FleetMember {
  readonly port: number;
  /** The frontend itself, bypassing the load balancer. */
  readonly url: string;
}

export interface LocalFleet {
  /** The load balancer: where clients go. */
  readonly url: string;
  readonly port: number;
  readonly natsUrl: string;
  /** The nats-server this fleet started (e.g. to restart it); undefined with `natsUrl`. */
  readonly nats: NatsServerHandle | undefined;
  /**
   * Each role's seed file, as handed to the fleet's processes (`admin` for
   * tools and tests); undefined when the fleet connects without credentials.
   */
  readonly natsSeedFiles: Readonly<Record<BusRole, string>> | undefined;
  readonly loadBalancer: HaproxyHandle;
  readonly coordinator: FleetMember;
  readonly workers: readonly FleetMember[];
  readonly frontends: readonly FleetFrontend[];
  /** The generated tenant; undefined when a tenants file was given. */
  readonly tenant: TenantRecord | undefined;
  readonly tenantsFile: string;
  /** The key tenants' secrets are sealed with in KV, as the coordinator and frontends have it. */
  readonly tenantKeyFile: string;
  /** The fleet's temp dir (tenants, HAProxy config and socket); removed by stop(). */
  readonly dir: string;
  /**
   * Drains the frontend if it still runs (SIGTERM: see the module comment)
   * and waits for its exit, starts it again with its id and port, and waits
   * until it is ready and the load balancer has it UP.
   */
  restartFrontend(id: string): Promise<FleetFrontend>;
  /**
   * Drains the worker if it still runs (SIGTERM: it declines new invocations,
   * which frontends then send to another worker, and finishes those it runs),
   * waits for its exit and starts it again with its id.
   */
  restartWorker(id: string): Promise<FleetMember>;
  /** Stops everything, load balancer first, and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

type FleetRole = "frontend" | "worker" | "coordinator";
const STOP_ORDER: readonly FleetRole[] = ["frontend", "worker", "coordinator"];

/** Children still running when this process exits are killed, so a crash leaks no fleet. */
const liveProcesses = new Set<GustProcess>();
let exitHookInstalled = false;
function track(process_: GustProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const live of liveProcesses) live.child.kill("SIGKILL");
    });
  }
  liveProcesses.add(process_);
  process_.child.once("exit", () => liveProcesses.delete(process_));
}

async function waitUntilReady(url: string, deadline: number, member: GustProcess): Promise<void> {
  let last = "no answer";
  while (Date.now() < deadline) {
    if (member.child.exitCode !== null || member.child.signalCode !== null) {
      throw new GustError(
        `frontend exited before it was ready:\n${member.output()}`,
        "local-fleet",
      );
    }
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new GustError(`frontend at ${url} not ready in time; last answer: ${last}`, "local-fleet");
}

async function generateTenantsFile(dir: string): Promise<{ file: string; tenant: TenantRecord }> {
  // A fresh credential per fleet, kept beside the tenants file in the temp dir.
  const tenant = devTenant(await devCredentials(join(dir, "credentials.json")));
  const file = join(dir, "tenants.json");
  await writeFile(file, `${JSON.stringify({ tenants: [tenant] }, null, 2)}\n`, { mode: 0o600 });
  return { file, tenant };
}

export async function startLocalFleet(options: LocalFleetOptions = {}): Promise<LocalFleet> {
  const resolved = resolveLocalFleetOptions(options);
  const dir = await mkdtemp(join(tmpdir(), "gust-fleet-"));
  // The workers' own temp dir, removed by stop(): a worker that is killed
  // leaves its code and sandboxes there. Sandboxes, under uids of their own,
  // reach their files through it, so it is traversable; the fleet's dir,
  // which holds its credentials, is not.
  const workersDir = await mkdtemp(join(tmpdir(), "gust-fleet-workers-"));
  await chmod(workersDir, 0o711);
  let nats: NatsServerHandle | undefined;
  let loadBalancer: HaproxyHandle | undefined;
  let coordinator: FleetMember | undefined;
  const workers: FleetMember[] = [];
  const frontends: FleetFrontend[] = [];
  let stopping: Promise<void> | undefined;

  // Every process started, restarted ones included, so stop() misses none.
  const spawned: Array<{ role: FleetRole; process: GustProcess }> = [];

  const notice = (line: string) => resolved.onLog?.("fleet", line);
  const spawnMember = (role: FleetRole, id: string, args: string[]): GustProcess => {
    const member = spawnGust(
      args,
      role === "worker" ? { ...resolved.env, TMPDIR: workersDir } : resolved.env,
    );
    track(member);
    spawned.push({ role, process: member });
    if (resolved.onLog) {
      const onLog = resolved.onLog;
      let pending = "";
      member.child.stderr?.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8");
        let newline: number;
        while ((newline = pending.indexOf("\n")) >= 0) {
          onLog(id, pending.slice(0, newline));
          pending = pending.slice(newline + 1);
        }
      });
    }
    member.child.once("exit", (code, signal) => {
      if (stopping === undefined) notice(`${id} exited (code ${code}, signal ${signal})`);
    });
    return member;
  };

  // Past the drain delay and timeout, a process that has not exited is killed.
  const drainGraceMs = resolved.drainDelayMs + resolved.drainTimeoutMs + 10_000;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await loadBalancer?.stop();
      for (const role of STOP_ORDER) {
        // The load balancer is gone and has let its requests finish: frontends
        // have nobody to drain for and stop at once. Workers still drain, for
        // Event invocations the frontends were running.
        const signal = role === "frontend" ? "SIGINT" : "SIGTERM";
        await Promise.all(
          spawned
            .filter((member) => member.role === role)
            .map((member) => member.process.stop(signal, drainGraceMs)),
        );
      }
      await nats?.stop();
      await rm(dir, { recursive: true, force: true });
      await rm(workersDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  // Waits on child processes give way to an abort; stop() then ends those processes.
  const aborted = new Promise<never>((_, reject) => {
    const fail = () => reject(new GustError("the fleet's start was aborted", "aborted"));
    if (resolved.signal?.aborted) fail();
    else resolved.signal?.addEventListener("abort", fail, { once: true });
  });
  aborted.catch(() => undefined);
  const abortable = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, aborted]);
  const checkAborted = () => {
    if (resolved.signal?.aborted) throw new GustError("the fleet's start was aborted", "aborted");
  };

  try {
    const deadline = () => Date.now() + resolved.startTimeoutMs;
    let natsUrl = resolved.natsUrl;
    let natsSeedFiles: Record<BusRole, string> | undefined;
    if (natsUrl === undefined) {
      const credentials = generateBusCredentials();
      natsSeedFiles = await writeBusSeeds(dir, credentials);
      nats = await startNatsServer({
        jetstream: true,
        auth: credentials,
        startTimeoutMs: resolved.startTimeoutMs,
      });
      natsUrl = nats.url;
    } else if (resolved.natsSeedsDir !== undefined) {
      const seedsDir = resolved.natsSeedsDir;
      natsSeedFiles = Object.fromEntries(
        BUS_ROLES.map((role) => [role, join(seedsDir, seedFileName(role))]),
      ) as Record<BusRole, string>;
    }
    // Each process is handed its own role's seed and no other.
    const natsArgs = (role: FleetRole): string[] => [
      "--nats",
      natsUrl,
      ...(natsSeedFiles === undefined ? [] : ["--nats-nkey", natsSeedFiles[role]]),
    ];
    checkAborted();
    const generated =
      resolved.tenantsFile === undefined ? await generateTenantsFile(dir) : undefined;
    const tenantsFile = resolved.tenantsFile ?? generated!.file;
    const tenantKeyFile = join(dir, "tenant.key");
    await writeTenantKeyFile(tenantKeyFile);

    coordinator = {
      id: "coordinator",
      process: spawnMember("coordinator", "coordinator", [
        "coordinator",
        ...natsArgs("coordinator"),
        "--tenants",
        tenantsFile,
        "--tenant-key-file",
        tenantKeyFile,
      ]),
    };
    await abortable(coordinator.process.waitForLog("coordinator started", resolved.startTimeoutMs));

    const spawnWorker = (id: string): FleetMember => {
      const args = ["worker", ...natsArgs("worker"), "--id", id];
      args.push("--drain-timeout", String(resolved.drainTimeoutMs));
      if (resolved.maxSandboxes !== undefined)
        args.push("--max-sandboxes", String(resolved.maxSandboxes));
      if (resolved.pool !== undefined) args.push("--pool", String(resolved.pool));
      if (resolved.trustTenants) args.push("--trust-tenants");
      if (!resolved.jail) args.push("--no-jail");
      return { id, process: spawnMember("worker", id, args) };
    };
    for (let n = 1; n <= resolved.workers; n++) workers.push(spawnWorker(`w${n}`));
    await abortable(
      Promise.all(
        workers.map((worker) =>
          worker.process.waitForLog("worker started", resolved.startTimeoutMs),
        ),
      ),
    );

    const startFrontend = async (id: string, port: number): Promise<FleetFrontend> => {
      const member = spawnMember("frontend", id, [
        "frontend",
        ...natsArgs("frontend"),
        "--tenant-key-file",
        tenantKeyFile,
        "--id",
        id,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--drain-delay",
        String(resolved.drainDelayMs),
        "--drain-timeout",
        String(resolved.drainTimeoutMs),
        ...(resolved.gossipIntervalMs === undefined
          ? []
          : ["--gossip-interval", String(resolved.gossipIntervalMs)]),
      ]);
      const listening = await member.waitForLog("frontend listening", resolved.startTimeoutMs);
      const url = String(listening["url"]);
      await waitUntilReady(url, deadline(), member);
      return { id, process: member, url, port: Number(new URL(url).port) };
    };
    const started = await abortable(
      Promise.all(
        Array.from({ length: resolved.frontends }, (_, index) =>
          startFrontend(
            `fe${index + 1}`,
            resolved.frontendBasePort === 0 ? 0 : resolved.frontendBasePort + index,
          ),
        ),
      ),
    );
    frontends.push(...started);
    checkAborted();

    loadBalancer = await startHaproxy({
      bindHost: resolved.host,
      bindPort: resolved.port,
      servers: frontends.map((frontend) => ({
        name: frontend.id,
        host: "127.0.0.1",
        port: frontend.port,
      })),
      checkIntervalMs: resolved.healthCheckIntervalMs,
      dir,
      startTimeoutMs: resolved.startTimeoutMs,
      ...(resolved.onLog === undefined
        ? {}
        : { onLog: (line: string) => resolved.onLog?.("haproxy", line) }),
    });
    await loadBalancer.waitForServersUp(undefined, resolved.startTimeoutMs);

    const balancer = loadBalancer;
    return {
      url: balancer.url,
      port: balancer.port,
      natsUrl,
      nats,
      natsSeedFiles,
      loadBalancer: balancer,
      coordinator,
      workers,
      frontends,
      tenant: generated?.tenant,
      tenantsFile,
      tenantKeyFile,
      dir,
      async restartFrontend(id) {
        if (stopping !== undefined) throw new GustError("the fleet is stopping", "local-fleet");
        const index = frontends.findIndex((frontend) => frontend.id === id);
        const old = frontends[index];
        if (old === undefined) throw new ConfigError(`no frontend ${id} in this fleet`);
        await old.process.stop("SIGTERM", drainGraceMs);
        const fresh = await startFrontend(id, old.port);
        frontends[index] = fresh;
        await balancer.waitForServersUp([id], resolved.startTimeoutMs);
        return fresh;
      },
      async restartWorker(id) {
        if (stopping !== undefined) throw new GustError("the fleet is stopping", "local-fleet");
        const index = workers.findIndex((worker) => worker.id === id);
        const old = workers[index];
        if (old === undefined) throw new ConfigError(`no worker ${id} in this fleet`);
        await old.process.stop("SIGTERM", drainGraceMs);
        const fresh = spawnWorker(id);
        await fresh.process.waitForLog("worker started", resolved.startTimeoutMs);
        workers[index] = fresh;
        return fresh;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
