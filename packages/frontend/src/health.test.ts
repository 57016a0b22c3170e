import type { BusStatus } from "@gust/bus";
import { afterEach, describe, expect, it } from "vitest";
import { assessReadiness } from "./health.js";
import { startHarness, waitFor, type Harness } from "./test-util.js";

describe("health endpoints", () => {
  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  const get = async (path: string) => {
    const response = await harness!.app.request(path);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it("answers /healthz without credentials", async () => {
    harness = await startHarness({ frontend: { frontendId: "fe-health" } });
    const { status, body } = await get("/healthz");
    expect(status).toBe(200);
    expect(body).toEqual({ status: "ok", frontendId: "fe-health" });
  });

  it("is not ready until a worker is known, then ready", async () => {
    harness = await startHarness();
    const before = await get("/readyz");
    expect(before.status).toBe(503);
    expect(before.body["status"]).toBe("not ready");
    expect(before.body["reasons"]).toContain("no worker is known");

    await harness.addWorker({ id: "w1" });
    const after = await get("/readyz");
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ status: "ready", workers: 1 });
  });

  it("is not ready once closed", async () => {
    harness = await startHarness();
    await harness.addWorker({ id: "w1" });
    await waitFor(() => harness!.frontend.workers.liveCount() === 1, "the worker");
    expect((await get("/readyz")).status).toBe(200);
    await harness.frontend.close();
    const closed = await get("/readyz");
    expect(closed.status).toBe(503);
    expect(closed.body["reasons"]).toContain("frontend is not started");
    // Liveness is about the process, not its readiness.
    expect((await get("/healthz")).status).toBe(200);
  });

  it("is not ready until the fleet admission has heard its peers, then stays ready", async () => {
    harness = await startHarness({ frontend: { standalone: false } });
    await harness.addWorker({ id: "w1" });
    const early = await get("/readyz");
    expect(early.status).toBe(503);
    expect(early.body["reasons"]).toEqual(["admission has not heard the fleet yet"]);
    // The rejoin window: a few gossip intervals.
    const deadline = Date.now() + 5_000;
    while ((await get("/readyz")).status !== 200) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(harness.frontend.workers.liveCount()).toBe(1);
  });

  it("does not let the probe paths bypass authentication for other methods", async () => {
    harness = await startHarness();
    const response = await harness.app.request("/healthz", { method: "POST", body: "{}" });
    expect(response.status).toBe(403);
  });
});

describe("assessReadiness", () => {
  const sources = (started: boolean, workers: number) => ({
    frontendId: "fe",
    isStarted: () => started,
    workers: { liveCount: () => workers },
  });

  it.each<[BusStatus | undefined, boolean]>([
    [undefined, false],
    ["disconnected", false],
    ["connected", true],
    ["reconnected", true],
  ])("bus %s → ready %s", (status, ready) => {
    expect(assessReadiness(sources(true, 1), status).ready).toBe(ready);
  });

  it("names every reason at once", () => {
    expect(assessReadiness(sources(false, 0), "disconnected").reasons).toEqual([
      "frontend is not started",
      "bus is disconnected",
      "no worker is known",
    ]);
  });
});
