/**
 * A worker in the frontend's own process (`gust dev`) gets its invocations
 * as objects, not over the bus, and everything around the hand-over is as
 * for any worker: retries here, timeouts and worker loss in worker-loss.test.ts.
 */
import { CapacityError, functionKey, type FunctionRecord } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { answers, call, startHarness, TENANT_A, type Harness } from "./test-util.js";

const invokePath = (name: string) => `/2015-03-31/functions/${name}/invocations`;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("a worker in the frontend's process", () => {
  it("runs invocations handed over without the bus", async () => {
    h = await startHarness({ localWorkers: ["local"] });
    await h.createFunction("echo");
    const worker = await h.addWorker({ id: "local" });
    const response = await call(h.app, "POST", invokePath("echo"), { hello: "local" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hello: "local" });
    expect(worker.transports).toEqual(["local"]);
    expect(worker.requests[0]).toMatchObject({
      type: "invoke",
      target: { name: "echo", runtime: "nodejs20.x" },
    });
  });

  it("is one candidate among the others: a full one hands the invocation to a worker on the bus", async () => {
    h = await startHarness({ localWorkers: ["local"] });
    await h.createFunction("echo");
    const record = (await h.registry.get(TENANT_A.id, "echo")) as FunctionRecord;
    // An idle warm sandbox makes the local worker the first choice.
    const local = await h.addWorker({
      id: "local",
      warm: [
        {
          functionKey: functionKey(TENANT_A.id, "echo"),
          revisionId: record.revisionId,
          idle: 1,
          total: 1,
        },
      ],
      behaviour: () => answers.rejected(new CapacityError("full")),
    });
    const remote = await h.addWorker({ id: "remote" });
    const response = await call(h.app, "POST", invokePath("echo"), { hello: "remote" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hello: "remote" });
    expect(local.transports).toEqual(["local"]);
    expect(remote.transports).toEqual(["bus"]);
  });
});
