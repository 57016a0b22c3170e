import { encode, Subjects, type EventInvocation } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import {
  answers,
  call,
  startHarness,
  TENANT_A,
  TENANT_B,
  waitFor,
  type Harness,
  type HarnessOptions,
} from "./test-util.js";

const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;
const EVENT = { "x-amz-invocation-type": "Event" };

/** Fast timings so retries and backoff happen within a test. */
const FAST: HarnessOptions["frontend"] = {
  eventRetryDelaysMs: [20, 40],
  eventThrottleBackoffMs: 5,
  eventThrottleMaxBackoffMs: 20,
  eventThrottleHoldMs: 60,
};

let h: Harness | undefined;
async function harness(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness({ ...options, frontend: { ...FAST, ...options.frontend } });
  return h;
}
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Event invocations", () => {
  it("answer 202 at once and run later through a worker", async () => {
    const h = await harness();
    await h.createFunction("later");
    const worker = await h.addWorker({ id: "w1" });
    const response = await call(h.app, "POST", invokePath("later"), { job: 7 }, { headers: EVENT });
    expect(response.status).toBe(202);
    expect(await response.text()).toBe("");
    const requestId = response.headers.get("x-amzn-requestid");
    await waitFor(() => worker.requests.length === 1, "the event to run");
    expect(worker.requests[0]!.requestId).toBe(requestId);
    expect(JSON.parse(Buffer.from(worker.requests[0]!.payload).toString())).toEqual({ job: 7 });
    await waitFor(
      () => h.logLines.some((l) => l.includes("event invocation succeeded")),
      "success log",
    );
    expect(await (await h.infra.eventQueue()).pending()).toBe(0);
  });

  it("are retried on function error until 3 attempts in all, then dropped", async () => {
    const h = await harness();
    await h.createFunction("always-fails");
    const worker = await h.addWorker({ id: "w1", behaviour: () => answers.functionError() });
    expect(
      (await call(h.app, "POST", invokePath("always-fails"), {}, { headers: EVENT })).status,
    ).toBe(202);
    await waitFor(() => worker.requests.length === 3, "three attempts");
    await waitFor(
      () => h.logLines.some((l) => l.includes("failed on its last attempt")),
      "drop log",
    );
    await sleep(150);
    expect(worker.requests).toHaveLength(3);
    expect(new Set(worker.requests.map((r) => r.requestId)).size).toBe(1);
    expect(await (await h.infra.eventQueue()).pending()).toBe(0);
  });

  it("stop retrying once an attempt succeeds", async () => {
    const h = await harness();
    await h.createFunction("second-time-lucky");
    let calls = 0;
    const worker = await h.addWorker({
      id: "w1",
      behaviour: () => (++calls === 1 ? answers.functionError() : answers.ok("fine")),
    });
    await call(h.app, "POST", invokePath("second-time-lucky"), {}, { headers: EVENT });
    await waitFor(() => worker.requests.length === 2, "a retry");
    await sleep(150);
    expect(worker.requests).toHaveLength(2);
  });

  it("do not spend attempts on throttles", async () => {
    // One attempt in all: a throttle counted as an attempt would drop the event.
    const h = await harness({
      tenants: [{ ...TENANT_A, maxConcurrency: 1 }, TENANT_B],
      frontend: { eventRetryDelaysMs: [] },
    });
    await h.createFunction("busy");
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const worker = await h.addWorker({
      id: "w1",
      behaviour: async (request) => {
        if (JSON.parse(Buffer.from(request.payload).toString()).hold) await gate;
        return answers.ok("done");
      },
    });
    const holding = call(h.app, "POST", invokePath("busy"), { hold: true });
    await waitFor(() => worker.requests.length === 1, "the slot to be taken");
    expect(
      (await call(h.app, "POST", invokePath("busy"), { hold: false }, { headers: EVENT })).status,
    ).toBe(202);
    // Long enough to be throttled many times and handed back to the queue (hold is 60 ms).
    await sleep(300);
    expect(worker.requests).toHaveLength(1);
    release();
    expect((await holding).status).toBe(200);
    await waitFor(() => worker.requests.length === 2, "the event to run once the slot is free");
    expect(JSON.parse(Buffer.from(worker.requests[1]!.payload).toString())).toEqual({
      hold: false,
    });
    await sleep(100);
    expect(worker.requests).toHaveLength(2);
    expect(await (await h.infra.eventQueue()).pending()).toBe(0);
  });

  it("wait for a worker when none is available, without spending attempts", async () => {
    const h = await harness({ frontend: { eventRetryDelaysMs: [] } });
    await h.createFunction("patient");
    await call(h.app, "POST", invokePath("patient"), { n: 1 }, { headers: EVENT });
    await sleep(150);
    const worker = await h.addWorker({ id: "w1" });
    await waitFor(() => worker.requests.length === 1, "the event to run on the new worker");
  });

  it("are dropped, with a log line, when the function was deleted", async () => {
    const h = await harness();
    await h.createFunction("doomed");
    expect((await call(h.app, "POST", invokePath("doomed"), {}, { headers: EVENT })).status).toBe(
      202,
    );
    await call(h.app, "DELETE", "/2015-03-31/functions/doomed");
    const worker = await h.addWorker({ id: "w1" });
    await waitFor(
      () => h.logLines.some((l) => l.includes("function no longer exists")),
      "drop log",
    );
    expect(worker.requests).toHaveLength(0);
    expect(await (await h.infra.eventQueue()).pending()).toBe(0);
  });

  it("are dropped, with a log line, when older than the maximum event age", async () => {
    const h = await harness();
    await h.createFunction("stale");
    const worker = await h.addWorker({ id: "w1" });
    const event: EventInvocation = {
      type: "event",
      requestId: "old-request",
      tenantId: TENANT_A.id,
      functionName: "stale",
      payload: new TextEncoder().encode("{}"),
      enqueuedAt: Date.now() - 7 * 60 * 60 * 1000,
    };
    const queue = await h.infra.eventQueue();
    await queue.enqueue(Subjects.events(TENANT_A.id), encode(event));
    await queue.enqueue(Subjects.events(TENANT_A.id), new Uint8Array([0xc1]));
    await waitFor(
      () => h.logLines.some((l) => l.includes("older than the maximum event age")),
      "age log",
    );
    await waitFor(() => h.logLines.some((l) => l.includes("does not decode")), "garbage log");
    expect(worker.requests).toHaveLength(0);
    expect(await queue.pending()).toBe(0);
  });
});
