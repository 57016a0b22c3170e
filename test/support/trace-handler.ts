/** A function that shows the trace context its sandbox was handed. */
import { zipFiles } from "@gust/bundle";

/** Returns, and posts to `event.notify` when asked, `_X_AMZN_TRACE_ID` and `TRACEPARENT`. */
export const TRACE_HANDLER = `
exports.handler = async (event, context) => {
  const seen = {
    xray: process.env._X_AMZN_TRACE_ID ?? null,
    traceparent: process.env.TRACEPARENT ?? null,
  };
  if (event.notify) {
    await fetch(event.notify, {
      method: "POST",
      body: JSON.stringify({ requestId: context.awsRequestId, event: seen }),
    });
  }
  return seen;
};
`;

export interface SeenTrace {
  xray: string | null;
  traceparent: string | null;
}

export function traceHandlerZip(): Promise<Uint8Array> {
  return zipFiles([{ path: "index.js", data: TRACE_HANDLER }]);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

/** The trace and span ids of a sampled traceparent; throws on anything else. */
export function parseTraceparent(value: string | null): { traceId: string; spanId: string } {
  const match = TRACEPARENT.exec(value ?? "");
  if (!match) throw new Error(`the sandbox was handed no valid traceparent: ${String(value)}`);
  return { traceId: match[1]!, spanId: match[2]! };
}
