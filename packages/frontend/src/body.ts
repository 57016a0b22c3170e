/**
 * Reading a request body with a hard size limit. Content-Length is checked
 * before a byte is read, and the count is enforced while reading too, since a
 * chunked request has no Content-Length and a client may lie about it.
 *
 * Served by node:http, the body is read from the IncomingMessage itself
 * (readIncomingBody): a web ReadableStream over it costs more than the rest
 * of an invocation's work in the frontend. Both readers behave alike.
 *
 * Each chunk goes to a sink as it arrives: by default the chunks are
 * collected into one buffer; a code upload's sink decodes its zip instead
 * (code-request.ts), so the body is never held whole.
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

/**
 * Takes a body chunk by chunk. A chunk may be a view of a much larger
 * buffer (node:http's socket reads): copy what is kept long.
 */
export interface BodySink<T> {
  write(chunk: Uint8Array): void;
  end(): T;
}

/** The default sink: the body as one buffer. */
class CollectedBody implements BodySink<Uint8Array> {
  readonly #chunks: Uint8Array[] = [];
  #size = 0;
  /** Whether a lone chunk is the body as it is (a web stream's chunks are its own). */
  constructor(readonly ownsChunks: boolean) {}
  write(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
  }
  end(): Uint8Array {
    if (this.#chunks.length === 0) return EMPTY;
    if (this.ownsChunks && this.#chunks.length === 1) return this.#chunks[0]!;
    // A copy: a socket chunk is a view into the socket's much larger read buffer.
    const body = new Uint8Array(this.#size);
    let offset = 0;
    for (const chunk of this.#chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    this.#chunks.length = 0;
    return body;
  }
}

/** The body of a request node:http is serving, which nothing has read yet. */
export function readIncomingBody(
  incoming: IncomingMessage,
  limit: number,
  tooLarge: () => LambdaApiError,
): Promise<Uint8Array> {
  return streamIncomingBody(incoming, limit, tooLarge, new CollectedBody(false));
}

/** The body of a request node:http is serving, chunk by chunk into `sink`. */
export function streamIncomingBody<T>(
  incoming: IncomingMessage,
  limit: number,
  tooLarge: () => LambdaApiError,
  sink: BodySink<T>,
): Promise<T> {
  const declared = incoming.headers["content-length"];
  if (declared !== undefined) {
    const length = Number(declared);
    if (Number.isFinite(length) && length > limit) return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
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
      try {
        sink.write(chunk);
      } catch (error) {
        done();
        incoming.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const onEnd = () => {
      done();
      try {
        resolve(sink.end());
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
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

export function readBody(
  request: Request,
  limit: number,
  tooLarge: () => LambdaApiError,
): Promise<Uint8Array> {
  return streamBody(request, limit, tooLarge, new CollectedBody(true));
}

/** A request's body through its web stream, chunk by chunk into `sink`. */
export async function streamBody<T>(
  request: Request,
  limit: number,
  tooLarge: () => LambdaApiError,
  sink: BodySink<T>,
): Promise<T> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const length = Number(declared);
    if (Number.isFinite(length) && length > limit) throw tooLarge();
  }
  const stream = request.body as ReadableStream<Uint8Array> | null;
  if (stream === null) return sink.end();
  const reader = stream.getReader();
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
      try {
        sink.write(value);
      } catch (error) {
        await reader.cancel().catch(() => undefined);
        throw error;
      }
    }
  } finally {
    reader.releaseLock();
  }
  return sink.end();
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
