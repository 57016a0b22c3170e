#!/usr/bin/env node
/**
 * The `gust` command. Services log JSON lines on stderr; what the user asked
 * for (credentials, responses) goes to stdout.
 */
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { connectNatsInfrastructure, type BusRole } from "@gust/bus";
import { ConfigError } from "@gust/protocol";
import type { DrainOptions } from "@gust/frontend";
import type { Telemetry } from "@gust/telemetry";
import { deploy } from "./deploy.js";
import { DEFAULT_DEV_PORT, startDev } from "./dev.js";
import { devCredentials, devCredentialsPath, devTenant } from "./dev-credentials.js";
import { startHealthServer } from "./health-server.js";
import { integer, sandboxOptions } from "./flags.js";
import { invoke } from "./invoke.js";
import {
  DEFAULT_FLEET_FRONTENDS,
  DEFAULT_FLEET_PORT,
  DEFAULT_FLEET_WORKERS,
} from "./local-fleet.js";
import { fetchFleetStatus, formatFleetStatus } from "./fleet-command.js";
import { runLocalFleetCommand } from "./local-fleet-command.js";
import { runNatsConfigCommand } from "./nats-config-command.js";
import { natsConnectionOptions } from "./nats-flags.js";
import { runRolloutCommand } from "./rollout-command.js";
import { runRuntimeCommand } from "./runtime-command.js";
import { fleetTenantKeyring, runTenantKeyCommand } from "./tenant-key-command.js";
import {
  closeAll,
  drainAll,
  startCoordinatorService,
  startFrontendService,
  startServiceTelemetry,
  startWorkerService,
  type Service,
} from "./services.js";

