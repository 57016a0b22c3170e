/**
 * Reading a request body with a hard size limit. Content-Length is checked
 * before a byte is read, and the count is enforced while reading too, since a
 * chunked request has no Content-Length and a client may lie about it.
 *
 * Served by node:http, the body is read from the IncomingMessage itself
 * (readIncomingBody): a web ReadableStream over it costs more than the rest
 * of an invocation's work in the frontend. Both readers behave alike.
 */
import type { IncomingMessage } from "node:http";
import { LambdaApiError } from "@gust/protocol";

const EMPTY = new Uint8Array(0);

function unreadable(cause: unknown): LambdaApiError {
  // The client went away or broke the framing: its fault, not Gust's.
  return new LambdaApiError(
    "InvalidRequestContentException",
    400,
    "The request body could not be read",
    {},
    { cause },
  );
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** The body of a request node:http is serving, which nothing has read yet. */
export function readIncomingBody(
  incoming: IncomingMessage,
  limit: number,
  tooLarge: () => LambdaApiError,
): Promise<Uint8Array> {
  const declared = incoming.headers["content-length"];
  if (declared !== undefined) {
    const length = Number(declared);
    if (Number.isFinite(length) && length > limit) return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const done = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        done();
        // Stop reading at once, as cancelling the web stream does.
        incoming.destroy();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      // A copy: a chunk is a view into the socket's much larger read buffer.
      resolve(concat(chunks, size));
    };
    const onError = (cause: unknown) => {
      done();
      reject(unreadable(cause));
    };
    const onClose = () => {
      if (!incoming.complete) onError(new Error("the client closed the connection mid-body"));
    };
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
    incoming.on("close", onClose);
  });
}

export async function readBody(
  request: Request,
  limit: number,
  tooLarge: () => LambdaApiError,
): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const length = Number(declared);
    if (Number.isFinite(length) && length > limit) throw tooLarge();
  }
  const stream = request.body as ReadableStream<Uint8Array> | null;
  if (stream === null) return EMPTY;
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (cause) {
        throw unreadable(cause);
      }
      const { done, value } = chunk;
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        // Stop reading at once; the server discards the rest of the upload.
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  return concat(chunks, size);
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 text, or undefined when the bytes are not valid UTF-8. */
export function utf8(bytes: Uint8Array): string | undefined {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}
