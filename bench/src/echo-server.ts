/**
 * The ceiling: a bare node:http server that reads the request body and
 * answers with it. `POST /sleep/<ms>` waits that long before answering, the
 * ceiling for a handler that sleeps. Run as its own process; prints its
 * port on stdout.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  const sleep = /^\/sleep\/(\d+)$/.exec(request.url ?? "");
  const delayMs = sleep ? Number(sleep[1]) : 0;
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks);
    const answer = () => {
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": body.length,
      });
      response.end(body);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
