/** A loopback HTTP server that handlers call, so tests see Event invocations run. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { WorkerOptions } from "@gust/worker";

/**
 * Worker options for tests whose handlers call a NotifyServer: a jailed
 * sandbox reaches nothing on the host's loopback (that is what the jail is
 * for, and test/hostile-tenant.test.ts shows it), so these run their
 * sandboxes unjailed, with every tenant trusted.
 */
export const CALLS_BACK_TO_THE_HOST: WorkerOptions = { jail: false, trustTenants: true };
/** The same for a local fleet's workers. */
export const CALLS_BACK_TO_THE_HOST_FLEET = { jail: false, trustTenants: true } as const;

export interface NotifyServer {
  url: string;
  received: Array<{ requestId: string; event: Record<string, unknown> }>;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startNotifyServer(): Promise<NotifyServer> {
  const received: NotifyServer["received"] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push(
        JSON.parse(Buffer.concat(chunks).toString("utf8")) as NotifyServer["received"][number],
      );
      response.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} notifications, got ${received.length}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
