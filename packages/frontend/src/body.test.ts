import http from "node:http";
import type { AddressInfo } from "node:net";
import { LambdaErrors } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { readBody, readIncomingBody } from "./body.js";

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

describe("readIncomingBody", () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** A server that reads each request's body with `limit` and hands over the outcome. */
  async function serve(limit: number): Promise<{ port: number; next: () => Promise<unknown> }> {
    const outcomes: Array<(outcome: unknown) => void> = [];
    const settled: unknown[] = [];
    server = http.createServer((request, response) => {
      readIncomingBody(request, limit, tooLarge).then(
        (body) => {
          const outcome = { body: Buffer.from(body).toString("utf8") };
          const waiter = outcomes.shift();
          if (waiter) waiter(outcome);
          else settled.push(outcome);
          response.end("ok");
        },
        (error: unknown) => {
          const waiter = outcomes.shift();
          if (waiter) waiter(error);
          else settled.push(error);
          if (!response.destroyed) response.writeHead(413).end();
        },
      );
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return {
      port: (server.address() as AddressInfo).port,
      next: () =>
        settled.length > 0
          ? Promise.resolve(settled.shift())
          : new Promise((resolve) => outcomes.push(resolve)),
    };
  }

  function send(port: number, chunks: string[], headers: Record<string, string> = {}) {
    const request = http.request({ port, host: "127.0.0.1", method: "POST", headers });
    request.on("error", () => undefined);
    request.on("response", (response) => response.resume());
    for (const chunk of chunks) request.write(chunk);
    request.end();
    return request;
  }

  it("reads a body sent in pieces, as one copy", async () => {
    const { port, next } = await serve(12);
    send(port, ["abc", "defg", "hijkl"]);
    expect(await next()).toEqual({ body: "abcdefghijkl" });
  });

  it("reads an empty body", async () => {
    const { port, next } = await serve(12);
    send(port, [], { "content-length": "0" });
    expect(await next()).toEqual({ body: "" });
  });

  it("refuses by Content-Length before reading, and past the limit while reading", async () => {
    const { port, next } = await serve(10);
    send(port, ["x".repeat(100)], { "content-length": "100" });
    expect(await next()).toMatchObject({ statusCode: 413 });
    send(port, ["x".repeat(8), "x".repeat(8)]);
    expect(await next()).toMatchObject({ errorType: "RequestTooLargeException" });
  });

  it("fails with a client error when the client goes away mid-body", async () => {
    const { port, next } = await serve(1000);
    const request = http.request({
      port,
      host: "127.0.0.1",
      method: "POST",
      headers: { "content-length": "100" },
    });
    request.on("error", () => undefined);
    request.write("only part of it");
    setTimeout(() => request.destroy(), 50);
    expect(await next()).toMatchObject({
      statusCode: 400,
      errorType: "InvalidRequestContentException",
    });
  });
});
