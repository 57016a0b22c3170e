/**
 * The two tenants of the noisy-neighbour benchmark (noisy-neighbour.ts) and
 * what each deploys: `gust dev` as a process of its own with a victim and a
 * noisy tenant, the victim's cheap handlers, and the noisy tenant's
 * spinners — a Node.js handler that busy-loops, and a bash custom runtime
 * whose handler also double-forks a background spinner out of its session
 * (`setsid`), the way a hostile tenant escapes its runtime's process.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zipFiles } from "@gust/bundle";
import { spawnGust } from "@gust/cli";
import { invokePath, type GustEndpoint } from "./handlers.js";
import { signedHeaders, type Credential } from "./signing.js";

/** Written into every escaped spinner's command line, so the benchmark can find them in /proc. */
export const SPINNER_MARKER = "gust-noisy-spinner";

export const VICTIM_HANDLERS = {
  noop: "export const handler = async () => ({ ok: true });\n",
  // 10 ms of the sandbox's own CPU time, not of the wall clock: with less of a core it takes
  // longer, as a real computation would.
  cpu10:
    "export const handler = async () => {\n" +
    "  const start = process.cpuUsage();\n" +
    "  for (;;) {\n" +
    "    const used = process.cpuUsage(start);\n" +
    "    if (used.user + used.system >= 10_000) break;\n" +
    "  }\n" +
    "  return { ok: true };\n" +
    "};\n",
} as const;
export type VictimHandler = keyof typeof VICTIM_HANDLERS;
export const VICTIM_HANDLER_NAMES = Object.keys(VICTIM_HANDLERS) as VictimHandler[];

/** Spins for `event.spinMs` of wall-clock time; answers how much CPU it got meanwhile. */
const NODE_SPINNER =
  "export const handler = async (event) => {\n" +
  "  const start = Date.now();\n" +
  "  const cpu = process.cpuUsage();\n" +
  "  const end = start + event.spinMs;\n" +
  "  while (Date.now() < end) {}\n" +
  "  const used = process.cpuUsage(cpu);\n" +
  "  return { wallMs: Date.now() - start, cpuMs: (used.user + used.system) / 1000 };\n" +
  "};\n";

/**
 * AWS's custom-runtime tutorial bootstrap (bash, curl), with the event's
 * `spinMs` passed to the handler. Amazon Linux's /bin/sh is bash; Debian's is
 * dash, hence #!/bin/bash.
 */
const BASH_BOOTSTRAP = `#!/bin/bash
set -uo pipefail
source "$LAMBDA_TASK_ROOT/function.sh"
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -LD "$HEADERS" "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  rm -f "$HEADERS"
  SPIN_MS=$(printf '%s' "$EVENT" | sed -e 's/.*"spinMs":\\([0-9]*\\).*/\\1/')
  RESPONSE=$(handler "$SPIN_MS")
  curl -sS "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "$RESPONSE" >/dev/null
done
`;

/**
 * Double-forks a spinner into a session of its own (the subshell exits, so
 * the spinner is nobody's child in the runtime's tree), then spins itself;
 * both until the same moment, so that nothing outlives the phase. Bash 5's
 * EPOCHREALTIME keeps the loops free of forks. `times` reports the CPU time
 * of the shell running the handler (not the escaped spinner's).
 */
const BASH_ESCAPING_SPINNER = `spin_until () { while (( \${EPOCHREALTIME/./} < $1 )); do :; done; }
handler () {
  local start=\${EPOCHREALTIME/./}
  local end=$(( start + $1 * 1000 ))
  (setsid bash -c "while (( \\\${EPOCHREALTIME/./} < $end )); do :; done # ${SPINNER_MARKER}" >/dev/null 2>&1 </dev/null &)
  spin_until "$end"
  # times must run in this shell: a command substitution would report its own subshell.
  local times_file cpu
  times_file=$(mktemp)
  times >"$times_file"
  cpu=$(head -1 "$times_file" | sed -e 's/[ms]/ /g' | awk '{ printf "%d", ($1 * 60 + $2 + $3 * 60 + $4) * 1000 }')
  rm -f "$times_file"
  printf '{"wallMs":%d,"cpuMs":%d}' $(( (\${EPOCHREALTIME/./} - start) / 1000 )) "$cpu"
}
`;

export const NOISY_KINDS = ["node", "bash-escape"] as const;
export type NoisyKind = (typeof NOISY_KINDS)[number];

export interface FunctionSpec {
  name: string;
  runtime: "nodejs20.x" | "provided.al2023";
  handler: string;
  files: Array<{ path: string; data: string; mode?: number }>;
  timeoutSeconds: number;
  memoryMb: number;
}