const USAGE = `Usage: gust <command> [options]

  dev          run frontend, worker and coordinator in one process (no server needed)
                 --host 127.0.0.1  --port ${DEFAULT_DEV_PORT}  --tenants FILE
                 --max-sandboxes N  --pool N (pre-initialized sandboxes)
                 --dispatch-slots N (short invocations handed to sandboxes at once;
                 default 2 per core, 0 hands every invocation out at once)
  frontend     serve the Lambda API in a fleet     --nats URL --host 0.0.0.0 --port 9000 --id ID
                 (GET /healthz and /readyz answer without credentials)
                 $GUST_ADMIN_TOKEN (16+ characters) opens GET /gust/admin/concurrency
                 (gust fleet) for every tenant; signed requests see their own
                 --drain-delay MS (serve on after SIGTERM while the load balancer
                 notices the failing /readyz; default 5000)
                 --gossip-interval MS (demand reports to the other frontends; default 100)
  worker       run sandboxes in a fleet            --nats URL --id ID --max-sandboxes N --pool N
                 --dispatch-slots N (as for dev)
                 sandboxes are jailed (root, bubblewrap, socat); a worker that cannot
                 jail them refuses to start unless --trust-tenants says every tenant
                 is trusted; --no-jail turns jails off (and so needs --trust-tenants)
                 jailed sandboxes reach the world, never the host, link-local addresses
                 or --deny-cidr CIDR (repeatable: where NATS and the frontends live);
                 --no-egress gives them loopback only; a tenant's "egress": "deny" too
                 --sandbox-cpu memory|shared: memory (default, Lambda's model) caps each
                 sandbox at MemorySize / 1,769 MB of a CPU after its init; shared lets
                 functions use idle CPU; either way each tenant gets an equal weight
  coordinator  load tenants into a fleet           --nats URL --tenants FILE
                 the tenants file must be private (chmod 600 FILE) or it is refused;
                 --allow-readable-tenants-file loads it anyway, with a warning
                 coordinator and frontend: --tenant-key-file FILE ($GUST_TENANT_KEY_FILE),
                 the key tenants' secret keys are encrypted with in NATS; required
                 worker and coordinator: --health-port N serves /healthz and /readyz
                 on --host (default 0.0.0.0)
                 frontend and worker: SIGTERM drains (take no new work, finish what runs,
                 at most --drain-timeout MS, default 30000), then exits; SIGINT exits now
  tenant-key   the key for --tenant-key-file       --out FILE (mode 0600)  --add (rotation)
                 gust tenant-key --help
  nats-config  a NATS nkey per role and the nats-server config admitting them
                 --out DIR (seeds DIR/<role>.nk, mode 0600; DIR/auth.conf)   gust nats-config --help
  local-fleet  nats-server, coordinator, workers and frontends behind HAProxy, until Ctrl-C
                 --host 127.0.0.1  --port ${DEFAULT_FLEET_PORT} (load balancer)  --frontends ${DEFAULT_FLEET_FRONTENDS}  --workers ${DEFAULT_FLEET_WORKERS}
                 --frontend-port N (first frontend's; default --port + 1)
                 --nats URL --nats-seeds DIR (gust nats-config's; default: its own
                 nats-server with a fresh nkey per role)
                 --tenants FILE (default: a new tenant, credentials printed)
                 --max-sandboxes N  --pool N  --trust-tenants  --no-jail (per worker)
  deploy DIR   zip DIR and create or update a function
                 --name NAME --runtime nodejs20.x --handler index.handler --timeout S
                 --memory MB --env KEY=VALUE (repeatable) --endpoint URL
  invoke NAME [PAYLOAD]  invoke a function and print its response
                 --event (asynchronous)  --log (print the log tail)  --endpoint URL
  fleet        each tenant's M, temporary limit T, fleet-wide inflight and every
                 frontend's share, from one frontend   --tenant ID  --endpoint URL
                 ($GUST_ADMIN_TOKEN: every tenant; else your credentials' tenant)
  runtime list|add|default   runtime versions and each runtime's default, through a
                 frontend's admin API ($GUST_ADMIN_TOKEN)   gust runtime --help
  rollout start|pause|resume|abort|retest|status   a runtime upgrade, judged per
                 function ($GUST_ADMIN_TOKEN)   gust rollout --help

NATS URL defaults to $NATS_URL, else nats://127.0.0.1:4222. frontend, worker, coordinator
connect as their role: --nats-nkey FILE ($NATS_NKEY, the role's seed from gust nats-config,
readable by its owner only); TLS: --nats-tls-ca FILE ($NATS_TLS_CA), and for servers that
verify clients --nats-tls-cert FILE --nats-tls-key FILE ($NATS_TLS_CERT, $NATS_TLS_KEY).
dev, frontend, worker, coordinator: --metrics-port N (or $GUST_METRICS_PORT) serves Prometheus
metrics on /metrics; $OTEL_EXPORTER_OTLP_ENDPOINT (e.g. Jaeger's http://HOST:4318) exports traces.
Credentials for deploy/invoke: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the dev
credentials in ${devCredentialsPath()}. Endpoint: --endpoint, $GUST_ENDPOINT, else http://127.0.0.1:${DEFAULT_DEV_PORT}.
`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  tenants: { type: "string" },
  "allow-readable-tenants-file": { type: "boolean" },
  "tenant-key-file": { type: "string" },
  nats: { type: "string" },
  "nats-nkey": { type: "string" },
  "nats-seeds": { type: "string" },
  "nats-tls-ca": { type: "string" },
  "nats-tls-cert": { type: "string" },
  "nats-tls-key": { type: "string" },
  id: { type: "string" },
  "max-sandboxes": { type: "string" },
  "dispatch-slots": { type: "string" },
  "trust-tenants": { type: "boolean" },
  "no-jail": { type: "boolean" },
  "no-egress": { type: "boolean" },
  "deny-cidr": { type: "string", multiple: true },
  "sandbox-cpu": { type: "string" },
  "health-port": { type: "string" },
  frontends: { type: "string" },
  workers: { type: "string" },
  "frontend-port": { type: "string" },
  pool: { type: "string" },
  "metrics-port": { type: "string" },
  "drain-delay": { type: "string" },
  "drain-timeout": { type: "string" },
  "gossip-interval": { type: "string" },
  name: { type: "string" },
  runtime: { type: "string" },
  handler: { type: "string" },
  timeout: { type: "string" },
  memory: { type: "string" },
  env: { type: "string", multiple: true },
  endpoint: { type: "string" },
  event: { type: "boolean" },
  log: { type: "boolean" },
  tenant: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

