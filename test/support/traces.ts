/** Assertions on the spans of one trace, as an OTLP receiver got them. */
import { expect } from "vitest";
import type { ReceivedSpan } from "./otlp-receiver.js";

/** Every span of a synchronous invocation, each made once. */
export const SYNC_SPANS = [
  "gust.invoke",
  "gust.worker.request",
  "gust.worker.invoke",
  "gust.sandbox.acquire",
  "gust.handler",
];

export function only(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((span) => span.name === name);
  expect(found, `spans named ${name}`).toHaveLength(1);
  return found[0]!;
}

/** One root, and every other span's parent is in the trace. */
export function expectConnected(spans: ReceivedSpan[], rootParent?: string): ReceivedSpan {
  const ids = new Set(spans.map((span) => span.spanId));
  const roots = spans.filter(
    (span) => span.parentSpanId === rootParent || !ids.has(span.parentSpanId ?? ""),
  );
  expect(
    roots.map((span) => span.name),
    "spans whose parent is not in the trace",
  ).toHaveLength(1);
  expect(roots[0]!.parentSpanId).toBe(rootParent);
  return roots[0]!;
}

/** The span each span hangs under, by name. */
export function parentName(spans: ReceivedSpan[], span: ReceivedSpan): string | undefined {
  return spans.find((candidate) => candidate.spanId === span.parentSpanId)?.name;
}
