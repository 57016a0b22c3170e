/**
 * Trace context in the two spellings a Lambda handler may expect: W3C
 * `traceparent` (what OpenTelemetry propagates) and AWS X-Ray's trace header
 * (what Lambda puts in `Lambda-Runtime-Trace-Id` and `_X_AMZN_TRACE_ID`).
 *
 * The two carry the same three facts. An X-Ray trace id is
 * `1-<8 hex: epoch seconds>-<24 hex>`: its 32 hex digits, without the dashes,
 * are the W3C trace id; X-Ray's `Parent` is the W3C parent span id; `Sampled=1`
 * is the sampled trace flag. OpenTelemetry's AWS X-Ray propagator maps them
 * the same way, so a handler instrumented with it continues Gust's trace.
 *
 * References: https://www.w3.org/TR/trace-context/#traceparent-header and
 * https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
 */
import { TraceFlags, type SpanContext } from "@opentelemetry/api";

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const XRAY_ROOT = /^1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})$/;
const INVALID_TRACE_ID = "0".repeat(32);
const INVALID_SPAN_ID = "0".repeat(16);

function isSampled(context: SpanContext): boolean {
  return (context.traceFlags & TraceFlags.SAMPLED) !== 0;
}

/** `Root=1-…;Parent=…;Sampled=0|1` for a span context. */
export function toXRayTraceHeader(context: SpanContext): string {
  const { traceId, spanId } = context;
  return `Root=1-${traceId.slice(0, 8)}-${traceId.slice(8)};Parent=${spanId};Sampled=${isSampled(context) ? 1 : 0}`;
}

/** `00-<trace id>-<span id>-<flags>` for a span context. */
export function toTraceparent(context: SpanContext): string {
  return `00-${context.traceId}-${context.spanId}-${isSampled(context) ? "01" : "00"}`;
}

/**
 * The remote parent an X-Ray trace header names, or undefined when it names
 * none: a header without `Parent` starts a trace X-Ray knows but gives no
 * span to hang Gust's under. `Sampled=?` (undecided) counts as not sampled;
 * the sampler then decides.
 */
export function parseXRayTraceHeader(value: string): SpanContext | undefined {
  let traceId: string | undefined;
  let spanId: string | undefined;
  let sampled = false;
  for (const part of value.split(";")) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    const key = part.slice(0, at).trim();
    const field = part.slice(at + 1).trim();
    if (key === "Root") {
      const match = XRAY_ROOT.exec(field);
      if (match) traceId = `${match[1] ?? ""}${match[2] ?? ""}`.toLowerCase();
    } else if (key === "Parent") {
      const lower = field.toLowerCase();
      if (SPAN_ID.test(lower)) spanId = lower;
    } else if (key === "Sampled") {
      sampled = field === "1";
    }
  }
  if (traceId === undefined || spanId === undefined) return undefined;
  if (!TRACE_ID.test(traceId) || traceId === INVALID_TRACE_ID || spanId === INVALID_SPAN_ID) {
    return undefined;
  }
  return {
    traceId,
    spanId,
    traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
}

const RANDOM = Buffer.alloc(12);

function randomHex(bytes: number): string {
  for (let i = 0; i < bytes; i += 4) {
    RANDOM.writeUInt32BE((Math.random() * 2 ** 32) >>> 0, i);
  }
  return RANDOM.toString("hex", 0, bytes);
}

/**
 * Trace ids that are valid X-Ray trace ids too: the first 8 hex digits are
 * the start time in epoch seconds, as X-Ray requires, the other 24 random.
 * A handler that forwards `_X_AMZN_TRACE_ID` to X-Ray then sends a root it
 * accepts. Span ids are plain random.
 */
export class XRayIdGenerator {
  generateTraceId(): string {
    const seconds = Math.floor(Date.now() / 1000)
      .toString(16)
      .padStart(8, "0");
    return `${seconds.slice(-8)}${randomHex(12)}`;
  }

  generateSpanId(): string {
    for (;;) {
      const id = randomHex(8);
      if (id !== INVALID_SPAN_ID) return id;
    }
  }
}
