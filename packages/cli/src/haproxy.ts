/**
 * HAProxy (Debian's `haproxy` package) as the load balancer in front of a
 * local fleet's frontends: one port for clients, an HTTP health check on
 * every frontend's `/readyz`, and a stats socket to see what it thinks of
 * each frontend.
 *
 * Choices, and why:
 * - `balance leastconn`: invocations last from milliseconds to 15 minutes, so
 *   counting open requests spreads load better than taking turns.
 * - Retries only on connection failure (HAProxy's default `retry-on`), each
 *   on another frontend (`option redispatch 1`): a request that never reached
 *   a frontend is safe to resend, an Invoke that did reach one is not. A
 *   frontend that drains (SIGTERM) turns unready, goes on serving until
 *   HAProxy's checks have taken it out, and only then closes its port; a
 *   request that races that close is refused at connect and goes elsewhere.
 * - Kept-alive connections to the frontends (`option http-keep-alive`,
 *   `http-reuse safe`): a new connection per request cost about 0.5 ms of
 *   each invocation's latency. An idle connection closed by a frontend just
 *   as HAProxy sends a request on it would fail that request in a way that
 *   cannot be retried safely (the frontend may have taken it), so HAProxy
 *   is the side that closes idle connections: it halves its idle pool every
 *   second (`pool-purge-delay 1s`), while a frontend keeps an idle
 *   connection for 65 s (FRONTEND_KEEP_ALIVE_MS in @gust/frontend). A
 *   draining frontend closes its connections only after HAProxy's checks
 *   have taken it out of rotation, and HAProxy reuses no connection to a
 *   frontend it has marked down.
 * - One thread (`nbthread 1`): a local fleet shares its few cores with
 *   everything else, and a request whose client and server connections are
 *   served by different threads pays a hop between them (through HAProxy
 *   cost 0.24–0.30 ms over a frontend reached directly, against 0.33–0.37 ms
 *   with a thread per core, at one client on 2 cores).
 * - Its own errors (no frontend up, a frontend gone mid-request, a timeout)
 *   in Lambda's error shape, as a ServiceException, so an SDK reads them as
 *   the retryable service errors they are instead of unparsable HTML.
 * - Client and server timeouts above Lambda's longest function timeout
 *   (900 s), so the load balancer never cuts a legitimate invocation.
 * - Each response says which frontend served it (X-Gust-Frontend), which
 *   helps when reading one frontend's logs for a failed request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { delimiter, join } from "node:path";
import { ConfigError, GustError } from "@gust/protocol";

export const HAPROXY_INSTALL_HINT =
  "HAProxy is not installed: install it with `apt-get install -y haproxy` (Debian/Ubuntu), " +
  "or set GUST_HAPROXY to the haproxy binary";

/** The response header that names the frontend a request went to. */
export const FRONTEND_HEADER = "X-Gust-Frontend";

export interface LoadBalancedServer {
  /** HAProxy's name for it, shown in X-Gust-Frontend and the stats. */
  name: string;
  host: string;
  port: number;
}

export interface HaproxyConfigOptions {
  bindHost: string;
  bindPort: number;
  servers: LoadBalancedServer[];
  /** Unix socket for `show stat`; none when undefined. */
  statsSocket?: string;
  /** @default DEFAULT_HEALTH_CHECK_INTERVAL_MS */
  checkIntervalMs?: number;
  /** @default "/readyz" */
  checkPath?: string;
}

export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 1_000;
/** Lambda's longest function timeout (900 s) plus a minute. */
const REQUEST_TIMEOUT = "16m";

/** What the load balancer itself answers, as Lambda's ServiceException (api-errors in @gust/frontend). */
const BALANCER_ERRORS: ReadonlyArray<readonly [status: number, message: string]> = [
  [502, "The frontend serving the request stopped before it answered. The function may have run."],
  [503, "No frontend is available. Retry the request."],
  [504, "The frontend did not answer in time. The function may have run."],
];

function balancerError(status: number, message: string): string {
  const body = JSON.stringify({ Type: "Service", message });
  return `  http-error status ${status} content-type application/json hdr x-amzn-ErrorType ServiceException string '${body}'`;
}

