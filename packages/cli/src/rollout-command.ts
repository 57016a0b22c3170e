/**
 * `gust rollout …`: an operator's runtime upgrade, through a frontend's
 * admin API (`/gust/admin/runtimes/{runtime}/rollout`, bearer token
 * GUST_ADMIN_TOKEN). The coordinator runs the rollout from its record in KV.
 *
 *   gust rollout start RUNTIME VERSION [--fraction 0.1] [--min-samples 50] [--failure-budget 500]
 *   gust rollout pause|resume|abort RUNTIME
 *   gust rollout retest RUNTIME TENANT/FUNCTION
 *   gust rollout status RUNTIME [--watch]
 *   gust rollout safe FUNCTION [--off]
 *
 * `safe` is the function owner's, not the operator's: it is signed with the
 * tenant's own credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and
 * sets the function's rollout setting SafeToRepeat
 * (`PUT /gust/2015-03-31/functions/{name}/rollout-settings`).
 */
import { parseArgs } from "node:util";

import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import {
  DEFAULT_ROLLOUT_FAILURE_BUDGET,
  DEFAULT_ROLLOUT_FRACTION,
  DEFAULT_ROLLOUT_MIN_SAMPLES,
  RUNTIME_ADMIN_PATH,
} from "@gust/frontend";
import { ConfigError, GustError } from "@gust/protocol";
import { failuresOf, totalOf, type FunctionProgress, type RolloutRecord } from "@gust/registry";
import { credentials, DEFAULT_ENDPOINT } from "./client.js";
import { adminCall, type AdminEndpoint } from "./admin-client.js";
import { textTable } from "./text-table.js";

export const ROLLOUT_USAGE = `Usage: gust rollout <start|pause|resume|abort|retest|status> RUNTIME [options]
       gust rollout safe FUNCTION [--off]

  start RUNTIME VERSION       run a share of every Auto function's invocations on VERSION,
                              judge each function, move the compatible ones to VERSION and
                              pin the others to the current default
      --fraction F            share of invocations on VERSION (default ${DEFAULT_ROLLOUT_FRACTION})
      --min-samples N         invocations on each version before a function is judged
                              (default ${DEFAULT_ROLLOUT_MIN_SAMPLES})
      --failure-budget N      new-version crashes, init errors and timeouts over all
                              functions that halt the rollout (default ${DEFAULT_ROLLOUT_FAILURE_BUDGET})
  pause RUNTIME               every invocation back on the old version, verdicts kept
  resume RUNTIME              carry on (also after the rollout halted itself)
  abort RUNTIME               end it: every function back on the old version
  retest RUNTIME TENANT/NAME  forget a function's verdict (after its code was fixed),
                              unpin it, and judge it again
  status RUNTIME [--watch]    per-function counts and verdicts (--watch: refresh every second)
  safe FUNCTION [--off]       mark your function safe to run twice on one payload (--off: not):
                              rollouts then run its share on the new version as a shadow and
                              always answer callers from the old one (signed with your
                              AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not the admin token)

  --endpoint URL (else $GUST_ENDPOINT, else ${DEFAULT_ENDPOINT})
  The frontend's admin token is read from $GUST_ADMIN_TOKEN.
`;

