/**
 * The systems under test, each started as its own processes so the load
 * generator never shares an event loop with them: the bare node:http echo,
 * `gust dev`, and a fleet behind its load balancer (`gust local-fleet`'s
 * startLocalFleet: nats-server, coordinator, workers, frontends, HAProxy).
 * serverless-offline is in serverless-offline.ts.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnGust, startLocalFleet } from "@gust/cli";
import {
  ECHO_PATHS,
  PAYLOAD,
  invokePath,
  type GustEndpoint,
  type HandlerName,
} from "./handlers.js";
import { signedHeaders, type Credential } from "./signing.js";

export interface LoadRequest {
  url: string;
  headers: Record<string, string>;
}

export interface Target {
  name: string;
  /** The process whose memory the benchmark reports, when there is one. */
  pid?: number;
  /** URL and headers (signed where the target checks signatures) to invoke `handler`. */
  request(handler: HandlerName): Promise<LoadRequest>;
  stop(): Promise<void>;
}

export interface GustTarget extends Target, GustEndpoint {
  /** The fleet's nats-server. */
  natsUrl?: string;
  /** The same fleet reached straight at one frontend, without the load balancer. */
  direct?: GustTarget;
}

const JSON_HEADERS = {
  "content-type": "application/json",
  "content-length": String(PAYLOAD.length),
};

/** A bench server script run as its own process, printing its port; requests go to ECHO_PATHS. */
async function startScriptTarget(script: string, name: string): Promise<Target> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8").trim()));
    child.once("exit", (code) => reject(new Error(`${name} exited (${code})`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    name,
    ...(child.pid === undefined ? {} : { pid: child.pid }),
    request: (handler) =>
      Promise.resolve({ url: url + ECHO_PATHS[handler], headers: JSON_HEADERS }),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

export function startEcho(): Promise<Target> {
  return startScriptTarget("./echo-server.js", "node:http echo");
}

/** The floor for a process per invocation (relay-server.ts). */
export function startRelay(): Promise<Target> {
  return startScriptTarget("./relay-server.js", "process relay (floor)");
}

export interface GustTargetOptions {
  /** Pre-initialized sandboxes per worker. */
  pool: number;
  maxSandboxes: number;
  /** Flags for node before gust's script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

function benchCredential(): Credential {
  return {
    accessKeyId: `GKBENCH${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
  };
}

/** A tenants file with one tenant allowed far more concurrency than any benchmark asks for. */
export async function writeTenantsFile(
  dir: string,
  credential: Credential,
  maxConcurrency = 1000,
): Promise<string> {
  const file = join(dir, "tenants.json");
  await writeFile(
    file,
    JSON.stringify({ tenants: [{ id: "bench", maxConcurrency, credentials: [credential] }] }),
    // Gust refuses a tenants file other users could read.
    { mode: 0o600 },
  );
  return file;
}

function gustRequest(endpoint: GustEndpoint) {
  return async (handler: HandlerName): Promise<LoadRequest> => {
    const path = invokePath(handler);
    const headers = await signedHeaders(endpoint.url, "POST", path, PAYLOAD, endpoint.credential);
    return { url: endpoint.url + path, headers };
  };
}

export async function startDevTarget(options: GustTargetOptions): Promise<GustTarget> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-dev-"));
  const credential = benchCredential();
  const tenantsFile = await writeTenantsFile(dir, credential);
  const dev = spawnGust(
    [
      "dev",
      "--port",
      "0",
      "--tenants",
      tenantsFile,
      "--pool",
      String(options.pool),
      "--max-sandboxes",
      String(options.maxSandboxes),
    ],
    { GUST_LOG_LEVEL: "warn" },
    options.nodeArgs,
  );
  const stop = async () => {
    await dev.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /Gust dev endpoint: (\S+)/.exec(dev.output());
        if (match?.[1]) {
          clearInterval(timer);
          resolve(match[1]);
        }
      }, 20);
      dev.child.once("exit", (code) => {
        clearInterval(timer);
        reject(new Error(`gust dev exited (${code}):\n${dev.output()}`));
      });
    });
    const endpoint = { name: "gust dev", url, credential };
    return {
      ...endpoint,
      ...(dev.child.pid === undefined ? {} : { pid: dev.child.pid }),
      request: gustRequest(endpoint),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface FleetTargetOptions extends GustTargetOptions {
  frontends: number;
  workers: number;
}

export async function startFleetTarget(options: FleetTargetOptions): Promise<GustTarget> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-fleet-"));
  const credential = benchCredential();
  try {
    const fleet = await startLocalFleet({
      port: 0,
      frontends: options.frontends,
      workers: options.workers,
      pool: options.pool,
      maxSandboxes: options.maxSandboxes,
      tenantsFile: await writeTenantsFile(dir, credential),
    });
    const endpoint = {
      name: `gust fleet (HAProxy, ${options.frontends} frontends)`,
      url: fleet.url,
      credential,
    };
    const first = fleet.frontends[0];
    const direct =
      first === undefined
        ? undefined
        : {
            name: "gust fleet, straight to a frontend",
            url: first.url,
            credential,
          };
    return {
      ...endpoint,
      natsUrl: fleet.natsUrl,
      ...(direct === undefined
        ? {}
        : {
            direct: {
              ...direct,
              request: gustRequest(direct),
              // The fleet's own stop ends it.
              stop: () => Promise.resolve(),
            },
          }),
      request: gustRequest(endpoint),
      stop: async () => {
        await fleet.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
