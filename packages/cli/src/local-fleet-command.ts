/**
 * `gust local-fleet`: a local fleet for a person at a terminal, until Ctrl-C.
 *
 * Ctrl-C sends SIGINT to every process in the terminal's foreground group.
 * Were the fleet's processes in that group, they would all stop at once, in
 * no order: nats-server gone before the workers said goodbye, the load
 * balancer cutting requests that frontends were still finishing. So the
 * command runs in two processes: the one in the terminal only supervises,
 * and starts the fleet in a detached process (a process group of its own),
 * which it tells to stop on SIGINT or SIGTERM and which then stops every
 * piece in order. The fleet also stops when the supervisor dies, however it
 * dies: its end of a pipe closes.
 */
import { spawn } from "node:child_process";
import { HAPROXY_INSTALL_HINT, findHaproxyBinary } from "./haproxy.js";
import { startLocalFleet, type LocalFleet, type LocalFleetOptions } from "./local-fleet.js";

/** Set in the detached process, which runs the fleet itself. */
const SUPERVISED_ENV = "GUST_LOCAL_FLEET_SUPERVISED";

export async function runLocalFleetCommand(options: LocalFleetOptions): Promise<void> {
  // Say how to install HAProxy before starting anything.
  if ((await findHaproxyBinary()) === undefined) {
    process.stderr.write(`gust local-fleet: ${HAPROXY_INSTALL_HINT}\n`);
    process.exitCode = 1;
    return;
  }
  if (process.env[SUPERVISED_ENV] === "1") return runFleet(options);
  return supervise();
}

function supervise(): Promise<void> {
  const child = spawn(process.execPath, process.argv.slice(1), {
    detached: true,
    stdio: ["pipe", "inherit", "inherit"],
    env: { ...process.env, [SUPERVISED_ENV]: "1" },
  });
  let signalled = 0;
  const forward = () => {
    signalled++;
    // A second Ctrl-C asks for haste; the fleet then kills what is left.
    child.kill(signalled === 1 ? "SIGTERM" : "SIGINT");
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  process.on("SIGHUP", forward);
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      process.exitCode = code ?? (signal === null ? 1 : 128);
      resolve();
    });
    child.once("error", (error) => {
      process.stderr.write(`gust local-fleet: cannot start the fleet: ${error.message}\n`);
      process.exitCode = 1;
      resolve();
    });
  });
}

function banner(fleet: LocalFleet): string {
  const frontends = fleet.frontends.map((frontend) => `${frontend.id} ${frontend.url}`).join(", ");
  const lines = [
    `Gust local fleet: ${fleet.url}`,
    `  load balancer  HAProxy on ${fleet.url}, checking each frontend's /readyz`,
    `  frontends      ${frontends}`,
    `  workers        ${fleet.workers.map((worker) => worker.id).join(", ")}`,
    `  coordinator    tenants from ${fleet.tenantsFile}`,
    `  NATS           ${fleet.natsUrl}${
      fleet.natsSeedFiles === undefined
        ? " (no credentials)"
        : `, each role with its own nkey (${fleet.natsSeedFiles.admin} has every right)`
    }`,
    "",
  ];
  const credential = fleet.tenant?.credentials[0];
  if (credential !== undefined) {
    lines.push(
      "Export these to use it with the AWS CLI or SDK:",
      `export AWS_ACCESS_KEY_ID=${credential.accessKeyId}`,
      `export AWS_SECRET_ACCESS_KEY=${credential.secretAccessKey}`,
      "export AWS_REGION=us-east-1",
      `export AWS_ENDPOINT_URL_LAMBDA=${fleet.url}`,
      "",
    );
  } else {
    lines.push(`Use the credentials of a tenant in ${fleet.tenantsFile}.`, "");
  }
  lines.push("Ctrl-C stops the fleet.", "");
  return lines.join("\n");
}

async function runFleet(options: LocalFleetOptions): Promise<void> {
  const starting = new AbortController();
  let fleet: LocalFleet | undefined;
  let stopping = false;
  const stop = (why: string) => {
    // Asked again: do not wait for graceful shutdowns.
    if (stopping) process.exit(1);
    stopping = true;
    process.stderr.write(`gust local-fleet: ${why}, stopping the fleet\n`);
    // While starting, the start gives up and stops what it started (below).
    if (fleet === undefined) starting.abort();
    else exitAfter(fleet.stop());
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // The supervisor holds the other end; it closes when the supervisor exits.
  process.stdin.on("close", () => stop("the supervising process is gone"));
  process.stdin.on("error", () => undefined);
  process.stdin.resume();

  try {
    fleet = await startLocalFleet({
      ...options,
      signal: starting.signal,
      onLog: (source, line) => process.stderr.write(`[${source}] ${line}\n`),
    });
  } catch (error) {
    if (stopping) exitAfter(Promise.resolve());
    else throw error;
    return;
  }
  if (stopping) exitAfter(fleet.stop());
  else process.stdout.write(banner(fleet));
}

function exitAfter(stopped: Promise<void>): void {
  stopped.then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`gust local-fleet: error while stopping: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
