/**
 * Reading a request body with a hard size limit. Content-Length is checked
 * before a byte is read, and the count is enforced while reading too, since a
 * chunked request has no Content-Length and a client may lie about it.
 */
import { LambdaApiError } from "@gust/protocol";

const EMPTY = new Uint8Array(0);

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
        // The client went away or broke the framing: its fault, not Gust's.
        throw new LambdaApiError(
          "InvalidRequestContentException",
          400,
          "The request body could not be read",
          {},
          { cause },
        );
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
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
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
