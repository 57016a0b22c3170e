/**
 * `npm run bench`: invocation latency and throughput of Gust next to a bare
 * node:http echo (the ceiling) and serverless-offline (the popular local
 * emulator), then cold starts and scale-up. Progress on stderr; the report
 * (Markdown) on stdout and in bench/out/, with SVG latency charts, the
 * latest complete run's (every target and handler) also copied to
 * bench/charts/, which RESULTS.md links to.
 *
 * Throughput cells: a no-op handler and one that sleeps 10 ms (the echo
 * sleeps 10 ms too, for its ceiling), at each concurrency (closed loop:
 * that many clients, each sending when its answer arrives), against
 *   - node:http echo (bench/src/echo-server.ts),
 *   - a process relay (bench/src/relay-server.ts): node:http handing each
 *     request to a child process and back over pipes, the floor for running
 *     every invocation in a process of its own,
 *   - `gust dev`,
 *   - a Gust fleet through its load balancer (nats-server, coordinator,
 *     workers, frontends behind HAProxy, as `gust local-fleet` starts it),
 *     and the same fleet straight at one of its frontends (what HAProxy adds),
 *   - serverless-offline 13 (Serverless Framework 3), a fresh instance per
 *     cell because it slows down the longer it runs.
 * Cells run interleaved, round by round (target order rotating), so drift on
 * a shared machine hits every target alike; each figure is the median of the
 * rounds and is also given as a ratio to the echo measured in the same run.
 * Then: one longer serverless-offline run (req/s per 5 s window, RSS), cold
 * starts (first invocation with a pre-initialized vs a spawned sandbox) and
 * scale-up (time until N invocations of a new function run at once).
 *
 * `node bench/dist/invoke-bench.js --from bench/out/invoke-<date>.json`
 * renders a finished run's report and charts again, without measuring.
 *
 * Options (environment), defaults in parentheses; the defaults take about
 * 10 minutes on 2 cores:
 *   BENCH_ROUNDS (3)             interleaved rounds
 *   BENCH_DURATION_MS (3000)     measured time per cell
 *   BENCH_WARMUP_MS (500)        unmeasured load before each cell
 *   BENCH_CONCURRENCY (1,8,64)   client counts
 *   BENCH_TARGETS (echo,relay,dev,fleet,frontend,sls)  which targets (echo is the
 *                                baseline; frontend: the fleet straight at one frontend)
 *   BENCH_HANDLERS (noop,sleep10)
 *   BENCH_GENERATOR (autocannon) closed-loop generator: autocannon | node
 *   BENCH_GENERATOR_CHECK (1)    0 skips comparing both generators on the echo
 *   BENCH_FLEET_FRONTENDS (2), BENCH_FLEET_WORKERS (1)
 *   BENCH_SLS_WARMUP_MS (2000)   warm-up of each fresh serverless-offline
 *   BENCH_SLS_RUN_MS (90000), BENCH_SLS_RUN_CLIENTS (8)  the degradation run; 0 skips
 *   BENCH_COLD_SAMPLES (8)       cold starts per kind; 0 skips
 *   BENCH_SCALE_TRIALS (3), BENCH_SCALE_N (200), BENCH_SCALE_SLEEP_MS (10000)
 *                                scale-up trials (0 skips), invocations, handler sleep
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { coldStarts } from "./cold-start.js";
import { natsRoundTripMs } from "./nats-rtt.js";
import { envChoice, envGenerator, envInteger, envList } from "./config.js";
import {
  HANDLERS,
  HANDLER_NAMES,
  PAYLOAD,
  createFunction,
  invokeOnce,
  type HandlerName,
} from "./handlers.js";
import {
  renderInvokeReport,
  type InvokeBenchData,
  type InvokeBenchSettings,
  type TargetId,
} from "./invoke-report.js";
import { closedLoop, runLoad, type Generator, type LoadResult } from "./load.js";
import { loadLine, machineLine, rssMb } from "./proc.js";
import { Progress } from "./progress.js";
import { scaleUpTrial } from "./scale-up.js";
import { startServerlessOffline } from "./serverless-offline.js";
import {
  startDevTarget,
  startEcho,
  startRelay,
  startFleetTarget,
  type GustTarget,
  type Target,
} from "./targets.js";

const TARGET_IDS = ["echo", "relay", "dev", "fleet", "frontend", "sls"] as const;
const settings: InvokeBenchSettings = {
  rounds: envInteger("BENCH_ROUNDS", 3, 1),
  durationMs: envInteger("BENCH_DURATION_MS", 3000, 100),
  warmupMs: envInteger("BENCH_WARMUP_MS", 500, 0),
  concurrency: envList("BENCH_CONCURRENCY", [1, 8, 64]),
  targets: envChoice<TargetId>("BENCH_TARGETS", TARGET_IDS, TARGET_IDS),
  handlers: envChoice<HandlerName>("BENCH_HANDLERS", HANDLER_NAMES, HANDLER_NAMES),
  generator: envGenerator(),
  generatorCheck: envInteger("BENCH_GENERATOR_CHECK", 1) > 0,
  fleetFrontends: envInteger("BENCH_FLEET_FRONTENDS", 2, 1),
  fleetWorkers: envInteger("BENCH_FLEET_WORKERS", 1, 1),
  slsWarmupMs: envInteger("BENCH_SLS_WARMUP_MS", 2000),
  slsRunMs: envInteger("BENCH_SLS_RUN_MS", 90_000),
  slsRunClients: envInteger("BENCH_SLS_RUN_CLIENTS", 8, 1),
  coldSamples: envInteger("BENCH_COLD_SAMPLES", 8),
  scaleTrials: envInteger("BENCH_SCALE_TRIALS", 3),
  scaleN: envInteger("BENCH_SCALE_N", 200, 1),
  scaleSleepMs: envInteger("BENCH_SCALE_SLEEP_MS", 10_000),
};

/** Load on each Gust function before the rounds, at the widest concurrency, to start its sandboxes. */
const GUST_WARM_MS = 3000;
/** One live sandbox per concurrent invocation of each function, plus the pool. */
const POOL = 2;
const MAX_SANDBOXES = Math.max(...settings.concurrency) * settings.handlers.length + POOL + 6;

