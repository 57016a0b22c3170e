/**
 * What the bench's bare servers (echo-server.ts, relay-server.ts) share: a
 * node:http server on a random loopback port, printed on stdout, that reads
 * each request's body and hands it to `handle` with the sleep its path asks
 * for (`POST /sleep/<ms>`); `answer` sends a 200 JSON response.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type BareHandler = (body: Buffer, sleepMs: number, answer: (body: Buffer) => void) => void;

export function serveBare(handle: BareHandler): Server {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    const sleep = /^\/sleep\/(\d+)$/.exec(request.url ?? "");
    const sleepMs = sleep ? Number(sleep[1]) : 0;
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      handle(Buffer.concat(chunks), sleepMs, (body) => {
        response.writeHead(200, {
          "content-type": "application/json",
          "content-length": body.length,
        });
        response.end(body);
      });
    });
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
  });
  return server;
}
