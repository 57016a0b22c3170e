import { encode, Subjects, type EventInvocation } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { resolveDrainOptions } from "./drain.js";
import { serveFrontend, type ServedFrontend } from "./frontend.js";
import {
  answers,
  call,
  errorOf,
  startHarness,
  TENANT_A,
  waitFor,
  type FakeWorker,
  type Harness,
} from "./test-util.js";

const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

let h: Harness | undefined;
let served: ServedFrontend | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
  await h?.close();
  h = undefined;
});

/** A harness with one function and a worker that holds each invocation until its gate opens. */
async function gatedFrontend(): Promise<{ h: Harness; worker: FakeWorker; release: () => void }> {
  h = await startHarness({ frontend: { eventRetryDelaysMs: [20, 40] } });
  await h.createFunction("slow");
  const held = gate();
  const worker = await h.addWorker({
    id: "w1",
    behaviour: async (request) => {
      await held.promise;
      return answers.ok(JSON.parse(Buffer.from(request.payload).toString("utf8")));
    },
  });
  worker.heartbeatEvery(100);
  return { h, worker, release: held.open };
}

const readiness = async (app: Harness["app"]) => {
  const response = await app.request("/readyz");
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe("draining a frontend", () => {
  it("turns unready at once, serves during the delay, then refuses, and waits for requests in progress", async () => {
    const { h, worker, release } = await gatedFrontend();
    const before = call(h.app, "POST", invokePath("slow"), { n: 1 });
    await waitFor(() => worker.requests.length === 1, "the first invocation to reach the worker");

    let hookRan = false;
    h.frontend.onDrain(() => {
      hookRan = true;
    });
    let stoppedAccepting = false;
    let drained = false;
    const draining = h.frontend
      .drain({ delayMs: 300, timeoutMs: 10_000 }, () => {
        stoppedAccepting = true;
      })
      .then(() => (drained = true));

    expect(hookRan).toBe(true);
    const unready = await readiness(h.app);
    expect(unready.status).toBe(503);
    expect(unready.body["reasons"]).toEqual(["frontend is draining"]);
    // Liveness stays: the process is fine, it is leaving.
    expect((await h.app.request("/healthz")).status).toBe(200);

    // Within the delay the load balancer may not know yet: served, with the connection closed after.
    const during = call(h.app, "POST", invokePath("slow"), { n: 2 });
    await waitFor(() => worker.requests.length === 2, "the second invocation to reach the worker");

    await waitFor(() => stoppedAccepting, "the frontend to stop accepting", 5_000);
    const refused = await call(h.app, "POST", invokePath("slow"), { n: 3 });
    expect(refused.headers.get("connection")).toBe("close");
    const error = await errorOf(refused);
    expect(error.status).toBe(503);
    expect(error.type).toBe("ServiceException");
    expect(error.body).toMatchObject({ Type: "Service" });
    expect(worker.requests).toHaveLength(2);

    // Both requests in progress are still awaited.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(drained).toBe(false);
    release();
    const [first, second] = await Promise.all([before, during]);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ n: 1 });
    expect(second.status).toBe(200);
    expect(second.headers.get("connection")).toBe("close");
    expect(await second.json()).toEqual({ n: 2 });
    await draining;
    expect(drained).toBe(true);
  });

  it("stops waiting at the drain timeout", async () => {
    const { h, worker, release } = await gatedFrontend();
    const stuck = call(h.app, "POST", invokePath("slow"), {});
    await waitFor(() => worker.requests.length === 1, "the invocation to reach the worker");
    const started = Date.now();
    await h.frontend.drain({ delayMs: 0, timeoutMs: 300 });
    const tookMs = Date.now() - started;
    expect(tookMs).toBeGreaterThanOrEqual(250);
    expect(tookMs).toBeLessThan(5_000);
    expect(h.logLines.some((line) => line.includes("frontend drain cut short"))).toBe(true);
    release();
    expect((await stuck).status).toBe(200);
  });

  it("is cut short by its abort signal", async () => {
    const { h, worker, release } = await gatedFrontend();
    const stuck = call(h.app, "POST", invokePath("slow"), {});
    await waitFor(() => worker.requests.length === 1, "the invocation to reach the worker");
    const abort = new AbortController();
    const started = Date.now();
    const draining = h.frontend.drain({ delayMs: 60_000, timeoutMs: 60_000, signal: abort.signal });
    setTimeout(() => abort.abort(), 100);
    await draining;
    expect(Date.now() - started).toBeLessThan(10_000);
    release();
    await stuck;
  });

  it("finishes the Event invocation in progress and takes no new one", async () => {
    const { h, worker, release } = await gatedFrontend();
    const queued = await call(
      h.app,
      "POST",
      invokePath("slow"),
      { job: 1 },
      {
        headers: { "x-amz-invocation-type": "Event" },
      },
    );
    expect(queued.status).toBe(202);
    await waitFor(() => worker.requests.length === 1, "the event to reach the worker");

    const draining = h.frontend.drain({ delayMs: 50, timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const queue = await h.infra.eventQueue();
    release();
    await draining;
    expect(h.logLines.some((line) => line.includes("event invocation succeeded"))).toBe(true);
    expect(await queue.pending()).toBe(0);

    // A job queued after the drain stays in the queue for another frontend.
    const later: EventInvocation = {
      type: "event",
      requestId: "after-the-drain",
      tenantId: TENANT_A.id,
      functionName: "slow",
      payload: new TextEncoder().encode("{}"),
      enqueuedAt: Date.now(),
    };
    await queue.enqueue(Subjects.events(TENANT_A.id), encode(later));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await queue.pending()).toBe(1);
    expect(worker.requests).toHaveLength(1);
  });

  it("over HTTP: refuses new connections once it stops accepting", async () => {
    const { h } = await gatedFrontend();
    served = await serveFrontend(h.frontend, { host: "127.0.0.1", port: 0 });
    const url = served.url;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const draining = served.drain({ delayMs: 200, timeoutMs: 5_000 });
    const unready = await fetch(`${url}/readyz`);
    expect(unready.status).toBe(503);
    expect(unready.headers.get("connection")).not.toBe("close");
    await draining;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it("checks its options", () => {
    expect(resolveDrainOptions({})).toMatchObject({ delayMs: 5_000, timeoutMs: 30_000 });
    expect(() => resolveDrainOptions({ delayMs: -1 })).toThrow(/delayMs/);
    expect(() => resolveDrainOptions({ timeoutMs: 1.5 })).toThrow(/timeoutMs/);
  });
});
