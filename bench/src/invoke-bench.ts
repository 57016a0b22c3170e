/**
 * `npm run bench`: warm no-op invocations in dev and fleet mode next to a
 * bare node:http echo, at 1 and 32 concurrent clients, interleaved over
 * several rounds so drift on a shared machine hits every target alike; then
 * cold starts with a pre-initialized sandbox vs a spawned one. Figures are
 * reported as ratios to the echo baseline measured in the same run.
 *
 * Options (environment): BENCH_ROUNDS (3), BENCH_DURATION_MS (3000),
 * BENCH_COLD_SAMPLES (8).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { zipFiles } from "@gust/bundle";
import { runLoad, type LoadResult } from "./load.js";
import { signedHeaders } from "./signing.js";
import { startDevTarget, startEcho, startFleetTarget, type Target } from "./targets.js";

const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3);
const DURATION_MS = Number(process.env["BENCH_DURATION_MS"] ?? 3000);
const COLD_SAMPLES = Number(process.env["BENCH_COLD_SAMPLES"] ?? 8);
const CONCURRENCY = [1, 32];
const PAYLOAD = new TextEncoder().encode(JSON.stringify({ ping: true }));
const NOOP = "export const handler = async () => ({ ok: true });\n";

async function createFunction(target: Target, name: string): Promise<void> {
  const zip = await zipFiles([{ path: "index.mjs", data: NOOP }]);
  const body = new TextEncoder().encode(
    JSON.stringify({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: "arn:aws:iam::000000000000:role/bench",
      Code: { ZipFile: Buffer.from(zip).toString("base64") },
    }),
  );
  const path = "/2015-03-31/functions";
  const headers = await signedHeaders(target.url, "POST", path, body, target.credential);
  const response = await fetch(target.url + path, { method: "POST", headers, body });
  if (response.status !== 201) {
    throw new Error(
      `CreateFunction on ${target.name}: ${response.status} ${await response.text()}`,
    );
  }
}

async function invokeOnce(target: Target, name: string): Promise<number> {
  const path = `/2015-03-31/functions/${name}/invocations`;
  const headers = await signedHeaders(target.url, "POST", path, PAYLOAD, target.credential);
  const began = process.hrtime.bigint();
  const response = await fetch(target.url + path, { method: "POST", headers, body: PAYLOAD });
  await response.arrayBuffer();
  const took = Number(process.hrtime.bigint() - began) / 1e6;
  if (response.status !== 200 || response.headers.get("x-amz-function-error")) {
    throw new Error(`invoke ${name} on ${target.name}: ${response.status}`);
  }
  return took;
}

async function load(target: Target, concurrency: number, warmupMs: number): Promise<LoadResult> {
  const isEcho = target.name.includes("echo");
  const path = isEcho ? "/" : "/2015-03-31/functions/noop/invocations";
  const headers = isEcho
    ? { "content-type": "application/json", "content-length": String(PAYLOAD.length) }
    : await signedHeaders(target.url, "POST", path, PAYLOAD, target.credential);
  return runLoad({
    url: target.url + path,
    headers,
    body: PAYLOAD,
    concurrency,
    durationMs: DURATION_MS,
    warmupMs,
    expectStatus: 200,
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

async function coldStarts(pool: number): Promise<number[]> {
  const target = await startDevTarget({ pool, maxSandboxes: 64 });
  try {
    const samples: number[] = [];
    for (let i = 0; i < COLD_SAMPLES; i++) {
      await createFunction(target, `cold${i}`);
      // Let the pool refill, so each first invocation finds a pre-initialized sandbox.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      samples.push(await invokeOnce(target, `cold${i}`));
    }
    return samples;
  } finally {
    await target.stop();
  }
}

async function main(): Promise<void> {
  const targets = [
    await startEcho(),
    await startDevTarget({ pool: 2, maxSandboxes: 64 }),
    await startFleetTarget({ pool: 2, maxSandboxes: 64 }),
  ];
  const results = new Map<string, LoadResult[]>();
  try {
    for (const target of targets.slice(1)) {
      await createFunction(target, "noop");
      // Warm up as many sandboxes as the widest run needs.
      await load(target, Math.max(...CONCURRENCY), 2000);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const concurrency of CONCURRENCY) {
        for (const target of targets) {
          const result = await load(target, concurrency, 500);
          const key = `${target.name}@${concurrency}`;
          results.set(key, [...(results.get(key) ?? []), result]);
          process.stderr.write(
            `round ${round} ${key}: p50 ${fmt(result.p50Ms)} ms p99 ${fmt(result.p99Ms)} ms ${fmt(result.throughput, 0)} req/s errors ${result.errors}\n`,
          );
        }
      }
    }
  } finally {
    for (const target of targets) await target.stop();
  }

  process.stderr.write("cold starts: pre-initialized pool\n");
  const preinitialized = await coldStarts(2);
  process.stderr.write("cold starts: spawned\n");
  const spawned = await coldStarts(0);

  const lines: string[] = [];
  lines.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  lines.push(
    `Date: ${new Date().toISOString()}; ${ROUNDS} interleaved rounds of ${DURATION_MS} ms per cell; medians of the rounds.`,
  );
  lines.push("");
  lines.push("| target | clients | p50 ms | p99 ms | req/s | p50 × echo | req/s ÷ echo | errors |");
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const concurrency of CONCURRENCY) {
    const base = results.get(`node:http echo@${concurrency}`) ?? [];
    const baseP50 = median(base.map((r) => r.p50Ms));
    const baseRps = median(base.map((r) => r.throughput));
    for (const target of targets) {
      const runs = results.get(`${target.name}@${concurrency}`) ?? [];
      const p50 = median(runs.map((r) => r.p50Ms));
      const p99 = median(runs.map((r) => r.p99Ms));
      const rps = median(runs.map((r) => r.throughput));
      const errors = runs.reduce((sum, r) => sum + r.errors, 0);
      lines.push(
        `| ${target.name} | ${concurrency} | ${fmt(p50)} | ${fmt(p99)} | ${fmt(rps, 0)} | ${fmt(p50 / baseP50, 1)} | ${fmt(rps / baseRps, 3)} | ${errors} |`,
      );
    }
  }
  lines.push("");
  lines.push("| first invocation of a new function | samples | median ms | min ms | max ms |");
  lines.push("|---|---:|---:|---:|---:|");
  for (const [name, samples] of [
    ["pre-initialized sandbox (pool)", preinitialized],
    ["spawned sandbox (no pool)", spawned],
  ] as const) {
    lines.push(
      `| ${name} | ${samples.length} | ${fmt(median(samples))} | ${fmt(Math.min(...samples))} | ${fmt(Math.max(...samples))} |`,
    );
  }
  lines.push("");
  lines.push(
    `Spawned ÷ pre-initialized (medians): ${fmt(median(spawned) / median(preinitialized), 2)}`,
  );
  const report = lines.join("\n");
  process.stdout.write(`${report}\n`);
  const out = fileURLToPath(new URL("../out/", import.meta.url));
  await mkdir(out, { recursive: true });
  await writeFile(
    `${out}invoke-${new Date().toISOString().replace(/[:.]/g, "-")}.md`,
    `${report}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
