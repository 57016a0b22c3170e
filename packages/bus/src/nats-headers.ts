/**
 * Between Gust's plain header records and nats.js's multi-valued MsgHdrs.
 * Gust sends one value per name and reads the first.
 */
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";
import { EMPTY_HEADERS, normalizeHeaders } from "./names.js";
import type { Headers } from "./types.js";

/** Validated (throws InvalidBusArgumentError), and undefined when there is nothing to send. */
export function toNatsHeaders(headers: Headers | undefined): MsgHdrs | undefined {
  const normalized = normalizeHeaders(headers);
  const names = Object.keys(normalized);
  if (names.length === 0) return undefined;
  const h = natsHeaders();
  for (const name of names) h.set(name, normalized[name] ?? "");
  return h;
}

/**
 * nats.js decodes headers on first access and throws on a malformed block
 * (e.g. a name with a space, from a hand-written publisher); the caller
 * decides what to do then.
 */
export function fromNatsHeaders(read: () => MsgHdrs | undefined): Headers {
  const raw = read();
  if (raw === undefined) return EMPTY_HEADERS;
  const out: Record<string, string> = {};
  for (const [name, values] of raw) {
    const first = values[0];
    if (first !== undefined) out[name] = first;
  }
  return Object.freeze(out);
}
