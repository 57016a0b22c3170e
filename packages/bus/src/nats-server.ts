/**
 * Starts a NATS server for tests, benchmarks and local fleets.
 *
 * Where the server comes from, in order:
 * 1. NATS_URL set: that server, shared and owned by someone else, so stop()
 *    leaves it alone and restart() refuses. Not for `auth` or `tls`, whose
 *    users and certificates must be the server's own config.
 * 2. A `nats-server` binary (PATH, then the sbin directories Debian installs
 *    it to): spawned with a generated config in a temp dir, `port: -1` unless
 *    a port is given, a ports file to learn the real port, JetStream storing
 *    in the temp dir. The launch races the process's early exit against the
 *    ports file, then probes the port over TCP. The approach follows nats.js's
 *    test launcher (nst/src/launcher.ts).
 * 3. The `nats:2.10` image through testcontainers, when a Docker engine
 *    answers (loaded lazily, so it costs nothing otherwise).
 * Otherwise it fails with an error that says how to get a server.
 *
 * Gust sends invocation payloads of up to 6 MB, so max_payload is 8 MB.
 *
 * With `auth`, the server admits only the nkeys of Gust's roles, each with
 * its permissions (nats-auth.ts, nats-permissions.ts): fresh keys per start
 * unless given, their seeds written to the server's temp dir, and every
 * permission violation the server logs kept for tests to read. With `tls`,
 * clients must connect over TLS with the operator's certificate.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ConfigError, GustError } from "@gust/protocol";
import {
  generateBusCredentials,
  natsAccountsConfig,
  publicKeysOf,
  writeBusSeeds,
  type BusCredentials,
} from "./nats-auth.js";
import { BUS_ROLES, type BusRole } from "./nats-permissions.js";

export interface NatsServerOptions {
  /** Enable JetStream (KV, object store, work queue). @default true */
  jetstream?: boolean;
  /** Client port; 0 picks a free one. @default 0 */
  port?: number;
  /** JetStream store directory; kept on stop() when given. @default a directory in the server's temp dir */
  storeDir?: string;
  /** How long to wait for the server to accept connections. @default DEFAULT_NATS_START_TIMEOUT_MS */
  startTimeoutMs?: number;
  /**
   * Admit only Gust's roles: `true` makes a fresh nkey per role, or pass the
   * credentials to admit. Not with NATS_URL (that server's users are not
   * ours to set), so an authenticated start always runs a server of its own.
   * @default no authentication
   */
  auth?: true | BusCredentials;
  /** Require TLS from clients, with the operator's certificate. @default plain TCP */
  tls?: NatsServerTlsOptions;
}

export interface NatsServerTlsOptions {
  /** PEM certificate (chain) the server presents. */
  certFile: string;
  /** Its PEM private key. */
  keyFile: string;
  /** CA bundle for client certificates; with `verify`, clients must present one it signed. */
  caFile?: string;
  /** Require and verify client certificates (mutual TLS). @default false */
  verify?: boolean;
}

