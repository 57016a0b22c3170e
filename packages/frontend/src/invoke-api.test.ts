import { encode, CapacityError, Subjects, functionKey, type FunctionRecord } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import {
  answers,
  call,
  CREDENTIALS_B,
  errorOf,
  startHarness,
  TENANT_A,
  TENANT_B,
  waitFor,
  type Harness,
  type HarnessOptions,
} from "./test-util.js";
import { rendezvousScore } from "./worker-directory.js";

const invokePath = (name: string) =>
  `/2015-03-31/functions/${encodeURIComponent(name)}/invocations`;

let h: Harness | undefined;
async function harness(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("Invoke RequestResponse", () => {
  it("returns the handler's payload and sends the worker what it needs", async () => {
    const h = await harness();
    await h.createFunction("echo", { Timeout: 5, Environment: { Variables: { MODE: "test" } } });
    const worker = await h.addWorker({ id: "w1" });
    const response = await call(
      h.app,
      "POST",
      invokePath("echo"),
      { hello: "world" },
      {
        headers: { "x-amz-client-context": Buffer.from('{"custom":{"a":1}}').toString("base64") },
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("x-amz-executed-version")).toBe("$LATEST");
    expect(response.headers.get("x-amz-function-error")).toBeNull();
    expect(response.headers.get("x-amz-log-result")).toBeNull();
    expect(response.headers.get("x-amzn-requestid")).toBeTruthy();
    expect(await response.json()).toEqual({ hello: "world" });

    const request = worker.requests[0]!;
    expect(request.requestId).toBe(response.headers.get("x-amzn-requestid"));
    expect(request.target).toMatchObject({
      tenantId: TENANT_A.id,
      name: "echo",
      functionArn: "arn:aws:lambda:us-east-1:111111111111:function:echo",
      runtime: "nodejs20.x",
      handler: "index.handler",
      timeoutSec: 5,
      environment: { MODE: "test" },
    });
    expect(request.clientContext).toBe(Buffer.from('{"custom":{"a":1}}').toString("base64"));
    expect(request.tailLog).toBe(false);
  });

  it("sends an empty body as the empty JSON object", async () => {
    const h = await harness();
    await h.createFunction("empty");
    const worker = await h.addWorker({ id: "w1" });
    const response = await call(h.app, "POST", invokePath("empty"));
    expect(response.status).toBe(200);
    expect(Buffer.from(worker.requests[0]!.payload).toString()).toBe("{}");
  });

  it("reports a function error with status 200 and X-Amz-Function-Error", async () => {
    const h = await harness();
    await h.createFunction("fails");
    await h.addWorker({ id: "w1", behaviour: () => answers.functionError("it broke") });
    const response = await call(h.app, "POST", invokePath("fails"), {});
    expect(response.status).toBe(200);
    expect(response.headers.get("x-amz-function-error")).toBe("Unhandled");
    expect(await response.json()).toMatchObject({ errorType: "Error", errorMessage: "it broke" });
  });

  it("returns the last 4 KB of the log, base64, with LogType Tail", async () => {
    const h = await harness();
    await h.createFunction("logs");
    const log = `${"a".repeat(5000)}END of log\n`;
    const worker = await h.addWorker({ id: "w1", behaviour: () => answers.ok("done", log) });
    const response = await call(
      h.app,
      "POST",
      invokePath("logs"),
      {},
      { headers: { "x-amz-log-type": "Tail" } },
    );
    expect(response.status).toBe(200);
    expect(worker.requests[0]!.tailLog).toBe(true);
    const tail = Buffer.from(response.headers.get("x-amz-log-result")!, "base64").toString();
    expect(tail.length).toBe(4096);
    expect(tail.endsWith("END of log\n")).toBe(true);
  });

  it("checks but does not run with DryRun", async () => {
    const h = await harness();
    await h.createFunction("dry");
    const worker = await h.addWorker({ id: "w1" });
    const response = await call(
      h.app,
      "POST",
      invokePath("dry"),
      {},
      { headers: { "x-amz-invocation-type": "DryRun" } },
    );
    expect(response.status).toBe(204);
    const missing = await call(
      h.app,
      "POST",
      invokePath("absent"),
      {},
      { headers: { "x-amz-invocation-type": "DryRun" } },
    );
    expect(missing.status).toBe(404);
    expect(worker.requests).toHaveLength(0);
  });

  it("refuses a payload that is not JSON, and unknown invocation types", async () => {
    const h = await harness();
    await h.createFunction("strict");
    const worker = await h.addWorker({ id: "w1" });
    const bad = await errorOf(await call(h.app, "POST", invokePath("strict"), "{oops"));
    expect(bad.status).toBe(400);
    expect(bad.type).toBe("InvalidRequestContentException");
    const type = await errorOf(
      await call(
        h.app,
        "POST",
        invokePath("strict"),
        {},
        { headers: { "x-amz-invocation-type": "Later" } },
      ),
    );
    expect(type.status).toBe(400);
    expect(worker.requests).toHaveLength(0);
  });

  it("refuses payloads over 6 MB (sync) and 1 MB (Event) with RequestTooLargeException", async () => {
    const h = await harness();
    await h.createFunction("big");
    const worker = await h.addWorker({ id: "w1", behaviour: () => answers.ok("ok") });
    const sixMb = 6 * 1024 * 1024;
    const tooBig = JSON.stringify("x".repeat(sixMb));
    const sync = await errorOf(await call(h.app, "POST", invokePath("big"), tooBig));
    expect(sync.status).toBe(413);
    expect(sync.type).toBe("RequestTooLargeException");

    const twoMb = JSON.stringify("x".repeat(2 * 1024 * 1024));
    const event = await errorOf(
      await call(h.app, "POST", invokePath("big"), twoMb, {
        headers: { "x-amz-invocation-type": "Event" },
      }),
    );
    expect(event.status).toBe(413);
    expect(event.type).toBe("RequestTooLargeException");

    const fits = await call(h.app, "POST", invokePath("big"), twoMb);
    expect(fits.status).toBe(200);
    expect(worker.requests).toHaveLength(1);
  });

  it("answers ResourceNotFoundException for an unknown function and for another tenant's", async () => {
    const h = await harness();
    await h.createFunction("mine");
    const worker = await h.addWorker({ id: "w1" });
    const unknown = await errorOf(await call(h.app, "POST", invokePath("nobody"), {}));
    expect(unknown.status).toBe(404);
    expect(unknown.type).toBe("ResourceNotFoundException");
    const theirs = await errorOf(
      await call(h.app, "POST", invokePath("mine"), {}, { credentials: CREDENTIALS_B }),
    );
    expect(theirs.status).toBe(404);
    const theirsByArn = await errorOf(
      await call(
        h.app,
        "POST",
        invokePath("arn:aws:lambda:us-east-1:111111111111:function:mine"),
        {},
        { credentials: CREDENTIALS_B },
      ),
    );
    expect(theirsByArn.status).toBe(403);
    expect(worker.requests).toHaveLength(0);
  });
});

describe("Invoke failures on the worker side", () => {
  it("answers ServiceException when the worker does not reply within the function's timeout", async () => {
    const h = await harness({ frontend: { invokeTimeoutMarginMs: 100 } });
    await h.createFunction("hangs", { Timeout: 1 });
    await h.addWorker({ id: "w1", behaviour: () => ({ kind: "silent" }) });
    const started = Date.now();
    const error = await errorOf(await call(h.app, "POST", invokePath("hangs"), {}));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(error.status).toBe(500);
    expect(error.type).toBe("ServiceException");
  });

  it("turns a response over 6 MB into Lambda's function error", async () => {
    const h = await harness();
    await h.createFunction("verbose");
    await h.addWorker({ id: "w1", behaviour: () => answers.ok("y".repeat(6 * 1024 * 1024 + 10)) });
    const response = await call(h.app, "POST", invokePath("verbose"), {});
    expect(response.status).toBe(200);
    expect(response.headers.get("x-amz-function-error")).toBe("Unhandled");
    expect(await response.json()).toMatchObject({ errorType: "Function.ResponseSizeTooLarge" });
  });

  it("refuses a client context that is not base64", async () => {
    const h = await harness();
    await h.createFunction("ctx");
    await h.addWorker({ id: "w1" });
    const error = await errorOf(
      await call(
        h.app,
        "POST",
        invokePath("ctx"),
        {},
        { headers: { "x-amz-client-context": "not base64!" } },
      ),
    );
    expect(error.status).toBe(400);
    expect(error.type).toBe("InvalidRequestContentException");
  });
});

describe("admission and routing", () => {
  it("answers 429 with Reason and Retry-After over the tenant's concurrency, and frees slots after", async () => {
    const h = await harness({ tenants: [{ ...TENANT_A, maxConcurrency: 2 }, TENANT_B] });
    await h.createFunction("slow");
    const gate = deferred();
    const worker = await h.addWorker({
      id: "w1",
      behaviour: async () => {
        await gate.promise;
        return answers.ok("done");
      },
    });
    const first = call(h.app, "POST", invokePath("slow"), {});
    const second = call(h.app, "POST", invokePath("slow"), {});
    await waitFor(() => worker.requests.length === 2, "two invocations in flight");
    const third = await call(h.app, "POST", invokePath("slow"), {});
    expect(third.status).toBe(429);
    expect(third.headers.get("x-amzn-errortype")).toBe("TooManyRequestsException");
    expect(third.headers.get("retry-after")).toBe("1");
    expect(await third.json()).toEqual({
      Type: "User",
      message: "Rate Exceeded.",
      Reason: "ConcurrentInvocationLimitExceeded",
    });

    gate.resolve();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    const again = await call(h.app, "POST", invokePath("slow"), {});
    expect(again.status).toBe(200);
  });

  it("frees the slot when the worker fails too", async () => {
    const h = await harness({ tenants: [{ ...TENANT_A, maxConcurrency: 1 }, TENANT_B] });
    await h.createFunction("flaky");
    await h.addWorker({
      id: "w1",
      behaviour: () => ({ kind: "raw", data: new Uint8Array([1, 2, 3]) }),
    });
    for (let i = 0; i < 3; i++) {
      const error = await errorOf(await call(h.app, "POST", invokePath("flaky"), {}));
      expect(error.status).toBe(500);
      expect(error.type).toBe("ServiceException");
      expect(error.body["Type"]).toBe("Service");
    }
  });

  it("answers ServiceException when no worker is available", async () => {
    const h = await harness();
    await h.createFunction("lonely");
    const error = await errorOf(await call(h.app, "POST", invokePath("lonely"), {}));
    expect(error.status).toBe(500);
    expect(error.type).toBe("ServiceException");
    expect(error.body["message"]).toMatch(/No worker is available/);
  });

  it("ignores garbage heartbeats and keeps serving", async () => {
    const h = await harness();
    await h.createFunction("steady");
    await h.addWorker({ id: "w1" });
    h.infra.bus.publish(Subjects.workerHeartbeat, new Uint8Array([0xc1, 0xff, 0x00]));
    h.infra.bus.publish(Subjects.workerHeartbeat, encode({ type: "worker.gone" } as never));
    h.infra.bus.publish(
      Subjects.workerHeartbeat,
      encode({
        type: "worker.heartbeat",
        workerId: "bad.id.>",
        seq: 1,
        sentAt: Date.now(),
        intervalMs: 1000,
        capacity: { sandboxes: 1, memoryMb: 1 },
        used: { sandboxes: 0, memoryMb: 0 },
        warm: [],
        draining: false,
      }),
    );
    h.infra.bus.publish(Subjects.workerGone, new Uint8Array([0x93]));
    await waitFor(
      () => h.logLines.filter((l) => l.includes("ignoring")).length >= 4,
      "garbage to be logged",
    );
    expect(h.frontend.workers.workerIds()).toEqual(["w1"]);
    expect((await call(h.app, "POST", invokePath("steady"), { n: 1 })).status).toBe(200);
  });

  it("answers ServiceException for a reply that does not decode", async () => {
    const h = await harness();
    await h.createFunction("garbled");
    await h.addWorker({
      id: "w1",
      behaviour: () => ({ kind: "raw", data: new TextEncoder().encode("not msgpack at all") }),
    });
    const error = await errorOf(await call(h.app, "POST", invokePath("garbled"), {}));
    expect(error.status).toBe(500);
    expect(error.type).toBe("ServiceException");
    expect(h.logLines.some((l) => l.includes("does not decode"))).toBe(true);
  });

  it("tries the next worker when one is full or gone, and throttles when all are full", async () => {
    const h = await harness();
    await h.createFunction("spill");
    const full = () => answers.rejected(new CapacityError("no room"));
    const a = await h.addWorker({ id: "wa", behaviour: full });
    const b = await h.addWorker({ id: "wb", behaviour: full });
    const c = await h.addWorker({ id: "wc" });
    const response = await call(h.app, "POST", invokePath("spill"), { ok: true });
    expect(response.status).toBe(200);
    expect(a.requests.length + b.requests.length + c.requests.length).toBeGreaterThanOrEqual(1);
    expect(c.requests).toHaveLength(1);

    c.behaviour = full;
    const throttled = await errorOf(await call(h.app, "POST", invokePath("spill"), {}));
    expect(throttled.status).toBe(429);
    expect(throttled.body["Reason"]).toBe("ConcurrentInvocationLimitExceeded");

    // A worker that heartbeats but no longer listens is dropped and skipped.
    c.behaviour = () => answers.ok("from c");
    a.stop();
    b.stop();
    const afterGone = await call(h.app, "POST", invokePath("spill"), {});
    expect(afterGone.status).toBe(200);
    expect(await afterGone.json()).toBe("from c");
  });

  it("turns to a worker that looked full when the one that looked best has vanished", async () => {
    const h = await harness();
    await h.createFunction("after-crash");
    const record = (await h.registry.get(TENANT_A.id, "after-crash")) as FunctionRecord;
    const key = functionKey(TENANT_A.id, "after-crash");
    // The warm worker is the obvious choice; the other advertises no room at all.
    const warm = await h.addWorker({
      id: "w-warm",
      warm: [{ functionKey: key, revisionId: record.revisionId, idle: 1, total: 1 }],
      used: { sandboxes: 1, memoryMb: 128 },
    });
    await h.addWorker({
      id: "w-busy",
      capacity: { sandboxes: 1, memoryMb: 1024 },
      used: { sandboxes: 1, memoryMb: 128 },
      behaviour: () => answers.ok("from the busy one"),
    });
    warm.stop(); // killed: its heartbeat is still fresh, nobody listens on its subject
    const response = await call(h.app, "POST", invokePath("after-crash"), {});
    expect(response.status).toBe(200);
    expect(await response.json()).toBe("from the busy one");
  });

  it("prefers a worker with an idle warm sandbox of the function's revision", async () => {
    const h = await harness();
    await h.createFunction("warm-me");
    const record = (await h.registry.get(TENANT_A.id, "warm-me")) as FunctionRecord;
    const workers = [];
    for (const id of ["w1", "w2", "w3", "w4"]) workers.push(await h.addWorker({ id }));
    // Pick a worker that is not the function's home, so only the warm sandbox can explain the choice.
    const key = functionKey(TENANT_A.id, "warm-me");
    const byRank = [...workers].sort(
      (x, y) => rendezvousScore(y.id, key) - rendezvousScore(x.id, key),
    );
    const warmOne = byRank[2]!;
    warmOne.options.warm = [{ functionKey: key, revisionId: record.revisionId, idle: 1, total: 1 }];
    warmOne.heartbeat();
    await h.infra.bus.flush();
    await call(h.app, "POST", invokePath("warm-me"), {});
    expect(warmOne.requests).toHaveLength(1);
    // A warm sandbox of an older revision does not count.
    const other = byRank[3]!;
    other.options.warm = [{ functionKey: key, revisionId: "old-revision", idle: 5, total: 5 }];
    other.heartbeat();
    warmOne.options.warm = [];
    warmOne.heartbeat();
    await h.infra.bus.flush();
    await call(h.app, "POST", invokePath("warm-me"), {});
    expect(byRank[0]!.requests).toHaveLength(1);
    expect(other.requests).toHaveLength(0);
  });

  it("sends a function to the same home worker while no sandbox is warm", async () => {
    const h = await harness();
    await h.createFunction("homebody");
    const workers = [];
    for (const id of ["w1", "w2", "w3", "w4"]) workers.push(await h.addWorker({ id }));
    for (let i = 0; i < 6; i++)
      expect((await call(h.app, "POST", invokePath("homebody"), {})).status).toBe(200);
    const counts = workers.map((w) => w.requests.length).sort();
    expect(counts).toEqual([0, 0, 0, 6]);
  });

  it("forgets a worker silent for 3 heartbeat intervals", async () => {
    const h = await harness();
    const worker = await h.addWorker({ id: "quiet", intervalMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(h.frontend.workers.workerIds()).toEqual([]);
    worker.heartbeat();
    await waitFor(() => h.frontend.workers.workerIds().includes("quiet"), "worker back");
  });
});