export function haproxyConfig(options: HaproxyConfigOptions): string {
  const interval = options.checkIntervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS;
  if (!Number.isInteger(interval) || interval <= 0) {
    throw new ConfigError(`checkIntervalMs must be a positive integer, got ${String(interval)}`);
  }
  if (options.servers.length === 0) throw new ConfigError("the load balancer needs a server");
  for (const server of options.servers) {
    if (!/^[A-Za-z0-9_.-]+$/.test(server.name)) {
      throw new ConfigError(`server name must be letters, digits, '.', '_' or '-': ${server.name}`);
    }
  }
  const lines = [
    // No log target: in the foreground HAProxy prints its warnings (a frontend
    // going DOWN or UP) on stderr by itself, and per-request logs would drown them.
    "global",
    "  maxconn 4096",
    "  nbthread 1",
    ...(options.statsSocket === undefined
      ? []
      : [`  stats socket ${options.statsSocket} mode 600 level user`]),
    "",
    "defaults",
    "  mode http",
    "  option http-keep-alive",
    "  http-reuse safe",
    "  option redispatch 1",
    "  retries 3",
    "  timeout connect 5s",
    "  timeout http-request 60s",
    "  timeout queue 30s",
    `  timeout client ${REQUEST_TIMEOUT}`,
    `  timeout server ${REQUEST_TIMEOUT}`,
    "  timeout check 2s",
    ...BALANCER_ERRORS.map(([status, message]) => balancerError(status, message)),
    "",
    "frontend gust",
    `  bind ${options.bindHost}:${options.bindPort}`,
    "  default_backend gust_frontends",
    "",
    "backend gust_frontends",
    "  balance leastconn",
    "  option httpchk",
    `  http-check send meth GET uri ${options.checkPath ?? "/readyz"}`,
    "  http-check expect status 200",
    `  http-response set-header ${FRONTEND_HEADER} %[srv_name]`,
    `  default-server check inter ${interval} fall 2 rise 1 pool-purge-delay 1s`,
    ...options.servers.map((server) => `  server ${server.name} ${server.host}:${server.port}`),
    "",
  ];
  return lines.join("\n");
}

