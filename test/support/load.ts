/**
 * A bounded load for fault tests: a fixed number of concurrent loops, each
 * sending one request after another until a request count or a duration is
 * reached, or the test stops it. Every request's start, end and outcome is
 * kept, so a test can tell which requests were in flight at a given moment.
 */
import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { FRONTEND_HEADER } from "@gust/cli";

export interface LoadRecord {
  index: number;
  /** Date.now() when the request was sent and when its answer (or error) came. */
  startedAt: number;
  endedAt: number;
  ok: boolean;
  /** The frontend that answered (X-Gust-Frontend), when one did. */
  frontend: string | undefined;
  /** Set when the request failed: the SDK error's name, HTTP status and message. */
  error?: { name: string; status: number | undefined; message: string; reason?: string };
}

export interface LoadOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** Requests sent at most. */
  maxRequests: number;
  /** No request is started after this long. */
  maxDurationMs: number;
  /** Sends request `index`; resolves with the frontend that answered, throws on failure. */
  request: (index: number) => Promise<string | undefined>;
}

export interface Load {
  readonly records: readonly LoadRecord[];
  /** Requests sent and not yet answered. */
  inflight(): number;
  /** Starts no more requests and waits for those in flight. */
  stop(): Promise<LoadRecord[]>;
  /** Settles when the load has ended by itself (count or duration) or was stopped. */
  readonly done: Promise<LoadRecord[]>;
}

export function startLoad(options: LoadOptions): Load {
  const records: LoadRecord[] = [];
  const deadline = Date.now() + options.maxDurationMs;
  let issued = 0;
  let inflight = 0;
  let stopped = false;
  const loop = async () => {
    while (!stopped && issued < options.maxRequests && Date.now() < deadline) {
      const index = issued++;
      const startedAt = Date.now();
      inflight++;
      try {
        const frontend = await options.request(index);
        records.push({ index, startedAt, endedAt: Date.now(), ok: true, frontend });
      } catch (error) {
        const failure = error as {
          name?: string;
          message?: string;
          $metadata?: { httpStatusCode?: number };
          $response?: { headers?: Record<string, string> };
          Reason?: string;
        };
        records.push({
          index,
          startedAt,
          endedAt: Date.now(),
          ok: false,
          frontend: failure.$response?.headers?.[FRONTEND_HEADER.toLowerCase()],
          error: {
            name: failure.name ?? "Error",
            status: failure.$metadata?.httpStatusCode,
            message: failure.message ?? String(error),
            ...(failure.Reason === undefined ? {} : { reason: failure.Reason }),
          },
        });
      } finally {
        inflight--;
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, loop)).then(() =>
    [...records].sort((a, b) => a.index - b.index),
  );
  return {
    records,
    inflight: () => inflight,
    stop: () => {
      stopped = true;
      return done;
    },
    done,
  };
}

/**
 * Records, on each Invoke's output, the frontend that answered
 * (`servedBy`), for the load's request function to return.
 */
export function recordServedBy(lambda: LambdaClient): void {
  lambda.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const headers = (result.response as { headers?: Record<string, string> } | undefined)
        ?.headers;
      if (typeof result.output === "object" && result.output !== null) {
        (result.output as unknown as Record<string, unknown>)["servedBy"] =
          headers?.[FRONTEND_HEADER.toLowerCase()];
      }
      return result;
    },
    // Outermost, so the output is deserialized by the time it comes back.
    { step: "initialize", name: "recordServedBy" },
  );
}

/**
 * One synchronous Invoke as a load request: any function error or SDK error
 * fails it; a request that gets no answer within `timeoutMs` is abandoned as
 * a hang.
 */
export async function invokeOnce(
  lambda: LambdaClient,
  functionName: string,
  payload: unknown,
  timeoutMs: number,
): Promise<string | undefined> {
  const output = await lambda.send(
    new InvokeCommand({
      FunctionName: functionName,
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
    { abortSignal: AbortSignal.timeout(timeoutMs) },
  );
  if (output.FunctionError !== undefined) {
    throw Object.assign(new Error(new TextDecoder().decode(output.Payload)), {
      name: `FunctionError:${output.FunctionError}`,
    });
  }
  return (output as { servedBy?: string }).servedBy;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `condition` holds, failing with `what` after timeoutMs. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