export function victimFunction(name: VictimHandler, memoryMb: number): FunctionSpec {
  return {
    name,
    memoryMb,
    runtime: "nodejs20.x",
    handler: "index.handler",
    files: [{ path: "index.mjs", data: VICTIM_HANDLERS[name] }],
    timeoutSeconds: 30,
  };
}

export function noisyFunction(kind: NoisyKind, spinMs: number, memoryMb: number): FunctionSpec {
  const timeoutSeconds = Math.ceil(spinMs / 1000) + 10;
  return kind === "node"
    ? {
        name: "spin-node",
        memoryMb,
        runtime: "nodejs20.x",
        handler: "index.handler",
        files: [{ path: "index.mjs", data: NODE_SPINNER }],
        timeoutSeconds,
      }
    : {
        name: "spin-bash-escape",
        memoryMb,
        runtime: "provided.al2023",
        handler: "function.handler",
        files: [
          { path: "bootstrap", data: BASH_BOOTSTRAP, mode: 0o755 },
          { path: "function.sh", data: BASH_ESCAPING_SPINNER },
        ],
        timeoutSeconds,
      };
}

export async function createFunction(endpoint: GustEndpoint, spec: FunctionSpec): Promise<void> {
  const zip = await zipFiles(spec.files);
  const body = new TextEncoder().encode(
    JSON.stringify({
      FunctionName: spec.name,
      Runtime: spec.runtime,
      Handler: spec.handler,
      Role: "arn:aws:iam::000000000000:role/bench",
      Timeout: spec.timeoutSeconds,
      MemorySize: spec.memoryMb,
      Code: { ZipFile: Buffer.from(zip).toString("base64") },
    }),
  );
  const path = "/2015-03-31/functions";
  const headers = await signedHeaders(endpoint.url, "POST", path, body, endpoint.credential);
  const response = await fetch(endpoint.url + path, { method: "POST", headers, body });
  if (response.status !== 201) {
    throw new Error(`CreateFunction ${spec.name}: ${response.status} ${await response.text()}`);
  }
}

/** One synchronous invocation; throws on a platform or function error. */
export async function invokeJson(
  endpoint: GustEndpoint,
  name: string,
  event: object,
): Promise<unknown> {
  const payload = new TextEncoder().encode(JSON.stringify(event));
  const path = invokePath(name);
  const headers = await signedHeaders(endpoint.url, "POST", path, payload, endpoint.credential);
  const response = await fetch(endpoint.url + path, { method: "POST", headers, body: payload });
  const text = await response.text();
  if (response.status !== 200 || response.headers.get("x-amz-function-error")) {
    throw new Error(`invoke ${name}: ${response.status} ${text}`);
  }
  return JSON.parse(text) as unknown;
}

/** What the worker said about isolating sandboxes when it started. */
export interface IsolationReport {
  level: string;
  cgroupVersion?: number;
  reason?: string;
}

export interface TwoTenantDev {
  url: string;
  pid: number;
  victim: GustEndpoint;
  noisy: GustEndpoint;
  isolation: IsolationReport;
  stop(): Promise<void>;
}

function credential(): Credential {
  return {
    accessKeyId: `GKBENCH${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
  };
}

function isolationRecord(output: string): IsolationReport | undefined {
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (typeof record["isolation"] !== "string") continue;
      return {
        level: record["isolation"],
        ...(typeof record["cgroupVersion"] === "number"
          ? { cgroupVersion: record["cgroupVersion"] }
          : {}),
        ...(typeof record["reason"] === "string" ? { reason: record["reason"] } : {}),
      };
    } catch {
      // Not a log record.
    }
  }
  return undefined;
}

/**
 * `gust dev` with two tenants, as its own process (so the benchmark's load
 * generator never shares its event loop), `--no-jail` when `jail` is false.
 * Logs at info: the worker's isolation line is an info record, and nothing
 * is logged per invocation at that level.
 */
export async function startTwoTenantDev(options: {
  jail: boolean;
  pool: number;
  maxSandboxes: number;
  extraArgs?: string[];
}): Promise<TwoTenantDev> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-noisy-"));
  const victim = credential();
  const noisy = credential();
  const tenantsFile = join(dir, "tenants.json");
  await writeFile(
    tenantsFile,
    JSON.stringify({
      tenants: [
        { id: "victim", maxConcurrency: 1000, credentials: [victim] },
        { id: "noisy", maxConcurrency: 1000, credentials: [noisy] },
      ],
    }),
    { mode: 0o600 },
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
      ...(options.jail ? [] : ["--no-jail"]),
      ...(options.extraArgs ?? []),
    ],
    { GUST_LOG_LEVEL: "info" },
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
    const isolation = isolationRecord(dev.output()) ?? { level: "unknown (not logged)" };
    return {
      url,
      pid: dev.child.pid ?? 0,
      victim: { name: "victim", url, credential: victim },
      noisy: { name: "noisy", url, credential: noisy },
      isolation,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