const OPTIONS = {
  endpoint: { type: "string" },
  fraction: { type: "string" },
  "min-samples": { type: "string" },
  "failure-budget": { type: "string" },
  watch: { type: "boolean" },
  off: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const REQUEST_TIMEOUT_MS = 10_000;
const WATCH_INTERVAL_MS = 1000;

type Admin = AdminEndpoint;

function call<T>(admin: Admin, method: string, path: string, body?: unknown): Promise<T> {
  return adminCall<T>(admin, "rollout-admin", method, path, body);
}

function side(counts: FunctionProgress["old"]["counts"]): string {
  return `${totalOf(counts) - failuresOf(counts)}/${totalOf(counts)} ok`;
}

function verdictText(progress: FunctionProgress, minSamples: number): [string, string] {
  const verdict = progress.verdict;
  if (verdict !== undefined) {
    const sample = progress.new.sampleError;
    const why =
      verdict.verdict === "incompatible" && sample !== undefined
        ? `${verdict.reason}; e.g. ${sample.errorType}: ${sample.errorMessage}`
        : verdict.reason;
    return [verdict.verdict, why];
  }
  const needNew = Math.max(0, minSamples - totalOf(progress.new.counts));
  const needOld = Math.max(0, minSamples - totalOf(progress.old.counts));
  const needs = [
    needNew > 0 ? `${needNew} more on the new version` : "",
    needOld > 0 ? `${needOld} more on the old` : "",
  ].filter((part) => part !== "");
  return [
    "pending",
    needs.length === 0 ? "judging" : `too little traffic yet: ${needs.join(", ")}`,
  ];
}

/** The status table of one rollout. */
export function formatRollout(rollout: RolloutRecord): string {
  const header =
    `${rollout.runtime} ${rollout.fromVersion} → ${rollout.toVersion}: ${rollout.state}` +
    `${rollout.stateReason === undefined ? "" : ` (${rollout.stateReason})`}\n` +
    `fraction ${rollout.fraction}, min samples ${rollout.minSamples}, failure budget ${rollout.failureBudget}\n`;
  const functions = Object.entries(rollout.functions).sort(([a], [b]) => a.localeCompare(b));
  if (functions.length === 0) return `${header}no invocations of Auto functions counted yet\n`;
  const rows = [
    ["FUNCTION", `OLD ${rollout.fromVersion}`, `NEW ${rollout.toVersion}`, "VERDICT", "WHY"],
  ];
  const tally = { compatible: 0, incompatible: 0, pending: 0 };
  for (const [key, progress] of functions) {
    const [verdict, why] = verdictText(progress, rollout.minSamples);
    tally[verdict as keyof typeof tally] += 1;
    rows.push([key, side(progress.old.counts), side(progress.new.counts), verdict, why]);
  }
  return `${header}${textTable(rows)}\n${tally.compatible} compatible, ${tally.incompatible} incompatible, ${tally.pending} pending\n`;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer`);
  return n;
}

export interface RolloutCommandIo {
  /** Where --watch prints each refresh. @default process.stdout */
  write?: (text: string) => void;
  /** Ends --watch. @default SIGINT */
  signal?: AbortSignal;
}

/** Runs `gust rollout …` with the arguments after `rollout`; returns what to print last. */
export async function runRolloutCommand(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  io: RolloutCommandIo = {},
): Promise<string> {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true });
  const [action, runtime, arg, ...extra] = positionals;
  if (action === undefined || values.help) return ROLLOUT_USAGE;
  if (action === "safe") {
    if (runtime === undefined || arg !== undefined || extra.length > 0) {
      throw new ConfigError("usage: gust rollout safe FUNCTION [--off]");
    }
    const endpoint = values.endpoint ?? env["GUST_ENDPOINT"] ?? DEFAULT_ENDPOINT;
    const settings = await putRolloutSettings(endpoint, env, runtime, values.off !== true);
    return `${settings.FunctionName}: ${settings.SafeToRepeat ? "safe to repeat (rollouts shadow it)" : "not safe to repeat"}\n`;
  }
  if (runtime === undefined) throw new ConfigError(`gust rollout ${action} needs a RUNTIME`);
  const token = env["GUST_ADMIN_TOKEN"];
  if (token === undefined || token === "") {
    throw new ConfigError("gust rollout needs the frontend's admin token in $GUST_ADMIN_TOKEN");
  }
  const admin: Admin = {
    endpoint: values.endpoint ?? env["GUST_ENDPOINT"] ?? DEFAULT_ENDPOINT,
    token,
  };
  const path = `${RUNTIME_ADMIN_PATH}/${encodeURIComponent(runtime)}/rollout`;
  if (extra.length > 0) throw new ConfigError(`too many arguments\n\n${ROLLOUT_USAGE}`);
  switch (action) {
    case "start": {
      if (arg === undefined) throw new ConfigError("usage: gust rollout start RUNTIME VERSION");
      const fraction = values.fraction === undefined ? undefined : Number(values.fraction);
      if (fraction !== undefined && !(fraction > 0 && fraction <= 1)) {
        throw new ConfigError("--fraction must be a number in (0, 1]");
      }
      const minSamples = positiveInt(values["min-samples"], "--min-samples");
      const failureBudget = positiveInt(values["failure-budget"], "--failure-budget");
      const started = await call<RolloutRecord>(admin, "POST", path, {
        version: arg,
        ...(fraction === undefined ? {} : { fraction }),
        ...(minSamples === undefined ? {} : { minSamples }),
        ...(failureBudget === undefined ? {} : { failureBudget }),
      });
      return `rollout of ${started.runtime} ${started.fromVersion} → ${started.toVersion} started (fraction ${started.fraction}, min samples ${started.minSamples})\n`;
    }
    case "pause":
    case "resume":
    case "abort": {
      if (arg !== undefined) throw new ConfigError(`usage: gust rollout ${action} RUNTIME`);
      const record = await call<RolloutRecord>(admin, "POST", `${path}/${action}`);
      return `rollout of ${record.runtime} to ${record.toVersion}: ${record.state}\n`;
    }
    case "retest": {
      if (arg === undefined)
        throw new ConfigError("usage: gust rollout retest RUNTIME TENANT/NAME");
      await call<RolloutRecord>(admin, "POST", `${path}/retest`, { function: arg });
      return `${arg} will be judged again on ${runtime}\n`;
    }
    case "status": {
      if (arg !== undefined) throw new ConfigError("usage: gust rollout status RUNTIME [--watch]");
      if (!values.watch) return formatRollout(await call<RolloutRecord>(admin, "GET", path));
      return watch(admin, path, io);
    }
    default:
      throw new ConfigError(`unknown rollout action ${action}\n\n${ROLLOUT_USAGE}`);
  }
}

/** The owner's PUT of a function's rollout settings, SigV4-signed as Lambda's API is. */
async function putRolloutSettings(
  endpoint: string,
  env: NodeJS.ProcessEnv,
  name: string,
  safe: boolean,
): Promise<{ FunctionName: string; SafeToRepeat: boolean }> {
  const url = new URL(
    `/gust/2015-03-31/functions/${encodeURIComponent(name)}/rollout-settings`,
    endpoint,
  );
  const body = JSON.stringify({ SafeToRepeat: safe });
  const signer = new SignatureV4({
    credentials: await credentials(),
    region: env["AWS_REGION"] ?? "us-east-1",
    service: "lambda",
    sha256: Sha256,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: "PUT",
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === "" ? {} : { port: Number(url.port) }),
      path: url.pathname,
      headers: { host: url.host, "content-type": "application/json" },
      body,
    }),
  );
  let response: Response;
  try {
    response = await fetch(url, {
      method: "PUT",
      headers: signed.headers,
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new GustError(`cannot reach ${endpoint}`, "rollout-settings", { cause: error });
  }
  const text = await response.text();
  if (!response.ok) {
    throw new GustError(`${endpoint} answered ${response.status}: ${text}`, "rollout-settings");
  }
  return JSON.parse(text) as { FunctionName: string; SafeToRepeat: boolean };
}

async function watch(admin: Admin, path: string, io: RolloutCommandIo): Promise<string> {
  const write = io.write ?? ((text: string) => void process.stdout.write(text));
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  if (io.signal === undefined) process.once("SIGINT", onSigint);
  const signal = io.signal ?? controller.signal;
  const clear = io.write === undefined && process.stdout.isTTY ? "\x1b[2J\x1b[H" : "";
  try {
    while (!signal.aborted) {
      const record = await call<RolloutRecord>(admin, "GET", path);
      write(`${clear}${new Date().toISOString()}\n${formatRollout(record)}\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, WATCH_INTERVAL_MS);
        signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  return "";
}