function adminToken(): string | undefined {
  const token = process.env["GUST_ADMIN_TOKEN"];
  return token === undefined || token === "" ? undefined : token;
}

function environment(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new ConfigError(`--env takes KEY=VALUE, got ${pair}`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

/** This process's tracing and metrics, shut down (spans flushed) after its services. */
let telemetry: Telemetry | undefined;

/**
 * Runs until a signal, then closes the services in order and exits 0.
 *
 * SIGTERM, what Kubernetes and a rolling restart send, first drains (when
 * `drain` is given): no new work, what is in progress finishes. SIGINT
 * (Ctrl-C) stops at once, cleanly; during a drain it cuts the drain short.
 * A signal while closing exits at once with 1.
 */
function serveUntilSignal(
  close: () => Promise<void>,
  drain?: (signal: AbortSignal) => Promise<void>,
): void {
  let phase: "serving" | "draining" | "closing" = "serving";
  const haste = new AbortController();
  const exitAfter = (done: Promise<void>) => {
    done
      .then(() => telemetry?.shutdown())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`gust: error while shutting down: ${String(error)}\n`);
          process.exit(1);
        },
      );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (phase === "closing") process.exit(1);
    if (phase === "draining") {
      if (signal === "SIGTERM") return;
      process.stderr.write(`gust: ${signal} while draining, shutting down now\n`);
      haste.abort();
      return;
    }
    if (signal === "SIGTERM" && drain !== undefined) {
      phase = "draining";
      process.stderr.write("gust: SIGTERM, draining\n");
      const drained = drain(haste.signal).catch((error: unknown) => {
        process.stderr.write(`gust: error while draining: ${String(error)}\n`);
      });
      exitAfter(
        drained.then(() => {
          phase = "closing";
          return close();
        }),
      );
      return;
    }
    phase = "closing";
    process.stderr.write(`gust: ${signal}, shutting down\n`);
    exitAfter(close());
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

function drainOptions(values: Values): DrainOptions {
  const delayMs = integer(values["drain-delay"], "drain-delay");
  const timeoutMs = integer(values["drain-timeout"], "drain-timeout");
  return {
    ...(delayMs === undefined ? {} : { delayMs }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
}

async function runFleetService(
  values: Values,
  role: BusRole,
  start: (infra: Awaited<ReturnType<typeof connectNatsInfrastructure>>) => Promise<Service>,
  healthName?: string,
): Promise<void> {
  const healthPort = integer(values["health-port"], "health-port");
  const drain = drainOptions(values);
  let draining = false;
  const { options, anonymous } = await natsConnectionOptions(role, values);
  if (anonymous) {
    process.stderr.write(
      `gust: connecting to NATS without credentials (no --nats-nkey or $NATS_NKEY); ` +
        `a fleet's server should refuse that (gust nats-config)\n`,
    );
  }
  const infra = await connectNatsInfrastructure(options);
  const services: Service[] = [];
  try {
    services.push(await start(infra));
    if (healthPort !== undefined && healthName !== undefined) {
      // Started last, so closed first: probes fail before the service goes.
      services.push(
        await startHealthServer({
          host: values.host ?? "0.0.0.0",
          port: healthPort,
          service: healthName,
          bus: infra.bus,
          notReadyReasons: () => (draining ? ["draining"] : []),
        }),
      );
    }
  } catch (error) {
    await closeAll(services, infra);
    throw error;
  }
  const drainable = services.some((service) => service.drain !== undefined);
  serveUntilSignal(
    () => closeAll(services, infra),
    drainable
      ? (signal) => {
          draining = true;
          return drainAll(services, { ...drain, signal });
        }
      : undefined,
  );
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // Its flags are its own (runtime-command.ts), so it runs before the shared parse.
  if (command === "runtime") {
    process.stdout.write(await runRuntimeCommand(rest));
    return;
  }
  if (command === "rollout") {
    process.stdout.write(await runRolloutCommand(rest));
    return;
  }
  if (command === "tenant-key") {
    process.stdout.write(await runTenantKeyCommand(rest, process.env["INIT_CWD"] ?? process.cwd()));
    return;
  }
  if (command === "nats-config") {
    process.stdout.write(
      await runNatsConfigCommand(rest, process.env["INIT_CWD"] ?? process.cwd()),
    );
    return;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: OPTIONS,
    allowPositionals: true,
  });
  if (command === undefined || command === "help" || values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const metricsPort = integer(values["metrics-port"], "metrics-port");
  // `gust dev` keeps to loopback unless --host says otherwise; so do its metrics.
  const metricsHost = values.host ?? (command === "dev" ? "127.0.0.1" : undefined);
  telemetry = await startServiceTelemetry(command, {
    ...(metricsPort === undefined ? {} : { metricsPort }),
    ...(metricsHost === undefined ? {} : { metricsHost }),
    ...(values.id === undefined ? {} : { instanceId: values.id }),
  });
  switch (command) {
    case "dev": {
      const credential = await devCredentials();
      const server = await startDev({
        // gust dev serves its own user: every tenant is trusted, jailed or not.
        worker: { trustTenants: true, ...sandboxOptions(values) },
        host: values.host ?? "127.0.0.1",
        port: integer(values.port, "port") ?? DEFAULT_DEV_PORT,
        ...(values.tenants === undefined
          ? { tenants: [devTenant(credential)] }
          : { tenantsFile: values.tenants }),
        ...(values["allow-readable-tenants-file"] === true
          ? { allowReadableTenantsFile: true }
          : {}),
        ...(adminToken() === undefined ? {} : { frontend: { adminToken: adminToken() } }),
      });
      process.stdout.write(
        [
          `Gust dev endpoint: ${server.url}`,
          "",
          "Export these to use it with the AWS CLI or SDK:",
          `export AWS_ACCESS_KEY_ID=${credential.accessKeyId}`,
          `export AWS_SECRET_ACCESS_KEY=${credential.secretAccessKey}`,
          "export AWS_REGION=us-east-1",
          `export AWS_ENDPOINT_URL_LAMBDA=${server.url}`,
          "",
        ].join("\n"),
      );
      serveUntilSignal(() => server.close());
      return;
    }
    case "frontend": {
      const gossipIntervalMs = integer(values["gossip-interval"], "gossip-interval");
      const tenantKeyring = await fleetTenantKeyring("frontend", values["tenant-key-file"]);
      return runFleetService(values, "frontend", (infra) =>
        startFrontendService(infra, {
          tenantKeyring,
          host: values.host ?? "0.0.0.0",
          port: integer(values.port, "port") ?? DEFAULT_DEV_PORT,
          frontend: {
            ...(values.id === undefined ? {} : { frontendId: values.id }),
            // Opens GET /gust/admin/concurrency (gust fleet) for every tenant.
            ...(adminToken() === undefined ? {} : { adminToken: adminToken() }),
            ...(gossipIntervalMs === undefined ? {} : { admissionPolicy: { gossipIntervalMs } }),
          },
        }),
      );
    }
    case "worker": {
      const options = sandboxOptions(values);
      return runFleetService(
        values,
        "worker",
        (infra) =>
          startWorkerService(infra, {
            ...(values.id === undefined ? {} : { workerId: values.id }),
            ...options,
          }),
        values.id === undefined ? "worker" : `worker ${values.id}`,
      );
    }
    case "coordinator": {
      if (values.tenants === undefined)
        throw new ConfigError("gust coordinator needs --tenants FILE");
      const tenantsFile = values.tenants;
      const tenantKeyring = await fleetTenantKeyring("coordinator", values["tenant-key-file"]);
      const allowReadableTenantsFile = values["allow-readable-tenants-file"] === true;
      return runFleetService(
        values,
        "coordinator",
        (infra) =>
          startCoordinatorService(infra, { tenantsFile, tenantKeyring, allowReadableTenantsFile }),
        "coordinator",
      );
    }
    case "local-fleet": {
      const port = integer(values.port, "port");
      const frontends = integer(values.frontends, "frontends");
      const workers = integer(values.workers, "workers");
      const frontendBasePort = integer(values["frontend-port"], "frontend-port");
      const maxSandboxes = integer(values["max-sandboxes"], "max-sandboxes");
      const pool = integer(values.pool, "pool");
      return runLocalFleetCommand({
        ...(values.host === undefined ? {} : { host: values.host }),
        ...(port === undefined ? {} : { port }),
        ...(frontends === undefined ? {} : { frontends }),
        ...(workers === undefined ? {} : { workers }),
        ...(frontendBasePort === undefined ? {} : { frontendBasePort }),
        ...(values.nats === undefined ? {} : { natsUrl: values.nats }),
        ...(values["nats-seeds"] === undefined
          ? {}
          : {
              natsSeedsDir: resolve(process.env["INIT_CWD"] ?? process.cwd(), values["nats-seeds"]),
            }),
        ...(values.tenants === undefined
          ? {}
          : { tenantsFile: resolve(process.env["INIT_CWD"] ?? process.cwd(), values.tenants) }),
        ...(maxSandboxes === undefined ? {} : { maxSandboxes }),
        ...(pool === undefined ? {} : { pool }),
        ...(values["trust-tenants"] === true ? { trustTenants: true } : {}),
        ...(values["no-jail"] === true ? { jail: false } : {}),
      });
    }
    case "deploy": {
      const [dir] = positionals;
      if (dir === undefined || values.name === undefined) {
        throw new ConfigError("usage: gust deploy <dir> --name <function-name>");
      }
      const timeoutSec = integer(values.timeout, "timeout");
      const memoryMb = integer(values.memory, "memory");
      const env = environment(values.env);
      const result = await deploy({
        // `npm run gust` runs from the repository root; INIT_CWD is where the user was.
        dir: resolve(process.env["INIT_CWD"] ?? process.cwd(), dir),
        name: values.name,
        ...(values.endpoint === undefined ? {} : { endpoint: values.endpoint }),
        ...(values.runtime === undefined ? {} : { runtime: values.runtime }),
        ...(values.handler === undefined ? {} : { handler: values.handler }),
        ...(timeoutSec === undefined ? {} : { timeoutSec }),
        ...(memoryMb === undefined ? {} : { memoryMb }),
        ...(env === undefined ? {} : { environment: env }),
      });
      process.stdout.write(
        `${result.FunctionName} deployed: ${result.FunctionArn} (${result.CodeSize} bytes, ${result.CodeSha256})\n`,
      );
      return;
    }
    case "fleet": {
      const report = await fetchFleetStatus({
        ...(values.endpoint === undefined ? {} : { endpoint: values.endpoint }),
        ...(values.tenant === undefined ? {} : { tenant: values.tenant }),
      });
      process.stdout.write(formatFleetStatus(report));
      return;
    }
    case "invoke": {
      const [name, payload] = positionals;
      if (name === undefined) throw new ConfigError("usage: gust invoke <function-name> [payload]");
      const outcome = await invoke({
        name,
        ...(payload === undefined ? {} : { payload }),
        ...(values.endpoint === undefined ? {} : { endpoint: values.endpoint }),
        invocationType: values.event ? "Event" : "RequestResponse",
        tailLog: values.log ?? false,
      });
      if (outcome.log !== undefined) process.stderr.write(outcome.log);
      if (values.event) process.stdout.write(`queued (status ${outcome.statusCode})\n`);
      else process.stdout.write(`${outcome.payload}\n`);
      if (outcome.functionError !== undefined) process.exitCode = 1;
      return;
    }
    default:
      throw new ConfigError(`unknown command ${command}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`gust: ${message}\n`);
  process.exit(1);
});
