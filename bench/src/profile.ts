/**
 * `npm run bench:profile`: a CPU profile of `gust dev` under a closed-loop
 * load, and where its time goes, per invocation: the functions with the
 * most self time, and the same grouped by where their code lives (Gust's
 * packages, node_modules packages, Node's internals, the garbage collector,
 * idle). The profile itself (open it in Chrome DevTools or speedscope) is
 * kept in bench/out/.
 *
 * Options (environment), defaults in parentheses:
 *   BENCH_PROFILE_CLIENTS (1)      concurrent clients
 *   BENCH_PROFILE_MS (5000)        profiled load, after 2 s of warm-up
 *   BENCH_PROFILE_HANDLER (noop)   noop | sleep10
 *   BENCH_PROFILE_TOP (30)         functions listed
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { envChoice, envInteger } from "./config.js";
import { HANDLERS, HANDLER_NAMES, createFunction, invokeOnce } from "./handlers.js";
import { closedLoop } from "./load.js";
import { startDevTarget } from "./targets.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const OUT = fileURLToPath(new URL("../out/", import.meta.url));

/** Where a frame's code lives: a Gust package, an npm package, Node itself, or a V8 pseudo-frame. */
function placeOf(frame: ProfileNode["callFrame"]): string {
  const { url, functionName } = frame;
  if (url === "") {
    if (functionName === "(idle)" || functionName === "(program)") return functionName;
    if (functionName === "(garbage collector)") return "(gc)";
    return "(native)";
  }
  if (url.startsWith("node:")) return "node:" + url.slice(5).split("/")[0];
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const gust = /\/packages\/([^/]+)\//.exec(url);
  if (gust) return `@gust/${gust[1]}`;
  return url;
}

function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return self;
}

function table(rows: Array<[string, number]>, requests: number, top: number): string {
  const total = rows.reduce((sum, [, us]) => sum + us, 0);
  return rows
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(
      ([name, us]) =>
        `${(us / requests).toFixed(1).padStart(8)} µs  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`,
    )
    .join("\n");
}

async function main(): Promise<void> {
  const clients = envInteger("BENCH_PROFILE_CLIENTS", 1);
  const durationMs = envInteger("BENCH_PROFILE_MS", 5000);
  const handler = envChoice("BENCH_PROFILE_HANDLER", HANDLER_NAMES, ["noop"])[0] ?? "noop";
  const top = envInteger("BENCH_PROFILE_TOP", 30);
  const dir = await mkdtemp(join(tmpdir(), "gust-profile-"));
  const target = await startDevTarget({
    pool: 2,
    maxSandboxes: Math.max(8, clients * 2),
    nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
  });
  let requests = 0;
  try {
    await createFunction(target, handler, HANDLERS[handler]);
    await invokeOnce(target, handler);
    const result = await closedLoop(await target.request(handler), {
      concurrency: clients,
      warmupMs: 2000,
      durationMs,
    });
    requests = result.requests;
    process.stderr.write(
      `${result.requests} invocations, p50 ${result.p50Ms.toFixed(3)} ms, ${Math.round(result.throughput)} req/s, ${result.errors} errors\n`,
    );
  } finally {
    await target.stop();
  }
  const files = (await readdir(dir)).filter((name) => name.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error("gust dev wrote no profile");
  const file = join(dir, files[0]!);
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  await mkdir(OUT, { recursive: true });
  const kept = join(OUT, `profile-dev-${handler}-c${clients}-${Date.now()}.cpuprofile`);
  await rename(file, kept).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });

  // The whole run is profiled (start-up, warm-up, shutdown too): per-invocation
  // figures divide by the measured invocations, so they slightly overstate.
  const self = selfTimes(profile);
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const place = placeOf(node.callFrame);
    const name = `${functionName || "(anonymous)"} ${place}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
  }
  const busy = [...byPlace].filter(([place]) => place !== "(idle)");
  const per = Math.max(1, requests);
  console.log(`profile: ${kept}`);
  console.log(`\nself time per invocation by place (idle left out):\n${table(busy, per, top)}`);
  console.log(
    `\nself time per invocation by function (idle left out):\n${table(
      [...byFunction].filter(([name]) => !name.startsWith("(idle)")),
      per,
      top,
    )}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
