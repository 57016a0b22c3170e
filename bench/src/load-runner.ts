/**
 * The load generator, run as its own process (see load.ts) so that neither
 * the systems under test nor the benchmark's bookkeeping share its event
 * loop. It reads one LoadSpec (JSON, argv[2]) and prints JSON lines on
 * stdout: a `window` line per `windowMs` and one `result` line at the end.
 *
 * Closed loop: `concurrency` clients over keep-alive connections, each
 * sending its next request when the previous answer arrives, through
 * autocannon or a plain node:http loop. Open loop: requests at a fixed rate
 * whatever the answers do (node:http, one connection per request in flight),
 * so a slow server is measured as slow rather than sent less.
 */
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import { LatencyHistogram, percentile } from "./histogram.js";
import type { LoadResult, LoadSpec, LoadWindow } from "./load.js";
import { signedHeaders } from "./signing.js";

/** Requests still unanswered this long after the end are counted as errors. */
const DRAIN_MS = 30_000;

class Recorder {
  readonly histogram = new LatencyHistogram();
  readonly #all: number[] = [];
  #window: number[] = [];
  #windowErrors = 0;
  #windowIndex = 0;
  #windowStart: number;
  errors = 0;
  readonly errorsByStatus: Record<string, number> = {};

  constructor(
    readonly measureFrom: number,
    readonly end: number,
    readonly windowMs: number,
    readonly expectStatus: number,
  ) {
    this.#windowStart = measureFrom;
  }

  /** `now` is when the answer (or failure) arrived; only answers inside the measured period count. */
  /** `status` 0: no answer (connection error or timeout). */
  record(latencyMs: number, status: number, now: number): void {
    if (now < this.measureFrom || now > this.end) return;
    this.#rollWindows(now);
    if (status === this.expectStatus) {
      this.#all.push(latencyMs);
      this.#window.push(latencyMs);
      this.histogram.record(latencyMs);
    } else {
      this.errors++;
      this.#windowErrors++;
      const key = status === 0 ? "no answer" : String(status);
      this.errorsByStatus[key] = (this.errorsByStatus[key] ?? 0) + 1;
    }
  }

  #rollWindows(now: number): void {
    if (this.windowMs <= 0) return;
    while (now >= this.#windowStart + this.windowMs) this.#flushWindow(this.windowMs);
  }

  #flushWindow(lengthMs: number): void {
    const sorted = this.#window.sort((a, b) => a - b);
    const window: LoadWindow = {
      index: this.#windowIndex++,
      startMs: this.#windowStart - this.measureFrom,
      requests: sorted.length,
      errors: this.#windowErrors,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      throughput: sorted.length / (lengthMs / 1000),
    };
    process.stdout.write(`${JSON.stringify({ type: "window", window })}\n`);
    this.#window = [];
    this.#windowErrors = 0;
    this.#windowStart += lengthMs;
  }

  finish(durationMs: number): LoadResult {
    if (this.windowMs > 0) {
      this.#rollWindows(this.end);
      const rest = this.end - this.#windowStart;
      if (rest >= this.windowMs / 2) this.#flushWindow(rest);
    }
    const sorted = this.#all.sort((a, b) => a - b);
    return {
      requests: sorted.length,
      errors: this.errors,
      errorsByStatus: this.errorsByStatus,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      throughput: sorted.length / (durationMs / 1000),
      histogram: this.histogram.toPairs(),
    };
  }
}

function sendOnce(agent: Agent, url: URL, headers: Record<string, string>, body: Buffer) {
  return new Promise<number>((resolve) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: "POST",
        headers,
      },
      (res) => {
        res.on("data", () => undefined);
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(0));
      },
    );
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

async function closedLoopNode(spec: LoadSpec, body: Buffer, recorder: Recorder): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const url = new URL(spec.url);
  const client = async () => {
    while (performance.now() < recorder.end) {
      const began = performance.now();
      const status = await sendOnce(agent, url, spec.headers, body);
      const now = performance.now();
      recorder.record(now - began, status, now);
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, client));
  agent.destroy();
}

async function closedLoopAutocannon(
  spec: LoadSpec,
  body: Buffer,
  recorder: Recorder,
): Promise<void> {
  // autocannon writes its own Content-Length; a second one would be a malformed request.
  const headers = Object.fromEntries(
    Object.entries(spec.headers).filter(([name]) => name.toLowerCase() !== "content-length"),
  );
  const instance = autocannon({
    url: spec.url,
    method: "POST",
    headers,
    body,
    connections: spec.concurrency,
    duration: (recorder.end - performance.now()) / 1000 + 5,
    timeout: DRAIN_MS / 1000,
    sampleInt: 100,
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    recorder.record(ms, status, performance.now());
  });
  instance.on("reqError", () => recorder.record(0, 0, performance.now()));
  const stopper = setTimeout(() => instance.stop(), recorder.end - performance.now());
  await instance;
  clearTimeout(stopper);
}

async function openLoop(spec: LoadSpec, body: Buffer, recorder: Recorder): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 4096 });
  const url = new URL(spec.url);
  let headers = spec.headers;
  const resign = spec.resign;
  const resigner =
    resign === undefined
      ? undefined
      : setInterval(() => {
          signedHeaders(url.origin, "POST", resign.path, body, resign.credential).then(
            (fresh) => (headers = fresh),
            () => undefined,
          );
        }, resign.everyMs);
  const interval = 1000 / spec.rate;
  const pending = new Set<Promise<void>>();
  let next = performance.now();
  while (next < recorder.end) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // Timers are coarse: send every request that is due, each timed from its own send.
    while (next <= performance.now() && next < recorder.end) {
      next += interval;
      const began = performance.now();
      const sent: Promise<void> = sendOnce(agent, url, headers, body).then((status) => {
        const now = performance.now();
        recorder.record(now - began, status, now);
        pending.delete(sent);
      });
      pending.add(sent);
    }
  }
  if (resigner) clearInterval(resigner);
  const drained = Promise.all(pending);
  await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, DRAIN_MS))]);
  for (let i = 0; i < pending.size; i++) recorder.record(0, 0, recorder.end);
  agent.destroy();
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;
  const body = Buffer.from(spec.bodyBase64, "base64");
  const start = performance.now();
  const recorder = new Recorder(
    start + spec.warmupMs,
    start + spec.warmupMs + spec.durationMs,
    spec.windowMs ?? 0,
    spec.expectStatus,
  );
  if (spec.mode === "open") await openLoop(spec, body, recorder);
  else if (spec.generator === "node") await closedLoopNode(spec, body, recorder);
  else await closedLoopAutocannon(spec, body, recorder);
  const result = recorder.finish(spec.durationMs);
  process.stdout.write(`${JSON.stringify({ type: "result", result })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`load runner failed: ${String(error)}\n`);
    process.exit(1);
  },
);