/** PATH first; Debian installs haproxy to /usr/sbin, which a non-root PATH often lacks. */
export async function findHaproxyBinary(): Promise<string | undefined> {
  const explicit = process.env["GUST_HAPROXY"];
  if (explicit !== undefined && explicit !== "") return explicit;
  const dirs = (process.env["PATH"] ?? "").split(delimiter).filter((dir) => dir !== "");
  for (const extra of ["/usr/local/sbin", "/usr/sbin", "/sbin"])
    if (!dirs.includes(extra)) dirs.push(extra);
  for (const dir of dirs) {
    const candidate = join(dir, "haproxy");
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

async function requireHaproxy(binary: string | undefined): Promise<string> {
  const found = binary ?? (await findHaproxyBinary());
  if (found === undefined) throw new ConfigError(HAPROXY_INSTALL_HINT);
  return found;
}

/** `haproxy -c`: parses a config file without starting. */
export async function checkHaproxyConfig(
  configFile: string,
  binary?: string,
): Promise<{ valid: boolean; output: string }> {
  const haproxy = await requireHaproxy(binary);
  return new Promise((resolve, reject) => {
    const child = spawn(haproxy, ["-c", "-f", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ valid: code === 0, output }));
  });
}

export interface ServerState {
  name: string;
  /** HAProxy's status: "UP", "DOWN", "MAINT", "UP 1/2" while rising, … */
  status: string;
  /** Requests (sessions) sent to it so far. */
  sessionsTotal: number;
  /** The last health check's result, e.g. "L7OK" or "L7STS" (bad status). */
  lastCheck: string;
}

export interface HaproxyOptions extends Omit<HaproxyConfigOptions, "statsSocket" | "bindPort"> {
  /** 0 picks a free port. */
  bindPort: number;
  /** Where the config and the stats socket go; the caller owns and removes it. */
  dir: string;
  /** @default findHaproxyBinary() */
  binary?: string;
  /** @default 15000 */
  startTimeoutMs?: number;
  /** Each line of HAProxy's log: frontends going DOWN or UP, errors. */
  onLog?: (line: string) => void;
}

export interface HaproxyHandle {
  readonly url: string;
  readonly port: number;
  readonly configFile: string;
  readonly process: ChildProcess;
  /** What HAProxy's own log said (stderr): health changes and errors. */
  output(): string;
  serverStates(): Promise<ServerState[]>;
  /** Resolves once every named server (default: all) is UP. */
  waitForServersUp(names?: string[], timeoutMs?: number): Promise<void>;
  /** Soft stop: stop accepting, let open requests finish (up to graceMs), then exit. */
  stop(graceMs?: number): Promise<void>;
}

const BACKEND = "gust_frontends";
const POLL_MS = 100;

export async function startHaproxy(options: HaproxyOptions): Promise<HaproxyHandle> {
  const binary = await requireHaproxy(options.binary);
  const port = options.bindPort === 0 ? await freePort(options.bindHost) : options.bindPort;
  const statsSocket = join(options.dir, "haproxy.sock");
  const configFile = join(options.dir, "haproxy.cfg");
  await writeFile(configFile, haproxyConfig({ ...options, bindPort: port, statsSocket }));

  // -db: stay in the foreground, so the process is ours to watch and stop.
  const child = spawn(binary, ["-db", "-f", configFile], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  let pending = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    log = (log + text).slice(-20_000);
    if (options.onLog === undefined) return;
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      options.onLog(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const failedStart = new Promise<never>((_, reject) => {
    child.once("error", (error) =>
      reject(new GustError(`cannot run ${binary}: ${error.message}`, "haproxy", { cause: error })),
    );
    child.once("exit", (code, signal) =>
      reject(
        new GustError(
          `haproxy exited during start (code ${code}, signal ${signal}):\n${log}`,
          "haproxy",
        ),
      ),
    );
  });
  failedStart.catch(() => undefined);

  const stop = async (graceMs = 5_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGUSR1");
    const hard = setTimeout(() => child.kill("SIGTERM"), graceMs);
    const kill = setTimeout(() => child.kill("SIGKILL"), graceMs + 5_000);
    await exited;
    clearTimeout(hard);
    clearTimeout(kill);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  try {
    await Promise.race([probeTcp(options.bindHost, port, deadline), failedStart]);
  } catch (error) {
    await stop(0);
    throw error;
  }

  const serverStates = async () => parseServerStates(await statsCommand(statsSocket, "show stat"));
  const host = options.bindHost.includes(":") ? `[${options.bindHost}]` : options.bindHost;
  return {
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`,
    port,
    configFile,
    process: child,
    output: () => log,
    serverStates,
    async waitForServersUp(names, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      let states: ServerState[] = [];
      for (;;) {
        try {
          states = await serverStates();
        } catch (error) {
          // HAProxy creates its stats socket a moment after it starts (or restarts).
          if (Date.now() > until) throw error;
          await sleep(POLL_MS);
          continue;
        }
        const wanted = states.filter((state) => names === undefined || names.includes(state.name));
        if (wanted.length > 0 && wanted.every((state) => state.status === "UP")) return;
        if (Date.now() > until) {
          throw new GustError(
            `load balancer servers not all UP within ${timeoutMs} ms: ${JSON.stringify(states)}`,
            "haproxy",
          );
        }
        await sleep(POLL_MS);
      }
    },
    stop,
  };
}

/** Parses `show stat` CSV: a `# pxname,svname,…` header, then one row per proxy and server. */
export function parseServerStates(csv: string): ServerState[] {
  const [header, ...rows] = csv.split("\n").filter((line) => line.trim() !== "");
  if (header === undefined) return [];
  const columns = header.replace(/^#\s*/, "").split(",");
  const at = (name: string) => columns.indexOf(name);
  const states: ServerState[] = [];
  for (const row of rows) {
    const fields = row.split(",");
    const proxy = fields[at("pxname")];
    const name = fields[at("svname")];
    if (proxy !== BACKEND || name === undefined || name === "BACKEND") continue;
    states.push({
      name,
      status: fields[at("status")] ?? "",
      sessionsTotal: Number(fields[at("stot")] ?? 0),
      lastCheck: fields[at("check_status")] ?? "",
    });
  }
  return states;
}

function statsCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = connect(socketPath, () => socket.end(`${command}\n`));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.once("error", (error) =>
      reject(new GustError(`haproxy stats socket: ${error.message}`, "haproxy", { cause: error })),
    );
    socket.once("close", () => resolve(text));
  });
}

async function probeTcp(host: string, port: number, deadline: number): Promise<void> {
  const target = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: target, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await sleep(POLL_MS);
  }
  throw new GustError(`haproxy did not accept connections on port ${port} in time`, "haproxy");
}

/** A port free right now; HAProxy cannot report the port it picked for `:0`. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new GustError("could not pick a free port", "haproxy"));
      });
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
