/**
 * A small HTTP server with `/healthz` and `/readyz` for the services that
 * serve no HTTP of their own (workers, the coordinator), so an orchestrator
 * such as Kubernetes can probe them. Frontends answer the same paths on their
 * API port (@gust/frontend's health checks).
 *
 * Liveness is "the process serves HTTP": a service that lost NATS reconnects
 * by itself, and restarting it would not bring NATS back. Readiness is "the
 * bus is connected", plus whatever the caller adds.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Bus, BusStatus } from "@gust/bus";
import { ConfigError } from "@gust/protocol";

export interface HealthServerOptions {
  /** @default DEFAULT_HEALTH_HOST: probes come from outside the pod or container */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** The service's name in the answers, e.g. "worker w1". */
  service: string;
  bus: Bus;
  /** More reasons not to be ready (e.g. draining); empty when there are none. */
  notReadyReasons?: () => string[];
}

export interface HealthServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_HEALTH_HOST = "0.0.0.0";

function answer(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { port } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`health port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  let busStatus: BusStatus | undefined;
  const removeListener = options.bus.onStatus((status) => {
    busStatus = status;
  });

  const readinessReasons = (): string[] => {
    const reasons: string[] = [];
    if (busStatus === undefined) reasons.push("bus has not connected yet");
    else if (busStatus === "disconnected") reasons.push("bus is disconnected");
    reasons.push(...(options.notReadyReasons?.() ?? []));
    return reasons;
  };

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      answer(response, 405, { status: "method not allowed" });
      return;
    }
    if (path === "/healthz") {
      answer(response, 200, { status: "ok", service: options.service });
    } else if (path === "/readyz") {
      const reasons = readinessReasons();
      if (reasons.length === 0)
        answer(response, 200, { status: "ready", service: options.service });
      else answer(response, 503, { status: "not ready", service: options.service, reasons });
    } else {
      answer(response, 404, { status: "not found", paths: ["/healthz", "/readyz"] });
    }
  };

  const server = createServer((request, response) => {
    try {
      handle(request, response);
    } catch {
      // A probe must never take the service down.
      if (!response.headersSent) answer(response, 500, { status: "error" });
      else response.destroy();
    }
  });
  // Probes hold no long connections: idle ones would only delay shutdown.
  server.keepAliveTimeout = 1_000;

  return new Promise((resolve, reject) => {
    server.once("error", (error) => {
      removeListener();
      reject(error);
    });
    server.listen(port, options.host ?? DEFAULT_HEALTH_HOST, () => {
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            removeListener();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
