import { LambdaErrors } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { readBody } from "./body.js";

const tooLarge = () => LambdaErrors.requestTooLarge("too large");

function streamOf(chunks: number[]): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
} {
  let cancelled = false;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const size = chunks[i++];
      if (size === undefined) controller.close();
      else controller.enqueue(new Uint8Array(size).fill(97));
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

function post(body: ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Request {
  return new Request("http://x/", { method: "POST", body, headers, duplex: "half" });
}

describe("readBody", () => {
  it("reads a chunked body within the limit", async () => {
    const { stream } = streamOf([3, 4, 5]);
    expect((await readBody(post(stream), 12, tooLarge)).byteLength).toBe(12);
  });

  it("stops reading a chunked body as soon as it passes the limit", async () => {
    const { stream, cancelled } = streamOf([8, 8, 8, 8]);
    await expect(readBody(post(stream), 10, tooLarge)).rejects.toMatchObject({
      errorType: "RequestTooLargeException",
    });
    expect(cancelled()).toBe(true);
  });

  it("refuses by Content-Length before reading", async () => {
    const { stream } = streamOf([1]);
    await expect(
      readBody(post(stream, { "content-length": "100" }), 10, tooLarge),
    ).rejects.toMatchObject({
      statusCode: 413,
    });
  });
});