const cellKey = (handler: HandlerName, concurrency: number, target: TargetId) =>
  `${handler}@${concurrency}/${target}`;

async function measure(
  target: Target,
  handler: HandlerName,
  concurrency: number,
  warmupMs: number,
  generator: Generator = settings.generator,
  durationMs = settings.durationMs,
): Promise<LoadResult> {
  return closedLoop(await target.request(handler), {
    concurrency,
    warmupMs,
    durationMs,
    generator,
  });
}

const summary = (result: LoadResult) =>
  `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ` +
  `${Math.round(result.throughput)} req/s, ${result.errors} errors` +
  (result.errors > 0 ? ` ${JSON.stringify(result.errorsByStatus)}` : "");

async function measureAll(): Promise<InvokeBenchData> {
  const ids = settings.targets.includes("echo") ? settings.targets : ["echo", ...settings.targets];
  const targetIds = TARGET_IDS.filter((id) => ids.includes(id));
  const cellsPerRound = settings.handlers.length * settings.concurrency.length * targetIds.length;
  const progress = new Progress(
    (settings.generatorCheck ? 4 : 0) +
      1 +
      settings.rounds * (cellsPerRound + (targetIds.includes("fleet") ? 1 : 0)) +
      (targetIds.includes("sls") && settings.slsRunMs > 0 ? 1 : 0) +
      (settings.coldSamples > 0 ? 2 : 0) +
      settings.scaleTrials,
  );
  const data: InvokeBenchData = {
    machine: machineLine(),
    date: new Date().toISOString(),
    loadAtStart: loadLine(),
    loadAtEnd: "",
    settings,
    targetNames: {},
    targetIds,
    generatorCheck: [],
    cells: {},
  };

  const persistent = new Map<TargetId, Target>();
  const stopAll = async () => {
    for (const target of persistent.values()) await target.stop().catch(() => undefined);
    persistent.clear();
  };
  try {
    const echo = await startEcho();
    persistent.set("echo", echo);
    data.targetNames["echo"] = echo.name;
    if (settings.generatorCheck) {
      for (const concurrency of [1, Math.max(...settings.concurrency)]) {
        for (const generator of ["autocannon", "node"] as const) {
          progress.step(`generator check: ${generator} → echo, ${concurrency} clients`);
          const result = await measure(echo, "noop", concurrency, settings.warmupMs, generator);
          data.generatorCheck.push({ generator, concurrency, result });
          progress.note(`${generator} @${concurrency} on echo: ${summary(result)}`);
          progress.done();
        }
      }
    }

    progress.step("starting gust dev and the fleet, creating and warming functions");
    if (targetIds.includes("dev")) {
      persistent.set("dev", await startDevTarget({ pool: POOL, maxSandboxes: MAX_SANDBOXES }));
    }
    if (targetIds.includes("fleet") || targetIds.includes("frontend")) {
      const fleet = await startFleetTarget({
        pool: POOL,
        maxSandboxes: MAX_SANDBOXES,
        frontends: settings.fleetFrontends,
        workers: settings.fleetWorkers,
      });
      persistent.set("fleet", fleet);
      if (targetIds.includes("frontend") && fleet.direct !== undefined) {
        persistent.set("frontend", fleet.direct);
        data.targetNames["frontend"] = fleet.direct.name;
      }
    }
    for (const id of ["dev", "fleet"] as const) {
      const target = persistent.get(id) as GustTarget | undefined;
      if (target === undefined) continue;
      data.targetNames[id] = target.name;
      for (const handler of settings.handlers) {
        await createFunction(target, handler, HANDLERS[handler]);
        await invokeOnce(target, handler);
        await measure(
          target,
          handler,
          Math.max(...settings.concurrency),
          0,
          "autocannon",
          GUST_WARM_MS,
        );
      }
    }
    if (targetIds.includes("relay")) {
      const relay = await startRelay();
      persistent.set("relay", relay);
      data.targetNames["relay"] = relay.name;
      // Its children start on demand, as sandboxes do: warm them like the functions.
      for (const handler of settings.handlers) {
        await measure(
          relay,
          handler,
          Math.max(...settings.concurrency),
          0,
          "autocannon",
          GUST_WARM_MS,
        );
      }
    }
    if (targetIds.includes("sls")) data.targetNames["sls"] = "serverless-offline";
    progress.done();

    for (let round = 0; round < settings.rounds; round++) {
      const natsUrl = (persistent.get("fleet") as GustTarget | undefined)?.natsUrl;
      if (natsUrl !== undefined) {
        progress.step(`round ${round + 1}/${settings.rounds}: NATS request/reply`);
        const ms = await natsRoundTripMs(natsUrl);
        (data.natsRoundTripMs ??= []).push(ms);
        progress.note(`NATS request/reply: p50 ${ms.toFixed(3)} ms`);
        progress.done();
      }
      for (const handler of settings.handlers) {
        for (const concurrency of settings.concurrency) {
          // Rotate the order, so no target always runs right after another.
          const order = targetIds.map((_, i) => targetIds[(i + round) % targetIds.length]!);
          for (const id of order) {
            const key = cellKey(handler, concurrency, id);
            progress.step(`round ${round + 1}/${settings.rounds}: ${key}`);
            try {
              let result: LoadResult;
              if (id === "sls") {
                const sls = await startServerlessOffline();
                try {
                  const warmup = Math.max(settings.warmupMs, settings.slsWarmupMs);
                  result = await measure(sls, handler, concurrency, warmup);
                } finally {
                  await sls.stop();
                }
              } else {
                result = await measure(
                  persistent.get(id)!,
                  handler,
                  concurrency,
                  settings.warmupMs,
                );
              }
              (data.cells[key] ??= []).push(result);
              progress.note(`${key}: ${summary(result)}`);
            } catch (error) {
              progress.note(`${key} failed: ${String(error)}`);
            }
            progress.done();
          }
        }
      }
    }
  } finally {
    await stopAll();
  }

  if (targetIds.includes("sls") && settings.slsRunMs > 0) {
    progress.step(`serverless-offline over ${Math.round(settings.slsRunMs / 1000)} s`);
    const sls = await startServerlessOffline();
    try {
      const pid = sls.pid ?? 0;
      const rssStartMb = await rssMb(pid);
      const { url, headers } = await sls.request("noop");
      const windows: NonNullable<InvokeBenchData["slsRun"]>["windows"] = [];
      const samples: Array<Promise<void>> = [];
      const result = await runLoad(
        {
          url,
          headers,
          bodyBase64: Buffer.from(PAYLOAD).toString("base64"),
          mode: "closed",
          generator: settings.generator,
          concurrency: settings.slsRunClients,
          rate: 0,
          warmupMs: 0,
          durationMs: settings.slsRunMs,
          expectStatus: 200,
          windowMs: 5000,
        },
        (window) => {
          samples.push(rssMb(pid).then((rss) => void windows.push({ ...window, rssMb: rss })));
        },
      );
      await Promise.all(samples);
      windows.sort((a, b) => a.index - b.index);
      data.slsRun = { windows, rssStartMb, rssEndMb: await rssMb(pid), result };
      progress.note(`serverless-offline run: ${summary(result)}`);
    } finally {
      await sls.stop();
    }
    progress.done();
  }

  if (settings.coldSamples > 0) {
    progress.step("cold starts: pre-initialized sandbox");
    const preinitialized = await coldStarts(2, settings.coldSamples);
    progress.done();
    progress.step("cold starts: spawned sandbox");
    const spawned = await coldStarts(0, settings.coldSamples);
    progress.done();
    data.cold = { preinitialized, spawned };
  }

  if (settings.scaleTrials > 0) {
    data.scale = [];
    for (let trial = 1; trial <= settings.scaleTrials; trial++) {
      progress.step(`scale-up trial ${trial}: ${settings.scaleN} invocations at once`);
      const result = await scaleUpTrial({
        invocations: settings.scaleN,
        sleepMs: settings.scaleSleepMs,
        pool: POOL,
      });
      data.scale.push(result);
      progress.note(
        `trial ${trial}: ${settings.scaleN}th start after ${result.startsMs[settings.scaleN - 1] ?? Number.NaN} ms, ` +
          `${result.errors.length} errors${result.errors[0] ? ` (${result.errors[0]})` : ""}`,
      );
      progress.done();
    }
  }
  data.loadAtEnd = loadLine();
  progress.finish();
  return data;
}

