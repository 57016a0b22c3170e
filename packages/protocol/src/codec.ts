/**
 * The one codec: msgpack on the wire, with a structural check on decode so
 * that garbage from the bus becomes a DecodeError, never a TypeError deep in a
 * handler.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { DecodeError } from "./errors.js";
import type { Message, MessageType } from "./messages.js";

/**
 * One encoder for the process: msgpack's `encode(value, options)` builds a
 * new Encoder, and its buffer, on every call, which showed on the invoke
 * path. `Encoder.encode` returns a copy and handles re-entry itself; its
 * buffer stays as large as the largest message encoded (a few MB at most).
 */
const encoder = new Encoder({ ignoreUndefined: true });
/** Likewise one decoder: `decode()` builds one per call. Re-entry is handled by Decoder itself. */
const decoder = new Decoder();
const msgpackDecode = (bytes: Uint8Array): unknown => decoder.decode(bytes);

export function encode(message: Message): Uint8Array {
  return encoder.encode(message);
}

type FieldKind = "string" | "number" | "boolean" | "bytes" | "object" | "array";
type Shape = Readonly<Record<string, FieldKind>>;

/** Required fields of each message type; optional fields are not listed. */
const SHAPES: { readonly [T in MessageType]: Shape } = {
  invoke: { requestId: "string", target: "object", payload: "bytes", tailLog: "boolean" },
  "invoke.result": {
    requestId: "string",
    outcome: "string",
    payload: "bytes",
    executedVersion: "string",
    startKind: "string",
    durationMs: "number",
  },
  "invoke.rejected": { requestId: "string", error: "object" },
  "worker.heartbeat": {
    workerId: "string",
    seq: "number",
    sentAt: "number",
    intervalMs: "number",
    capacity: "object",
    used: "object",
    warm: "array",
    draining: "boolean",
  },
  "worker.gone": { workerId: "string" },
  "worker.discover": { frontendId: "string" },
  "worker.census": { frontendIds: "array" },
  "worker.census.reply": { workerId: "string", running: "object" },
  event: {
    requestId: "string",
    tenantId: "string",
    functionName: "string",
    payload: "bytes",
    enqueuedAt: "number",
  },
};

const TARGET_SHAPE: Shape = {
  tenantId: "string",
  name: "string",
  functionArn: "string",
  runtime: "string",
  handler: "string",
  timeoutSec: "number",
  memoryMb: "number",
  environment: "object",
  codeSha256: "string",
  revisionId: "string",
};

function isKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case "bytes":
      return value instanceof Uint8Array;
    case "array":
      return Array.isArray(value);
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    default:
      return typeof value === kind;
  }
}

function check(value: Record<string, unknown>, shape: Shape, where: string): void {
  for (const [field, kind] of Object.entries(shape)) {
    if (!isKind(value[field], kind)) {
      throw new DecodeError(`${where}: field ${field} is not ${kind}`);
    }
  }
}

export function decode(bytes: Uint8Array): Message {
  let value: unknown;
  try {
    value = msgpackDecode(bytes);
  } catch (cause) {
    throw new DecodeError("message is not valid msgpack", { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DecodeError("message is not a msgpack map");
  }
  const record = value as Record<string, unknown>;
  const type = record["type"];
  if (typeof type !== "string" || !Object.hasOwn(SHAPES, type)) {
    throw new DecodeError(`unknown message type ${JSON.stringify(type)}`);
  }
  check(record, SHAPES[type as MessageType], type);
  if (type === "invoke")
    check(record["target"] as Record<string, unknown>, TARGET_SHAPE, "invoke.target");
  return value as Message;
}

/** Decode and require one of the given types. */
export function decodeAs<T extends MessageType>(
  bytes: Uint8Array,
  ...types: T[]
): Extract<Message, { type: T }> {
  const message = decode(bytes);
  if (!(types as string[]).includes(message.type)) {
    throw new DecodeError(`expected ${types.join(" or ")}, got ${message.type}`);
  }
  return message as Extract<Message, { type: T }>;
}

/** Stored records (KV values) use the same msgpack codec; shape checks are the reader's. */
export function encodeRecord(value: object): Uint8Array {
  return encoder.encode(value);
}

export function decodeRecord(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = msgpackDecode(bytes);
  } catch (cause) {
    throw new DecodeError("record is not valid msgpack", { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DecodeError("record is not a msgpack map");
  }
  return value as Record<string, unknown>;
}