/** What an authenticated server admits, for the processes that connect to it. */
export interface NatsServerAuth {
  readonly credentials: BusCredentials;
  /** Each role's seed file (mode 0600) in the server's temp dir. */
  readonly seedFiles: Readonly<Record<BusRole, string>>;
  /** Which role a public key belongs to, for reading the server's log. */
  roleOf(publicKey: string): BusRole | undefined;
}

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  /** Stops the server and removes what it created. Idempotent. */
  stop(): Promise<void>;
  /** Stops and starts the server again on the same port with the same store, for fault tests. */
  restart(): Promise<void>;
  /** Set when started with `auth`. */
  readonly auth: NatsServerAuth | undefined;
  /**
   * The permission violations the server logged (publish and subscribe
   * refusals), each line with the role named; at most the last
   * MAX_KEPT_VIOLATIONS. Empty for a server this process did not start.
   */
  permissionViolations(): string[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** Generous: a loaded 2-core machine can take seconds to start a server. */
export const DEFAULT_NATS_START_TIMEOUT_MS = 30_000;
export const NATS_DOCKER_IMAGE = "nats:2.10";
export const NATS_SERVER_MAX_PAYLOAD = "8MB";
const STOP_GRACE_MS = 5_000;
export const MAX_KEPT_VIOLATIONS = 200;
const POLL_MS = 25;

interface ResolvedNatsServerOptions {
  jetstream: boolean;
  port: number;
  storeDir: string | undefined;
  startTimeoutMs: number;
  credentials: BusCredentials | undefined;
  tls: NatsServerTlsOptions | undefined;
}

export function resolveNatsServerOptions(
  options: NatsServerOptions = {},
): ResolvedNatsServerOptions {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_NATS_START_TIMEOUT_MS;
  if (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0) {
    throw new ConfigError(
      `startTimeoutMs must be a positive number, got ${String(startTimeoutMs)}`,
    );
  }
  const tls = options.tls;
  if (tls !== undefined) {
    if (tls.certFile === "" || tls.keyFile === "")
      throw new ConfigError("tls needs both certFile and keyFile");
    if (tls.verify === true && tls.caFile === undefined)
      throw new ConfigError("tls.verify needs tls.caFile to verify client certificates with");
  }
  return {
    jetstream: options.jetstream ?? true,
    port,
    storeDir: options.storeDir,
    startTimeoutMs,
    credentials: options.auth === true ? generateBusCredentials() : options.auth,
    tls,
  };
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const resolved = resolveNatsServerOptions(options);
  const external = process.env["NATS_URL"];
  const own = resolved.credentials !== undefined || resolved.tls !== undefined;
  if (!own && external !== undefined && external.trim() !== "")
    return externalServer(external.trim());

  const binary = await findNatsServerBinary();
  if (binary !== undefined) return startLocalServer(binary, resolved);

  const docker = await startDockerServer(resolved);
  if (docker !== undefined) return docker;

  throw new ConfigError(
    "No NATS server available: nats-server is not on PATH and no Docker engine answered. " +
      "Install it with `apt-get install -y nats-server` (or from https://github.com/nats-io/nats-server/releases), " +
      "or set NATS_URL to a running server, e.g. NATS_URL=nats://127.0.0.1:4222.",
  );
}

// ---- 1. a server someone else runs ------------------------------------------------

function externalServer(url: string): NatsServerHandle {
  const first = url.split(",")[0]?.trim() ?? url;
  let port = 4222;
  try {
    const parsed = new URL(first.includes("://") ? first : `nats://${first}`);
    if (parsed.port !== "") port = Number(parsed.port);
  } catch {
    throw new ConfigError(`NATS_URL ${JSON.stringify(url)} is not a URL`);
  }
  const stop = () => Promise.resolve();
  return {
    url,
    port,
    stop,
    auth: undefined,
    permissionViolations: () => [],
    restart: () =>
      Promise.reject(
        new GustError(
          `cannot restart the NATS server at ${url}: it comes from NATS_URL and is not ours to control; ` +
            "unset NATS_URL to let tests start their own",
          "unsupported",
        ),
      ),
    [Symbol.asyncDispose]: stop,
  };
}

// ---- 2. a nats-server process ------------------------------------------------------

/** PATH first; Debian's package installs to /usr/sbin, which a non-root PATH often lacks. */
export async function findNatsServerBinary(): Promise<string | undefined> {
  const dirs = (process.env["PATH"] ?? "").split(delimiter).filter((d) => d !== "");
  for (const extra of ["/usr/local/sbin", "/usr/sbin", "/sbin"])
    if (!dirs.includes(extra)) dirs.push(extra);
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Children still running when the process exits are killed, so a crashed test leaks no server. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of liveChildren) c.kill("SIGKILL");
    });
  }
  liveChildren.add(child);
  child.once("exit", () => liveChildren.delete(child));
}

