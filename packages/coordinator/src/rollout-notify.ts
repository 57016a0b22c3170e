/**
 * Telling owners of a rollout verdict: an event on Subjects.rolloutVerdict
 * (JSON, for fleet tooling) and, when the tenant configured a webhook, a
 * POST of the same JSON signed with HMAC-SHA256 over the exact body bytes:
 *
 *   X-Gust-Signature: sha256=<hex of HMAC-SHA256(webhook secret, body)>
 *   X-Gust-Event: rollout.verdict
 *
 * A receiver recomputes the HMAC over the raw body and compares in constant
 * time. A webhook that fails or times out is logged, not retried: the
 * verdict stays in `gust rollout status` and GetFunction.
 */
import { createHmac } from "node:crypto";
import type { Bus } from "@gust/bus";
import { Subjects, type RolloutVerdictEvent } from "@gust/protocol";
import type { FunctionProgress, RolloutRecord, TenantDirectory } from "@gust/registry";
import type { Logger } from "@gust/telemetry";

export const WEBHOOK_SIGNATURE_HEADER = "x-gust-signature";
export const WEBHOOK_EVENT_HEADER = "x-gust-event";

/** The signature header's value for `body`. */
export function signWebhookBody(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

export function verdictEvent(
  rollout: RolloutRecord,
  progress: FunctionProgress,
  runtimeVersionArn: string,
): RolloutVerdictEvent {
  const verdict = progress.verdict!;
  const sample = progress.new.sampleError;
  return {
    type: "rollout.verdict",
    runtime: rollout.runtime,
    fromVersion: rollout.fromVersion,
    toVersion: rollout.toVersion,
    tenantId: progress.tenantId,
    functionName: progress.name,
    functionArn: progress.functionArn,
    verdict: verdict.verdict,
    reason: verdict.reason,
    runtimeVersionArn,
    counts: { old: progress.old.counts, new: progress.new.counts },
    errorTypes: progress.new.errorTypes,
    ...(sample === undefined ? {} : { sampleError: sample }),
    decidedAt: verdict.decidedAt,
  };
}

export class RolloutNotifier {
  constructor(
    private readonly bus: Bus,
    private readonly tenants: TenantDirectory,
    private readonly logger: Logger,
    private readonly options: { timeoutMs: number },
  ) {}

  async notify(
    rollout: RolloutRecord,
    progress: FunctionProgress,
    runtimeVersionArn: string,
  ): Promise<void> {
    const event = verdictEvent(rollout, progress, runtimeVersionArn);
    const body = JSON.stringify(event);
    this.bus.publish(Subjects.rolloutVerdict, new TextEncoder().encode(body));
    this.logger.info("rollout verdict", {
      function: event.functionArn,
      verdict: event.verdict,
      reason: event.reason,
    });
    const webhook = this.tenants.webhookFor(progress.tenantId);
    if (webhook === undefined) return;
    try {
      const response = await fetch(webhook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(webhook.secret, body),
          [WEBHOOK_EVENT_HEADER]: event.type,
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) {
        this.logger.warn("a tenant's webhook refused a rollout verdict", {
          tenantId: progress.tenantId,
          status: response.status,
        });
      }
    } catch (error) {
      this.logger.warn("a tenant's webhook could not be reached", {
        tenantId: progress.tenantId,
        error,
      });
    }
  }
}
