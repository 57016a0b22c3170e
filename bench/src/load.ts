/**
 * A closed-loop load generator: `concurrency` clients, each sending its next
 * request when the previous answer arrives, over keep-alive connections.
 * Latency is measured per request from write to full response.
 */
import { Agent, request } from "node:http";

export interface LoadOptions {
  url: string;
  method?: string;
  headers: Record<string, string>;
  body: Uint8Array;
  concurrency: number;
  durationMs: number;
  /** Requests before measuring, to warm connections and sandboxes. */
  warmupMs: number;
  /** Status the target must answer with; anything else counts as an error. */
  expectStatus: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  throughput: number;
}

function send(agent: Agent, options: LoadOptions): Promise<number> {
  const url = new URL(options.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: options.method ?? "POST",
        headers: options.headers,
      },
      (res) => {
        res.on("data", () => undefined);
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  const start = Date.now();
  const measureFrom = start + options.warmupMs;
  const end = measureFrom + options.durationMs;
  const client = async () => {
    while (Date.now() < end) {
      if (!measuring && Date.now() >= measureFrom) measuring = true;
      const began = process.hrtime.bigint();
      let ok = false;
      try {
        ok = (await send(agent, options)) === options.expectStatus;
      } catch {
        ok = false;
      }
      const took = Number(process.hrtime.bigint() - began) / 1e6;
      if (Date.now() < measureFrom) continue;
      if (ok) latencies.push(took);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    throughput: latencies.length / (options.durationMs / 1000),
  };
}
