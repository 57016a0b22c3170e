/**
 * The systems under test, each started as its own processes so the load
 * generator (this process) never shares an event loop with them: the bare
 * node:http echo, `gust dev`, and a fleet (nats-server, coordinator, one
 * worker, one frontend).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startNatsServer } from "@gust/bus";
import { spawnGust, type GustProcess } from "@gust/cli";
import type { Credential } from "./signing.js";

export interface Target {
  name: string;
  url: string;
  credential: Credential;
  stop(): Promise<void>;
}

export async function startEcho(): Promise<Target> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("./echo-server.js", import.meta.url))],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8").trim()));
    child.once("exit", (code) => reject(new Error(`echo server exited (${code})`)));
  });
  return {
    name: "node:http echo",
    url: `http://127.0.0.1:${port}`,
    credential: { accessKeyId: "unused", secretAccessKey: "unused" },
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

function benchCredential(): Credential {
  return {
    accessKeyId: `GKBENCH${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
  };
}

export interface GustTargetOptions {
  /** Pre-initialized sandboxes per worker. */
  pool: number;
  maxSandboxes: number;
}

export async function startDevTarget(options: GustTargetOptions): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-dev-"));
  const credential = benchCredential();
  const tenantsFile = join(dir, "tenants.json");
  await writeFile(
    tenantsFile,
    JSON.stringify({ tenants: [{ id: "bench", maxConcurrency: 1000, credentials: [credential] }] }),
  );
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
  );
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
  return {
    name: "gust dev",
    url,
    credential,
    stop: async () => {
      await dev.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startFleetTarget(options: GustTargetOptions): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-fleet-"));
  const credential = benchCredential();
  const tenantsFile = join(dir, "tenants.json");
  await writeFile(
    tenantsFile,
    JSON.stringify({ tenants: [{ id: "bench", maxConcurrency: 1000, credentials: [credential] }] }),
  );
  const nats = await startNatsServer({ jetstream: true });
  const processes: GustProcess[] = [];
  const env = { GUST_LOG_LEVEL: "info" };
  try {
    const coordinator = spawnGust(
      ["coordinator", "--nats", nats.url, "--tenants", tenantsFile],
      env,
    );
    processes.push(coordinator);
    await coordinator.waitForLog("coordinator started");
    const worker = spawnGust(
      [
        "worker",
        "--nats",
        nats.url,
        "--pool",
        String(options.pool),
        "--max-sandboxes",
        String(options.maxSandboxes),
      ],
      env,
    );
    processes.push(worker);
    await worker.waitForLog("worker started");
    const frontend = spawnGust(
      ["frontend", "--nats", nats.url, "--host", "127.0.0.1", "--port", "0"],
      env,
    );
    processes.push(frontend);
    const listening = await frontend.waitForLog("frontend listening");
    return {
      name: "gust fleet",
      url: listening["url"] as string,
      credential,
      stop: async () => {
        for (const process of processes.reverse()) await process.stop();
        await nats.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const process of processes) await process.stop();
    await nats.stop();
    throw error;
  }
}