function serverConfig(
  port: number,
  portsDir: string,
  storeDir: string | undefined,
  options: ResolvedNatsServerOptions,
): string {
  const lines = [
    `host: "127.0.0.1"`,
    `port: ${port === 0 ? -1 : port}`,
    `max_payload: ${NATS_SERVER_MAX_PAYLOAD}`,
    `ports_file_dir: ${JSON.stringify(portsDir)}`,
  ];
  if (storeDir !== undefined)
    lines.push(`jetstream {`, `  store_dir: ${JSON.stringify(storeDir)}`, `}`);
  if (options.tls !== undefined) lines.push(natsTlsConfig(options.tls));
  if (options.credentials !== undefined)
    lines.push(natsAccountsConfig(publicKeysOf(options.credentials)));
  return `${lines.join("\n")}\n`;
}

/** nats-server's `tls` block for client connections. */
export function natsTlsConfig(tls: NatsServerTlsOptions): string {
  return [
    `tls {`,
    `  cert_file: ${JSON.stringify(tls.certFile)}`,
    `  key_file: ${JSON.stringify(tls.keyFile)}`,
    ...(tls.caFile === undefined ? [] : [`  ca_file: ${JSON.stringify(tls.caFile)}`]),
    ...(tls.verify === true ? [`  verify: true`] : []),
    `}`,
  ].join("\n");
}

/**
 * nats-server logs a refusal as
 * `… - "<client name>" - Publish Violation - User "<nkey>", Subject "<subject>"`
 * (and Subscription Violation); the key is replaced by the role's name.
 */
const VIOLATION = /(Publish|Subscription) Violation/;
const USER_KEY = /U[A-Z2-7]{55}/;

function auditViolations(auth: NatsServerAuth | undefined) {
  const kept: string[] = [];
  return {
    line(line: string): void {
      if (!VIOLATION.test(line)) return;
      const key = USER_KEY.exec(line)?.[0];
      const role = key === undefined ? undefined : auth?.roleOf(key);
      kept.push(role === undefined || key === undefined ? line : line.replace(key, role));
      if (kept.length > MAX_KEPT_VIOLATIONS) kept.shift();
    },
    all: (): string[] => [...kept],
  };
}

async function prepareAuth(
  dir: string,
  credentials: BusCredentials | undefined,
): Promise<NatsServerAuth | undefined> {
  if (credentials === undefined) return undefined;
  const seedFiles = await writeBusSeeds(dir, credentials);
  const roles = new Map(BUS_ROLES.map((role) => [credentials[role].publicKey, role]));
  return { credentials, seedFiles, roleOf: (publicKey) => roles.get(publicKey) };
}

async function startLocalServer(
  binary: string,
  options: ResolvedNatsServerOptions,
): Promise<NatsServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), "gust-nats-"));
  const storeDir = options.jetstream ? (options.storeDir ?? join(dir, "jetstream")) : undefined;
  let port = options.port;
  let child: ChildProcess | undefined;
  let stopped = false;
  let auth: NatsServerAuth | undefined;
  try {
    auth = await prepareAuth(dir, options.credentials);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const audit = auditViolations(auth);

  const launch = async () => {
    if (storeDir !== undefined) await mkdir(storeDir, { recursive: true });
    const configFile = join(dir, "nats.conf");
    await writeFile(configFile, serverConfig(port, dir, storeDir, options), { mode: 0o600 });
    await removePortsFiles(dir);
    const started = spawn(binary, ["-c", configFile], { stdio: ["ignore", "ignore", "pipe"] });
    track(started);
    child = started;
    let log = "";
    let pending = "";
    started.stderr?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      // Keep the tail: it explains a failed start.
      log = (log + text).slice(-4_000);
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        audit.line(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    });
    const exited = new Promise<never>((_, reject) => {
      started.once("error", (error) =>
        reject(
          new GustError(`cannot run ${binary}: ${error.message}`, "nats-server", { cause: error }),
        ),
      );
      started.once("exit", (code, signal) =>
        reject(
          new GustError(
            `nats-server exited during start (code ${code}, signal ${signal}):\n${log}`,
            "nats-server",
          ),
        ),
      );
    });
    exited.catch(() => undefined);
    const deadline = Date.now() + options.startTimeoutMs;
    try {
      const url = await Promise.race([waitForPortsFile(dir, started, deadline), exited]);
      port = Number(new URL(url).port);
      await Promise.race([probeTcp(port, deadline), exited]);
    } catch (error) {
      await terminate(started);
      throw error;
    }
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child) await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (error) {
    stopped = true;
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    auth,
    permissionViolations: audit.all,
    restart: async () => {
      if (stopped) throw new GustError("cannot restart a stopped NATS server", "unsupported");
      if (child) await terminate(child);
      await launch();
    },
    [Symbol.asyncDispose]: stop,
  };
}

