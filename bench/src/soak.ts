/**
 * `npm run bench:soak`: `gust dev` under steady load for a long time, to see
 * whether it holds up: memory that only grows, latency that creeps.
 *
 * Starts `gust dev`, creates the no-op function, measures its peak
 * throughput (closed loop, autocannon, at 8 and 64 clients, the better of
 * the two), then sends an open-loop load of BENCH_SOAK_LOAD × that peak:
 * requests at a fixed rate whatever the answers do, so a slowing server
 * shows as latency, not as less load. Per window (a minute by default):
 * throughput, p50/p99, errors, the resident memory of the gust process and
 * of it with its sandboxes. Reports growth from the first window to the
 * last; the report (Markdown) goes to stdout and bench/out/, the chart to
 * bench/out/ and (a full 10-minute soak only) bench/charts/soak.svg.
 *
 * Options (environment), defaults in parentheses:
 *   BENCH_SOAK_MS (600000)        how long the load runs
 *   BENCH_SOAK_WINDOW_MS (60000)  reporting window
 *   BENCH_SOAK_LOAD (0.7)         fraction of the measured peak to send
 *   BENCH_SOAK_PEAK_MS (5000)     each peak measurement
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { envInteger, envNumber } from "./config.js";
import { HANDLERS, PAYLOAD, createFunction, invokeOnce, invokePath } from "./handlers.js";
import { closedLoop, runLoad, type LoadResult, type LoadWindow } from "./load.js";
import { fmt, fmtInt, markdownTable } from "./markdown.js";
import { loadLine, machineLine, rssMb, treeRssMb } from "./proc.js";
import { Progress } from "./progress.js";
import { PALETTE, renderChart } from "./svg-chart.js";
import { startDevTarget } from "./targets.js";

const SOAK_MS = envInteger("BENCH_SOAK_MS", 600_000, 1000);
const WINDOW_MS = envInteger("BENCH_SOAK_WINDOW_MS", 60_000, 1000);
const LOAD = envNumber("BENCH_SOAK_LOAD", 0.7, 0.01);
const PEAK_MS = envInteger("BENCH_SOAK_PEAK_MS", 5000, 500);
const PEAK_CLIENTS = [8, 64];
/** Signatures are valid for 15 minutes; renew well before. */
const RESIGN_MS = 5 * 60_000;

interface SoakWindow extends LoadWindow {
  gustRssMb: number;
  treeRssMb: number;
  processes: number;
}

const growth = (from: number, to: number) =>
  `${fmt(from, 1)} → ${fmt(to, 1)} (${to >= from ? "+" : ""}${fmt(((to - from) / from) * 100, 1)}%)`;

