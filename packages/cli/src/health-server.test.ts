import type { Bus, BusStatus } from "@gust/bus";
import { MemoryBus } from "@gust/bus";
import { afterEach, describe, expect, it } from "vitest";
import { startHealthServer, type HealthServer } from "./health-server.js";

/** A bus whose connection state the test sets; nothing else is used. */
function busWithStatus(initial: BusStatus): { bus: Bus; set(status: BusStatus): void } {
  const listeners = new Set<(status: BusStatus) => void>();
  let current = initial;
  const bus = {
    onStatus(listener: (status: BusStatus) => void) {
      listeners.add(listener);
      queueMicrotask(() => listener(current));
      return () => listeners.delete(listener);
    },
  } as unknown as Bus;
  return {
    bus,
    set(status) {
      current = status;
      for (const listener of listeners) listener(status);
    },
  };
}

describe("health server", () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${server!.url}${path}`, init);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it("is live and ready while the bus is connected", async () => {
    const bus = new MemoryBus();
    server = await startHealthServer({ host: "127.0.0.1", port: 0, service: "worker w1", bus });
    expect(await get("/healthz")).toEqual({
      status: 200,
      body: { status: "ok", service: "worker w1" },
    });
    expect(await get("/readyz")).toEqual({
      status: 200,
      body: { status: "ready", service: "worker w1" },
    });
    await bus.close();
  });

  it("is not ready while the bus is disconnected, and ready again on reconnect", async () => {
    const status = busWithStatus("disconnected");
    server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      service: "coordinator",
      bus: status.bus,
    });
    const down = await get("/readyz");
    expect(down.status).toBe(503);
    expect(down.body["reasons"]).toEqual(["bus is disconnected"]);
    // Liveness does not follow the bus: restarting would not bring NATS back.
    expect((await get("/healthz")).status).toBe(200);
    status.set("reconnected");
    expect((await get("/readyz")).status).toBe(200);
  });

  it("adds the caller's reasons", async () => {
    const status = busWithStatus("connected");
    let draining = false;
    server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      service: "worker",
      bus: status.bus,
      notReadyReasons: () => (draining ? ["draining"] : []),
    });
    expect((await get("/readyz")).status).toBe(200);
    draining = true;
    expect(await get("/readyz")).toMatchObject({ status: 503, body: { reasons: ["draining"] } });
  });

  it("answers other paths and methods with an error, not a crash", async () => {
    server = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      service: "worker",
      bus: busWithStatus("connected").bus,
    });
    expect((await get("/nope")).status).toBe(404);
    expect((await get("/readyz", { method: "POST", body: "x" })).status).toBe(405);
    expect((await get("/healthz")).status).toBe(200);
  });

  it("rejects a bad port", async () => {
    await expect(
      startHealthServer({ port: 70_000, service: "worker", bus: busWithStatus("connected").bus }),
    ).rejects.toThrow(/health port/);
  });
});
