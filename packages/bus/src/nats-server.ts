/**
 * Starts a NATS server for tests, benchmarks and local fleets.
 *
 * Where the server comes from, in order:
 * 1. NATS_URL set: that server, shared and owned by someone else, so stop()
 *    leaves it alone and restart() refuses.
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
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ConfigError, GustError } from "@gust/protocol";

export interface NatsServerOptions {
  /** Enable JetStream (KV, object store, work queue). @default true */
  jetstream?: boolean;
  /** Client port; 0 picks a free one. @default 0 */
  port?: number;
  /** JetStream store directory; kept on stop() when given. @default a directory in the server's temp dir */
  storeDir?: string;
  /** How long to wait for the server to accept connections. @default DEFAULT_NATS_START_TIMEOUT_MS */
  startTimeoutMs?: number;
}

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  /** Stops the server and removes what it created. Idempotent. */
  stop(): Promise<void>;
  /** Stops and starts the server again on the same port with the same store, for fault tests. */
  restart(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Generous: a loaded 2-core machine can take seconds to start a server. */
export const DEFAULT_NATS_START_TIMEOUT_MS = 30_000;
export const NATS_DOCKER_IMAGE = "nats:2.10";
export const NATS_SERVER_MAX_PAYLOAD = "8MB";
const STOP_GRACE_MS = 5_000;
const POLL_MS = 25;

interface ResolvedNatsServerOptions {
  jetstream: boolean;
  port: number;
  storeDir: string | undefined;
  startTimeoutMs: number;
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
  return { jetstream: options.jetstream ?? true, port, storeDir: options.storeDir, startTimeoutMs };
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const resolved = resolveNatsServerOptions(options);
  const external = process.env["NATS_URL"];
  if (external !== undefined && external.trim() !== "") return externalServer(external.trim());

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

function serverConfig(port: number, portsDir: string, storeDir: string | undefined): string {
  const lines = [
    `host: "127.0.0.1"`,
    `port: ${port === 0 ? -1 : port}`,
    `max_payload: ${NATS_SERVER_MAX_PAYLOAD}`,
    `ports_file_dir: ${JSON.stringify(portsDir)}`,
  ];
  if (storeDir !== undefined)
    lines.push(`jetstream {`, `  store_dir: ${JSON.stringify(storeDir)}`, `}`);
  return `${lines.join("\n")}\n`;
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

  const launch = async () => {
    if (storeDir !== undefined) await mkdir(storeDir, { recursive: true });
    const configFile = join(dir, "nats.conf");
    await writeFile(configFile, serverConfig(port, dir, storeDir));
    await removePortsFiles(dir);
    const started = spawn(binary, ["-c", configFile], { stdio: ["ignore", "ignore", "pipe"] });
    track(started);
    child = started;
    let log = "";
    started.stderr?.on("data", (chunk: Buffer) => {
      // Keep the tail: it explains a failed start.
      log = (log + chunk.toString("utf8")).slice(-4_000);
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
  // A fixed host port, so restart() keeps it (Docker re-maps ephemeral ports).
  const port = options.port === 0 ? await freePort() : options.port;
  const config = `max_payload: ${NATS_SERVER_MAX_PAYLOAD}\njetstream {\n  store_dir: "/data"\n}\n`;
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
  };
  return {
    url: `nats://${started.getHost()}:${port}`,
    port,
    stop,
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