async function writeReport(data: InvokeBenchData): Promise<void> {
  const stamp = data.date.replace(/[:.]/g, "-");
  const outDir = fileURLToPath(new URL("../out/", import.meta.url));
  const chartsDir = fileURLToPath(new URL("../charts/", import.meta.url));
  await mkdir(outDir, { recursive: true });
  await mkdir(chartsDir, { recursive: true });
  const report = renderInvokeReport(data, (name) => `invoke-${stamp}-${name}`);
  // bench/charts/ holds what RESULTS.md shows: a run of only some targets or handlers leaves it be.
  const complete =
    TARGET_IDS.every((id) => data.targetIds.includes(id)) &&
    HANDLER_NAMES.every((handler) => data.settings.handlers.includes(handler));
  for (const [name, svg] of Object.entries(report.charts)) {
    await writeFile(`${outDir}invoke-${stamp}-${name}`, svg);
    if (complete) await copyFile(`${outDir}invoke-${stamp}-${name}`, `${chartsDir}invoke-${name}`);
  }
  await writeFile(`${outDir}invoke-${stamp}.md`, `${report.markdown}\n`);
  await writeFile(`${outDir}invoke-${stamp}.json`, `${JSON.stringify(data)}\n`);
  process.stdout.write(`${report.markdown}\n`);
  process.stderr.write(
    `report: bench/out/invoke-${stamp}.md; charts: bench/out/invoke-${stamp}-*.svg` +
      (complete
        ? ", copied to bench/charts/\n"
        : " (not copied to bench/charts/: a partial run)\n"),
  );
}

async function main(): Promise<void> {
  // `--from bench/out/invoke-….json` renders a finished run's report and charts again.
  const from = process.argv[2] === "--from" ? process.argv[3] : undefined;
  const data =
    from === undefined
      ? await measureAll()
      : (JSON.parse(await readFile(from, "utf8")) as InvokeBenchData);
  await writeReport(data);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
