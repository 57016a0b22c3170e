/**
 * `npm run bench:fleet`: fleet-wide adaptive concurrency, measured on a real
 * fleet. One nats-server, the coordinator, two workers and three frontends,
 * each its own process; one tenant with M = 100 (small enough for 2 cores);
 * Poisson arrivals at 90% of M split 80/15/5 over the three frontends (no
 * load balancer: the split is the point); a handler that sleeps a fixed time
 * and returns when it started and ended.
 *
 * Reported: the peak of handlers running at once fleet-wide against M and T,
 * throttles while the fleet ran fewer than M (false throttles), the total
 * throttle fraction, the gossip's bytes per second against the invocations'
 * through NATS; and, beside them, the simulator's `reference-100` (the same
 * setup with 100 ms executions), run from here.
 *
 * Executions last 2 s, not the model's 100 ms: Erlang's loss depends only
 * on the offered load, and 45 invocations/s leave the 2 cores to the fleet
 * rather than to per-invocation overhead (at 900/s they would saturate).
 * The report also gives the queueing model's figures at the load the fleet
 * really carried (arrival rate × measured holding time).
 *
 * Options (environment): BENCH_SLEEP_MS (2000), BENCH_FLEET_DURATION_MS
 * (90000), BENCH_WARMUP_MS (15000), BENCH_MAX_CONCURRENCY (100).
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connectNatsInfrastructure, startNatsServer, type BusMessage } from "@gust/bus";
import { zipFiles } from "@gust/bundle";
import { GUST_MAIN, spawnGust, type GustProcess } from "@gust/cli";
import { bestPartition, erlangB } from "./fleet-bench-erlang.js";
import { LoanObserver } from "./fleet-bench-loans.js";
import { peakConcurrency, runningAt, runOpenLoop, type Outcome } from "./fleet-bench-load.js";
import {
  runSimulator,
  simulatedLoansPerRequest,
  simulateSameSetup,
  windowNoise,
} from "./fleet-bench-sim.js";
import { signedHeaders, type Credential } from "./signing.js";

const SLEEP_MS = Number(process.env["BENCH_SLEEP_MS"] ?? 2000);
const DURATION_MS = Number(process.env["BENCH_FLEET_DURATION_MS"] ?? 90_000);
const WARMUP_MS = Number(process.env["BENCH_WARMUP_MS"] ?? 15_000);
const M = Number(process.env["BENCH_MAX_CONCURRENCY"] ?? 100);
const WEIGHTS = [0.8, 0.15, 0.05];
const LOAD = 0.9;
const ADMIN_TOKEN = randomBytes(24).toString("base64url");
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const INVOKE_PATH = "/2015-03-31/functions/sleeper/invocations";

const HANDLER = `
exports.handler = async (event) => {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  return { start, end: Date.now() };
};
`;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Bytes of one NATS message on the wire, near enough: subject, headers, payload, protocol line. */
function wireBytes(message: BusMessage): number {
  let headers = 0;
  for (const [key, value] of Object.entries(message.headers))
    headers += key.length + value.length + 4;
  return message.subject.length + message.data.byteLength + (headers > 0 ? headers + 12 : 0) + 30;
}

interface AdminSample {
  at: number;
  limit: number;
  shares: number[];
  fleetInflight: number;
  mode: string;
}

