/**
 * A worker that dies mid-invocation never replies: the frontend must notice
 * its silence and answer, not wait for the function's timeout.
 */
import { afterEach, describe, expect, it } from "vitest";
import { call, errorOf, startHarness, waitFor, type Harness } from "./test-util.js";

const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

// The same for a worker on the bus and for one in the frontend's own process (`gust dev`).
describe.each([
  { where: "on the bus", localWorkers: [] },
  { where: "in the frontend's process", localWorkers: ["w1"] },
])("a worker $where, lost during an invocation", ({ localWorkers }) => {
  it("ends a synchronous Invoke with ServiceException within a few heartbeat intervals", async () => {
    h = await startHarness({ localWorkers });
    await h.createFunction("long", { Timeout: 60 });
    const worker = await h.addWorker({
      id: "w1",
      intervalMs: 100,
      behaviour: () => ({ kind: "silent" }),
    });
    worker.heartbeatEvery(100);
    const started = Date.now();
    const pending = call(h.app, "POST", invokePath("long"), {});
    await waitFor(() => worker.requests.length === 1, "the invocation to reach the worker");
    expect(worker.transports).toEqual([localWorkers.length === 0 ? "bus" : "local"]);
    // Dies: no reply, no more heartbeats, no goodbye.
    worker.stop();
    const error = await errorOf(await pending);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(error.status).toBe(500);
    expect(error.type).toBe("ServiceException");
    expect(error.body["message"]).toMatch(/left the fleet before it answered.*heartbeats stopped/);
    expect(h.frontend.workers.workerIds()).toEqual([]);
  });

  it("does not end invocations on workers that keep their heartbeats", async () => {
    h = await startHarness({ localWorkers, frontend: { invokeTimeoutMarginMs: 0 } });
    await h.createFunction("patient", { Timeout: 1 });
    const worker = await h.addWorker({
      id: "w1",
      intervalMs: 100,
      behaviour: () => ({ kind: "silent" }),
    });
    worker.heartbeatEvery(100);
    const started = Date.now();
    const error = await errorOf(await call(h.app, "POST", invokePath("patient"), {}));
    // Only the function's own timeout ended it.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(error.type).toBe("ServiceException");
    expect(error.body["message"]).toMatch(/did not answer within 1000 ms/);
    worker.stop();
  });
});

describe("a worker lost during an invocation", () => {
  it("retries an Event invocation about a second later, on a worker still alive", async () => {
    // The function-error delay is a minute; a lost worker is Gust's failure, not the function's.
    h = await startHarness();
    await h.createFunction("queued");
    const doomed = await h.addWorker({
      id: "w1",
      intervalMs: 100,
      behaviour: () => ({ kind: "silent" }),
    });
    doomed.heartbeatEvery(100);
    const queued = await call(
      h.app,
      "POST",
      invokePath("queued"),
      { job: 1 },
      {
        headers: { "x-amz-invocation-type": "Event" },
      },
    );
    expect(queued.status).toBe(202);
    await waitFor(() => doomed.requests.length === 1, "the event to reach the first worker");
    doomed.stop();
    const survivor = await h.addWorker({ id: "w2" });
    survivor.heartbeatEvery(100);
    const lost = Date.now();
    await waitFor(() => survivor.requests.length === 1, "the event to run again", 10_000);
    expect(Date.now() - lost).toBeLessThan(8_000);
    expect(survivor.requests[0]!.requestId).toBe(doomed.requests[0]!.requestId);
    await waitFor(
      () => h!.logLines.some((line) => line.includes("event invocation succeeded")),
      "the retry to succeed",
    );
    survivor.stop();
  });
});
