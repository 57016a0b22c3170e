/**
 * serverless-offline, the popular local Lambda emulator, as a target: the
 * Serverless Framework 3 (`serverless offline start`, which needs no account
 * and downloads nothing) with a generated serverless.yml holding the same
 * handlers, driven through its Lambda Invoke endpoint on `lambdaPort`
 * (POST /2015-03-31/functions/<name>/invocations; it checks no signature).
 *
 * It slows down and grows the longer it runs, so the benchmark starts a
 * fresh instance for each measured cell and measures that decline apart
 * (invoke-bench's degradation run). Handlers stay loaded between
 * invocations (`reloadHandler: false`), one worker thread per concurrent
 * invocation, as serverless-offline does by default.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { HANDLERS, HANDLER_NAMES, PAYLOAD, invokePath } from "./handlers.js";
import { childStopper, freePort } from "./proc.js";
import type { Target } from "./targets.js";

const require = createRequire(import.meta.url);
const SERVERLESS_BIN = join(
  dirname(require.resolve("serverless/package.json")),
  "bin/serverless.js",
);
/** Where serverless finds its plugin (installed beside it): the repository's node_modules. */
const NODE_MODULES = dirname(dirname(require.resolve("serverless/package.json")));
const START_TIMEOUT_MS = 60_000;

function serverlessYml(ports: Record<string, number>): string {
  const functions = HANDLER_NAMES.map(
    // `name` makes each function's Lambda name the same as on Gust.
    (handler) => `  ${handler}:\n    name: ${handler}\n    handler: ${handler}.handler\n`,
  ).join("");
  const offline = Object.entries(ports)
    .map(([option, port]) => `    ${option}: ${port}\n`)
    .join("");
  return (
    "service: gust-bench\n" +
    'frameworkVersion: "3"\n' +
    "provider:\n  name: aws\n  runtime: nodejs20.x\n  region: us-east-1\n  stage: bench\n" +
    `functions:\n${functions}` +
    "plugins:\n  - serverless-offline\n" +
    "custom:\n  serverless-offline:\n    host: 127.0.0.1\n" +
    "    reloadHandler: false\n    noPrependStageInUrl: true\n" +
    offline
  );
}

export async function startServerlessOffline(): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-sls-"));
  await symlink(NODE_MODULES, join(dir, "node_modules"));
  for (const handler of HANDLER_NAMES) {
    await writeFile(join(dir, `${handler}.mjs`), HANDLERS[handler]);
  }
  const ports = {
    lambdaPort: await freePort(),
    httpPort: await freePort(),
    websocketPort: await freePort(),
    albPort: await freePort(),
  };
  await writeFile(join(dir, "serverless.yml"), serverlessYml(ports));
  const child = spawn(process.execPath, [SERVERLESS_BIN, "offline", "start"], {
    cwd: dir,
    env: {
      ...process.env,
      SLS_TELEMETRY_DISABLED: "1",
      SLS_NOTIFICATIONS_MODE: "off",
      SLS_INTERACTIVE_SETUP_DISABLE: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Keep only the end of its output, for an error message: it runs for a long time.
  let output = "";
  const keep = (chunk: Buffer) => (output = (output + chunk.toString("utf8")).slice(-8_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const stopChild = childStopper(child, "SIGINT", 5_000);
  const stop = async () => {
    await stopChild();
    await rm(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${ports.lambdaPort}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + START_TIMEOUT_MS;
      const timer = setInterval(() => {
        if (output.includes(`listening on ${base}`)) {
          clearInterval(timer);
          resolve();
        } else if (child.exitCode !== null || Date.now() > deadline) {
          clearInterval(timer);
          reject(new Error(`serverless-offline did not start:\n${output}`));
        }
      }, 20);
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name: "serverless-offline",
    ...(child.pid === undefined ? {} : { pid: child.pid }),
    request: (handler) =>
      Promise.resolve({
        url: base + invokePath(handler),
        headers: { "content-type": "application/json", "content-length": String(PAYLOAD.length) },
      }),
    stop,
  };
}
