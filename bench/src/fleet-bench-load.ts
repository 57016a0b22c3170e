/**
 * The fleet benchmark's load and its reading: open-loop Poisson arrivals
 * (the simulator's and the queueing model's traffic), each request sent to
 * one of the frontends by weight, and what came back: the handler's own start
 * and end (wall clock, shared by every process on the machine) for each
 * invocation that ran, and the round trip of each one turned away.
 */
import { Agent, request } from "node:http";

export interface LoadTarget {
  url: string;
  /** Signed once and replayed (valid for the server's clock-skew window). */
  headers: Record<string, string>;
  weight: number;
}

export interface Outcome {
  frontend: number;
  sentAt: number;
  answeredAt: number;
  status: number;
  /** The handler's run, for a 200. */
  ran?: [start: number, end: number];
  /** Response bytes (body), for the bandwidth figure. */
  bytes: number;
}

export interface OpenLoopOptions {
  targets: LoadTarget[];
  path: string;
  body: Uint8Array;
  /** Arrivals per second. */
  rate: number;
  durationMs: number;
}

function send(agent: Agent, target: LoadTarget, path: string, body: Uint8Array) {
  const url = new URL(target.url);
  return new Promise<{ status: number; text: string }>((resolve) => {
    const req = request(
      { agent, host: url.hostname, port: url.port, path, method: "POST", headers: target.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", () => resolve({ status: 0, text: "" }));
      },
    );
    req.on("error", () => resolve({ status: 0, text: "" }));
    req.end(body);
  });
}

/** Poisson arrivals at `rate` for `durationMs`; resolves when every request has been answered. */
export async function runOpenLoop(options: OpenLoopOptions): Promise<Outcome[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1000 });
  const totalWeight = options.targets.reduce((sum, t) => sum + t.weight, 0);
  const outcomes: Outcome[] = [];
  const pending: Array<Promise<void>> = [];
  const start = Date.now();
  let next = start;
  const pick = (): number => {
    let x = Math.random() * totalWeight;
    for (let i = 0; i < options.targets.length; i++) {
      x -= options.targets[i]!.weight;
      if (x < 0) return i;
    }
    return options.targets.length - 1;
  };
  while (next < start + options.durationMs) {
    const wait = next - Date.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    // Send every arrival that is due (timers are coarse; the schedule is not).
    while (next <= Date.now() && next < start + options.durationMs) {
      const index = pick();
      const target = options.targets[index]!;
      const sentAt = Date.now();
      pending.push(
        send(agent, target, options.path, options.body).then(({ status, text }) => {
          const outcome: Outcome = {
            frontend: index,
            sentAt,
            answeredAt: Date.now(),
            status,
            bytes: text.length,
          };
          if (status === 200) {
            try {
              const { start: s, end: e } = JSON.parse(text) as { start: number; end: number };
              outcome.ran = [s, e];
            } catch {
              outcome.status = -1;
            }
          }
          outcomes.push(outcome);
        }),
      );
      next += (-Math.log(1 - Math.random()) / options.rate) * 1000;
    }
  }
  await Promise.all(pending);
  agent.destroy();
  return outcomes;
}

/** Handler runs as [time, +1/-1] events, ends first at equal times. */
function events(runs: Array<[number, number]>): Array<[number, number]> {
  const list: Array<[number, number]> = [];
  for (const [s, e] of runs) list.push([s, 1], [e, -1]);
  return list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

/** The most handlers running at once. */
export function peakConcurrency(runs: Array<[number, number]>): number {
  let running = 0;
  let peak = 0;
  for (const [, delta] of events(runs)) {
    running += delta;
    peak = Math.max(peak, running);
  }
  return peak;
}

/** Handlers running at each of the (sorted) instants. */
export function runningAt(runs: Array<[number, number]>, instants: number[]): number[] {
  const sorted = events(runs);
  const out: number[] = [];
  let running = 0;
  let k = 0;
  for (const t of instants) {
    while (k < sorted.length && sorted[k]![0] <= t) running += sorted[k++]![1];
    out.push(running);
  }
  return out;
}
