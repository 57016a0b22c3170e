/**
 * What both work-queue implementations do around a user's job handler, so
 * they fail the same way: a handler that throws has its job retried after a
 * backoff that grows with the delivery count (unless it already acked or
 * retried); a handler that returns without settling leaves the job to be
 * redelivered after ackWait, as if its consumer had died.
 */
import { ConfigError } from "@gust/protocol";
import type { Logger } from "@gust/telemetry";
import type { ConsumeOptions, QueueJob } from "./types.js";

export const FAILED_JOB_FIRST_RETRY_MS = 1_000;
export const FAILED_JOB_MAX_RETRY_MS = 60_000;

export function failedJobRetryDelayMs(deliveryCount: number): number {
  const exponent = Math.max(0, Math.min(deliveryCount - 1, 16));
  return Math.min(FAILED_JOB_FIRST_RETRY_MS * 2 ** exponent, FAILED_JOB_MAX_RETRY_MS);
}

export function resolveConsumeOptions(options: ConsumeOptions): ConsumeOptions {
  const { concurrency, ackWaitMs } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ConfigError(`concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  if (!Number.isFinite(ackWaitMs) || ackWaitMs < 1) {
    throw new ConfigError(
      `ackWaitMs must be a positive number of milliseconds, got ${String(ackWaitMs)}`,
    );
  }
  return { concurrency, ackWaitMs: Math.ceil(ackWaitMs) };
}

export async function runJob(
  handler: (job: QueueJob) => Promise<void>,
  job: QueueJob,
  logger: Logger,
): Promise<void> {
  let settled = false;
  const tracked: QueueJob = {
    subject: job.subject,
    data: job.data,
    headers: job.headers,
    deliveryCount: job.deliveryCount,
    ack: () => {
      settled = true;
      return job.ack();
    },
    retry: (delayMs: number) => {
      settled = true;
      return job.retry(delayMs);
    },
    inProgress: () => job.inProgress(),
  };
  try {
    await handler(tracked);
  } catch (error) {
    if (settled) {
      logger.error("job handler failed after settling its job", { subject: job.subject, error });
      return;
    }
    const delayMs = failedJobRetryDelayMs(job.deliveryCount);
    logger.warn("job handler failed; retrying", {
      subject: job.subject,
      deliveryCount: job.deliveryCount,
      delayMs,
      error,
    });
    try {
      await job.retry(delayMs);
    } catch (retryError) {
      logger.warn("could not schedule a retry; the job comes back after ackWait", {
        subject: job.subject,
        error: retryError,
      });
    }
  }
}