async function main(): Promise<void> {
  const progress = new Progress(4);
  const date = new Date().toISOString();
  const loadAtStart = loadLine();
  progress.step("starting gust dev, warming 64 sandboxes");
  const target = await startDevTarget({ pool: 2, maxSandboxes: 80 });
  const pid = target.pid ?? 0;
  const windows: SoakWindow[] = [];
  const samples: Array<Promise<void>> = [];
  let peak = 0;
  let rate = 0;
  let rssStart = { gust: Number.NaN, tree: Number.NaN, processes: 0 };
  let result: LoadResult;
  try {
    await createFunction(target, "noop", HANDLERS.noop);
    await invokeOnce(target, "noop");
    // Start the sandboxes the widest peak measurement needs, so it measures warm invocations.
    const warm = await target.request("noop");
    await runLoad({
      ...warm,
      bodyBase64: Buffer.from(PAYLOAD).toString("base64"),
      mode: "closed",
      generator: "autocannon",
      concurrency: Math.max(...PEAK_CLIENTS),
      rate: 0,
      warmupMs: 0,
      durationMs: 3000,
      expectStatus: 200,
    });
    progress.done();
    for (const clients of PEAK_CLIENTS) {
      progress.step(`peak throughput, ${clients} clients`);
      const measured = await closedLoop(await target.request("noop"), {
        concurrency: clients,
        warmupMs: 1500,
        durationMs: PEAK_MS,
      });
      progress.note(`${clients} clients: ${Math.round(measured.throughput)} req/s`);
      peak = Math.max(peak, measured.throughput);
      progress.done();
    }
    rate = Math.max(1, Math.round(peak * LOAD));
    const tree = await treeRssMb(pid);
    rssStart = { gust: await rssMb(pid), tree: tree.mb, processes: tree.processes };
    progress.step(`soak: ${rate} req/s open loop for ${Math.round(SOAK_MS / 60_000)} min`);
    const { url, headers } = await target.request("noop");
    result = await runLoad(
      {
        url,
        headers,
        bodyBase64: Buffer.from(PAYLOAD).toString("base64"),
        mode: "open",
        generator: "node",
        concurrency: 0,
        rate,
        warmupMs: 0,
        durationMs: SOAK_MS,
        expectStatus: 200,
        windowMs: WINDOW_MS,
        resign: { credential: target.credential, path: invokePath("noop"), everyMs: RESIGN_MS },
      },
      (window) => {
        const sampled = Promise.all([rssMb(pid), treeRssMb(pid)]).then(
          ([gust, all]) => {
            windows.push({
              ...window,
              gustRssMb: gust,
              treeRssMb: all.mb,
              processes: all.processes,
            });
            progress.note(
              `window ${window.index + 1}: ${Math.round(window.throughput)} req/s, p50 ${fmt(window.p50Ms)} ms, ` +
                `p99 ${fmt(window.p99Ms)} ms, ${window.errors} errors, gust RSS ${fmt(gust, 1)} MB`,
            );
          },
          () => undefined,
        );
        samples.push(sampled);
      },
    );
    await Promise.all(samples);
    progress.done();
  } finally {
    await target.stop();
  }
  progress.finish();
  windows.sort((a, b) => a.index - b.index);

  const first = windows[0];
  const last = windows[windows.length - 1];
  const minutes = (ms: number) => fmt(ms / 60_000, 1);
  const lines = [
    `Machine: ${machineLine()}`,
    "",
    `Date: ${date}; load average (1/5/15 min) ${loadAtStart} at the start, ${loadLine()} at the end.`,
    "",
    `gust dev, no-op function; peak ${fmtInt(peak)} req/s (closed loop, best of ${PEAK_CLIENTS.join(" and ")} clients); ` +
      `soak at ${Math.round(LOAD * 100)}% of it: ${fmtInt(rate)} req/s open loop for ${minutes(SOAK_MS)} min, ` +
      `${fmtInt(result.requests)} answered, ${result.errors} errors` +
      (result.errors > 0 ? ` (${JSON.stringify(result.errorsByStatus)})` : "") +
      `, p50 ${fmt(result.p50Ms)} ms, p99 ${fmt(result.p99Ms)} ms overall.`,
    "",
    markdownTable(
      [
        "window",
        "from min",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "gust RSS MB",
        "with sandboxes MB",
      ],
      [
        ["before", "", "", "", "", "", fmt(rssStart.gust, 1), fmt(rssStart.tree, 1)],
        ...windows.map((w) => [
          String(w.index + 1),
          minutes(w.startMs),
          fmtInt(w.throughput),
          fmt(w.p50Ms),
          fmt(w.p99Ms),
          String(w.errors),
          fmt(w.gustRssMb, 1),
          fmt(w.treeRssMb, 1),
        ]),
      ],
      ["left", "right", "right", "right", "right", "right", "right", "right"],
    ),
    "",
  ];
  if (first && last) {
    lines.push(
      `Growth, first window → last: gust process RSS ${growth(first.gustRssMb, last.gustRssMb)} MB ` +
        `(${fmt(rssStart.gust, 1)} MB before the load); with sandboxes ${growth(first.treeRssMb, last.treeRssMb)} MB ` +
        `(${first.processes} → ${last.processes} processes); p50 ${growth(first.p50Ms, last.p50Ms)} ms; ` +
        `p99 ${growth(first.p99Ms, last.p99Ms)} ms.`,
      "",
    );
  }
  const stamp = date.replace(/[:.]/g, "-");
  lines.push(`![soak](soak-${stamp}.svg)`);
  const at = (w: LoadWindow) => (w.startMs + WINDOW_MS) / 60_000;
  const svg = renderChart(`Soak: gust dev at ${fmtInt(rate)} req/s (open loop)`, [
    {
      title: "latency per window",
      x: { label: "minutes", scale: "linear", min: 0 },
      y: { label: "ms (log)", scale: "log" },
      series: [
        { name: "p50", color: PALETTE[1]!, points: windows.map((w) => [at(w), w.p50Ms]) },
        { name: "p99", color: PALETTE[3]!, points: windows.map((w) => [at(w), w.p99Ms]) },
      ],
    },
    {
      title: "resident memory",
      x: { label: "minutes", scale: "linear", min: 0 },
      y: { label: "MB", scale: "linear", min: 0 },
      series: [
        {
          name: "gust process",
          color: PALETTE[2]!,
          points: [
            [0, rssStart.gust],
            ...windows.map((w): [number, number] => [at(w), w.gustRssMb]),
          ],
        },
        {
          name: "gust process + sandboxes",
          color: PALETTE[4]!,
          dashed: true,
          points: [
            [0, rssStart.tree],
            ...windows.map((w): [number, number] => [at(w), w.treeRssMb]),
          ],
        },
      ],
    },
  ]);
  const report = lines.join("\n");
  const outDir = fileURLToPath(new URL("../out/", import.meta.url));
  const chartsDir = fileURLToPath(new URL("../charts/", import.meta.url));
  await mkdir(outDir, { recursive: true });
  await writeFile(`${outDir}soak-${stamp}.md`, `${report}\n`);
  await writeFile(`${outDir}soak-${stamp}.svg`, svg);
  // Only a soak of the documented length replaces the chart RESULTS.md shows.
  if (SOAK_MS >= 600_000) {
    await mkdir(chartsDir, { recursive: true });
    await copyFile(`${outDir}soak-${stamp}.svg`, `${chartsDir}soak.svg`);
  }
  process.stdout.write(`${report}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