async function sampleAdmin(url: string): Promise<AdminSample | undefined> {
  try {
    const response = await fetch(`${url}/gust/admin/concurrency?tenant=bench`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const report = (await response.json()) as {
      mode: string;
      tenants: Array<{
        unreserved: {
          limit: number;
          fleetInflight: number;
          frontends: Array<{ frontendId: string; share: number }>;
        };
      }>;
    };
    const pool = report.tenants[0]?.unreserved;
    if (!pool) return undefined;
    const byName = (prefix: string) =>
      pool.frontends.find((f) => f.frontendId.startsWith(`${prefix}-`))?.share ?? 0;
    return {
      at: Date.now(),
      limit: pool.limit,
      shares: ["fe1", "fe2", "fe3"].map(byName),
      fleetInflight: pool.fleetInflight,
      mode: report.mode,
    };
  } catch {
    return undefined;
  }
}

const pct = (part: number, whole: number) =>
  whole === 0 ? "–" : `${((100 * part) / whole).toFixed(2)}%`;
const mean = (values: number[]) =>
  values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gust-bench-fleet-"));
  const credential: Credential = {
    accessKeyId: `GKBENCH${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString("base64url"),
  };
  const tenantsFile = join(dir, "tenants.json");
  await writeFile(
    tenantsFile,
    JSON.stringify({ tenants: [{ id: "bench", maxConcurrency: M, credentials: [credential] }] }),
    { mode: 0o600 },
  );
  // The tenant key, for the coordinator and the frontends (not the workers).
  const tenantKeyFile = join(dir, "tenant.key");
  await promisify(execFile)(process.execPath, [GUST_MAIN, "tenant-key", "--out", tenantKeyFile]);
  const nats = await startNatsServer({ jetstream: true });
  const processes: GustProcess[] = [];
  process.once("exit", () => {
    for (const child of processes) child.child.kill("SIGKILL");
  });
  const env = { GUST_LOG_LEVEL: "info", GUST_ADMIN_TOKEN: ADMIN_TOKEN };
  const observer = await connectNatsInfrastructure({ servers: nats.url, name: "bench-observer" });
  try {
    const coordinator = spawnGust(
      [
        "coordinator",
        "--nats",
        nats.url,
        "--tenants",
        tenantsFile,
        "--tenant-key-file",
        tenantKeyFile,
      ],
      env,
    );
    processes.push(coordinator);
    await coordinator.waitForLog("coordinator started", 60_000);
    for (const id of ["w1", "w2"]) {
      const worker = spawnGust(
        ["worker", "--nats", nats.url, "--id", id, "--max-sandboxes", "80", "--pool", "4"],
        env,
      );
      processes.push(worker);
      await worker.waitForLog("worker started", 60_000);
    }
    const urls: string[] = [];
    for (const id of ["fe1", "fe2", "fe3"]) {
      const frontend = spawnGust(
        [
          "frontend",
          "--nats",
          nats.url,
          "--tenant-key-file",
          tenantKeyFile,
          "--id",
          id,
          "--host",
          "127.0.0.1",
          "--port",
          "0",
        ],
        env,
      );
      processes.push(frontend);
      urls.push(String((await frontend.waitForLog("frontend listening", 60_000))["url"]));
    }

    const zip = await zipFiles([{ path: "index.js", data: HANDLER }]);
    const create = new TextEncoder().encode(
      JSON.stringify({
        FunctionName: "sleeper",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/bench",
        Timeout: 30,
        Code: { ZipFile: Buffer.from(zip).toString("base64") },
      }),
    );
    const createPath = "/2015-03-31/functions";
    const created = await fetch(urls[0] + createPath, {
      method: "POST",
      headers: await signedHeaders(urls[0]!, "POST", createPath, create, credential),
      body: create,
    });
    if (created.status !== 201) throw new Error(`CreateFunction: ${await created.text()}`);

    const body = new TextEncoder().encode(JSON.stringify({ sleepMs: SLEEP_MS }));
    const targets = await Promise.all(
      urls.map(async (url, i) => ({
        url,
        weight: WEIGHTS[i]!,
        headers: await signedHeaders(url, "POST", INVOKE_PATH, body, credential),
      })),
    );
    const rate = (LOAD * M * 1000) / SLEEP_MS;
    log(`warming up: ${WARMUP_MS} ms at ${rate.toFixed(0)}/s`);
    await runOpenLoop({ targets, path: INVOKE_PATH, body, rate, durationMs: WARMUP_MS });

    // What crosses NATS while measuring.
    const traffic = {
      gossip: 0,
      gossipMessages: 0,
      loans: 0,
      loanMessages: 0,
      invoke: 0,
      replies: 0,
    };
    const loans = new LoanObserver();
    const subscriptions = [
      observer.bus.subscribe("gust.v1.gossip.demand", (m) => {
        traffic.gossip += wireBytes(m);
        traffic.gossipMessages++;
      }),
      observer.bus.subscribe("gust.v1.gossip.loan.*", (m) => {
        traffic.loans += wireBytes(m);
        traffic.loanMessages++;
        loans.observe(m.subject, m.data, performance.now());
      }),
      observer.bus.subscribe("gust.v1.invoke.*", (m) => void (traffic.invoke += wireBytes(m))),
      observer.bus.subscribe("_INBOX.>", (m) => void (traffic.replies += wireBytes(m))),
    ];
    const samples: AdminSample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const sample = await sampleAdmin(urls[0]!);
        if (sample) samples.push(sample);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    log(`measuring: ${DURATION_MS} ms`);
    const loadBefore = loadavg()[0] ?? 0;
    const began = Date.now();
    const outcomes = await runOpenLoop({
      targets,
      path: INVOKE_PATH,
      body,
      rate,
      durationMs: DURATION_MS,
    });
    const measuredMs = Date.now() - began;
    sampling = false;
    await sampler;
    for (const subscription of subscriptions) subscription.unsubscribe();

    const report = analyse(
      outcomes,
      samples,
      traffic,
      measuredMs,
      rate,
      await simulatedLoansPerRequest(),
      loans,
    );
    const loadAfter = loadavg()[0] ?? 0;
    log("running the simulator: this setup, then reference-100");
    // The simulator on the load the fleet carried: each slot held for the
    // measured time (between the handler's run and the client's round trip),
    // loans delayed by half their measured round trip.
    const held = holdingMs(outcomes);
    const carried = {
      executionMs: held,
      erlangs: (outcomes.length / (DURATION_MS / 1000)) * (held / 1000),
      loanDelayMs: Math.max(1, loans.medianRoundTripMs() / 2),
    };
    const sameSetup = await simulateSameSetup(carried);
    const noise = await windowNoise(carried, DURATION_MS, 30);
    const simulator = await runSimulator(REPO);
    const text = [
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      `Date: ${new Date().toISOString()}. Command: npm run bench:fleet (BENCH_SLEEP_MS=${SLEEP_MS}, ` +
        `BENCH_FLEET_DURATION_MS=${DURATION_MS}, BENCH_WARMUP_MS=${WARMUP_MS}, BENCH_MAX_CONCURRENCY=${M}).`,
      `Load average (1 min) when measuring began / ended: ${loadBefore.toFixed(1)} / ${loadAfter.toFixed(1)}.`,
      "",
      report,
      "",
      `The simulator's throttle fraction over windows as long as this measurement (${DURATION_MS / 1000} s), ` +
        `30 seeds, same load: ${noise}: what one run of this benchmark may show by chance alone.`,
      "",
      "Simulator, the same setup at the load the fleet carried (600 s, seed 1):",
      "",
      "```",
      sameSetup.trim(),
      "```",
      "",
      "Simulator, the issue's reference (100 ms executions; `npm run sim -- reference-100 --duration 60`):",
      "",
      "```",
      simulator.trim(),
      "```",
    ].join("\n");
    process.stdout.write(`${text}\n`);
    const out = fileURLToPath(new URL("../out/", import.meta.url));
    await mkdir(out, { recursive: true });
    await writeFile(
      `${out}fleet-${new Date().toISOString().replace(/[:.]/g, "-")}.md`,
      `${text}\n`,
    );
  } finally {
    await observer.close().catch(() => undefined);
    for (const child of processes.reverse()) await child.stop();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Mean time a slot was held: midway between the handler's run and the client's round trip. */
function holdingMs(outcomes: Outcome[]): number {
  const ok = outcomes.filter((o) => o.status === 200 && o.ran);
  const run = mean(ok.map((o) => o.ran![1] - o.ran![0]));
  const trip = mean(ok.map((o) => o.answeredAt - o.sentAt));
  return (run + trip) / 2;
}

function analyse(
  outcomes: Outcome[],
  samples: AdminSample[],
  traffic: {
    gossip: number;
    gossipMessages: number;
    loans: number;
    loanMessages: number;
    invoke: number;
    replies: number;
  },
  measuredMs: number,
  rate: number,
  /** Loan messages per request at 100 ms executions (the simulator's reference-100). */
  referenceLoansPerRequest: number,
  loans: LoanObserver,
): string {
  const ran = outcomes.filter((o) => o.status === 200 && o.ran).map((o) => o.ran!);
  const throttled = outcomes.filter((o) => o.status === 429);
  const failed = outcomes.filter((o) => o.status !== 200 && o.status !== 429);
  const peak = peakConcurrency(ran);
  // A throttle is false when the fleet ran fewer than M at the middle of its
  // round trip. A slot is held a little longer than its handler runs (the
  // trip to the worker and back), and a little shorter than the client's
  // round trip, so the two clocks bound the figure from above and below.
  const middles = throttled.map((o) => (o.sentAt + o.answeredAt) / 2).sort((a, b) => a - b);
  const roundTrips = outcomes
    .filter((o) => o.status === 200)
    .map((o): [number, number] => [o.sentAt, o.answeredAt]);
  const falseAtMost = runningAt(ran, middles).filter((n) => n < M).length;
  const falseAtLeast = runningAt(roundTrips, middles).filter((n) => n < M).length;
  const limits = samples.map((s) => s.limit);
  const seconds = measuredMs / 1000;
  const gossipPerSec = (traffic.gossip + traffic.loans) / seconds;
  const invokePerSec = (traffic.invoke + traffic.replies) / seconds;
  const perInvocation = (traffic.invoke + traffic.replies) / Math.max(1, ran.length);
  // Reports cost the same at any rate (one tenant). Loans depend on how
  // executions compare with the gossip interval, so at 1,000/s they are
  // projected from the simulator's 100 ms reference, at the bytes a loan
  // message measured here takes on the wire.
  const ranPerSec = ran.length / seconds;
  const bytesPerLoan = traffic.loans / Math.max(1, traffic.loanMessages);
  const loansAt1000 = 1000 * referenceLoansPerRequest * bytesPerLoan;
  const gossipAt1000 = traffic.gossip / seconds + loansAt1000;
  const byFrontend = [0, 1, 2].map((f) => {
    const sent = outcomes.filter((o) => o.frontend === f);
    return `${pct(sent.filter((o) => o.status === 429).length, sent.length)}`;
  });
  const meanShares = [0, 1, 2].map((f) => mean(samples.map((s) => s.shares[f] ?? 0)).toFixed(1));
  // Offered load at the holding time measured: at least the handler's run, at most the round trip.
  const arrivalRate = outcomes.length / (DURATION_MS / 1000);
  const erlangs = [
    arrivalRate * mean(ran.map(([s, e]) => (e - s) / 1000)),
    arrivalRate * mean(roundTrips.map(([s, e]) => (e - s) / 1000)),
  ];
  const model = (loss: (e: number) => number) =>
    erlangs.map((e) => `${(100 * loss(e)).toFixed(2)}%`).join("–");
  const staticSlots = [0, 1, 2].map((i) => Math.floor(M / 3) + (i < M % 3 ? 1 : 0));
  const staticLoss = (e: number) =>
    WEIGHTS.reduce((sum, w, i) => sum + w * erlangB(w * e, staticSlots[i]!), 0);
  const lines = [
    `| figure | measured |`,
    `|---|---:|`,
    `| requests (Poisson, ${rate.toFixed(0)}/s offered, 80/15/5) | ${outcomes.length} |`,
    `| ran / throttled (429) / other errors | ${ran.length} / ${throttled.length} / ${failed.length} |`,
    `| total throttle fraction | ${pct(throttled.length, outcomes.length)} |`,
    `| offered load (arrival rate × holding time: handler run – round trip) | ${erlangs.map((e) => e.toFixed(1)).join("–")} Erlangs (nominal ${(LOAD * M).toFixed(0)}) |`,
    `| queueing model at that load: central counter / best fixed partition / static M/3 | ${model((e) => erlangB(e, M))} / ${model(
      (e) =>
        bestPartition(
          WEIGHTS.map((w) => w * e),
          M,
        ).loss,
    )} / ${model(staticLoss)} |`,
    `| throttled on fe1 / fe2 / fe3 | ${byFrontend.join(" / ")} |`,
    `| false throttles (fewer than M running), of requests | ${pct(falseAtLeast, outcomes.length)} (client clock) – ${pct(falseAtMost, outcomes.length)} (handler clock) |`,
    `| peak handlers running fleet-wide | ${peak} (M = ${M}) |`,
    `| T seen by fe1 (min–max) | ${Math.min(...limits)}–${Math.max(...limits)} |`,
    `| peak over M / over T | ${peak - M} / ${peak - Math.max(...limits)} |`,
    `| mean shares fe1 / fe2 / fe3 (fe1's view) | ${meanShares.join(" / ")} |`,
    `| gossip reports through NATS | ${(traffic.gossip / seconds / 1000).toFixed(1)} KB/s (${(traffic.gossipMessages / seconds).toFixed(0)} reports/s) |`,
    `| loan messages through NATS | ${(traffic.loans / seconds / 1000).toFixed(1)} KB/s (${(traffic.loanMessages / seconds).toFixed(0)} messages/s, ${bytesPerLoan.toFixed(0)} B each, ${(traffic.loanMessages / Math.max(1, outcomes.length)).toFixed(2)} per request) |`,
    `| loan requests / granted / returns; grant round trip p50 / p99 / max | ${loans.requests} / ${loans.grants} / ${loans.returns}; ${loans.roundTrip()} |`,
    `| invocations through NATS (requests + replies) | ${(invokePerSec / 1000).toFixed(1)} KB/s (${perInvocation.toFixed(0)} B per invocation, ${ranPerSec.toFixed(0)}/s) |`,
    `| reports ÷ invocation bytes, measured | ${pct(traffic.gossip / seconds, invokePerSec)} |`,
    `| reports + loans ÷ invocation bytes, measured | ${pct(gossipPerSec, invokePerSec)} |`,
    `| reports ÷ invocation bytes at 1,000 invocations/s | ${pct(traffic.gossip / seconds, perInvocation * 1000)} |`,
    `| reports + loans ÷ invocation bytes at 1,000 invocations/s of 100 ms executions, M = 100 (90% busy; ${referenceLoansPerRequest.toFixed(3)} loan messages per request in the simulator) | ${pct(gossipAt1000, perInvocation * 1000)} |`,
  ];
  if (failed.length > 0) {
    lines.push("", `Other errors: ${[...new Set(failed.map((o) => o.status))].join(", ")}`);
  }
  return lines.join("\n");
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