async function removePortsFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.endsWith(".ports")) await unlink(join(dir, name)).catch(() => undefined);
  }
}

/** nats-server writes `<dir>/nats-server_<pid>.ports` ({"nats": ["nats://host:port"]}) once it listens. */
async function waitForPortsFile(
  dir: string,
  child: ChildProcess,
  deadline: number,
): Promise<string> {
  const file = join(dir, `nats-server_${child.pid}.ports`);
  while (Date.now() < deadline) {
    try {
      const ports = JSON.parse(await readFile(file, "utf8")) as { nats?: string[] };
      const url = ports.nats?.[0];
      if (url !== undefined) return url;
    } catch {
      // not written yet, or half written
    }
    await sleep(POLL_MS);
  }
  throw new GustError(`nats-server wrote no ports file within the start timeout`, "nats-server");
}

async function probeTcp(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await sleep(POLL_MS);
  }
  throw new GustError(
    `nats-server did not accept connections on port ${port} in time`,
    "nats-server",
  );
}

/** SIGTERM lets JetStream flush its store; SIGKILL if it does not exit in time. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- 3. a container -------------------------------------------------------------

async function startDockerServer(
  options: ResolvedNatsServerOptions,
): Promise<NatsServerHandle | undefined> {
  let testcontainers: typeof import("testcontainers");
  try {
    testcontainers = await import("testcontainers");
    await testcontainers.getContainerRuntimeClient();
  } catch {
    return undefined; // no testcontainers installed, or no Docker engine answers
  }
  if (options.tls !== undefined) {
    throw new ConfigError(
      "a NATS server with TLS needs the nats-server binary (the container cannot see the certificate files)",
    );
  }
  // A fixed host port, so restart() keeps it (Docker re-maps ephemeral ports).
  const port = options.port === 0 ? await freePort() : options.port;
  let config = `max_payload: ${NATS_SERVER_MAX_PAYLOAD}\njetstream {\n  store_dir: "/data"\n}\n`;
  let auth: NatsServerAuth | undefined;
  let seedsDir: string | undefined;
  if (options.credentials !== undefined) {
    config += natsAccountsConfig(publicKeysOf(options.credentials));
    seedsDir = await mkdtemp(join(tmpdir(), "gust-nats-"));
    auth = await prepareAuth(seedsDir, options.credentials);
  }
  let container = new testcontainers.GenericContainer(NATS_DOCKER_IMAGE)
    .withCopyContentToContainer([{ content: config, target: "/etc/gust/nats.conf" }])
    .withCommand(
      options.jetstream ? ["-js", "-c", "/etc/gust/nats.conf"] : ["-c", "/etc/gust/nats.conf"],
    )
    .withExposedPorts({ container: 4222, host: port })
    .withWaitStrategy(testcontainers.Wait.forLogMessage(/Server is ready/))
    .withStartupTimeout(options.startTimeoutMs);
  if (options.storeDir !== undefined) {
    container = container.withBindMounts([{ source: options.storeDir, target: "/data" }]);
  }
  const started = await container.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await started.stop();
    if (seedsDir !== undefined) await rm(seedsDir, { recursive: true, force: true });
  };
  return {
    url: `nats://${started.getHost()}:${port}`,
    port,
    stop,
    auth,
    permissionViolations: () => [],
    restart: async () => {
      await started.restart();
      await probeTcp(port, Date.now() + options.startTimeoutMs);
    },
    [Symbol.asyncDispose]: stop,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new GustError("could not pick a free port", "nats-server"));
      });
    });
  });
}
