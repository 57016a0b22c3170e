import { MemoryBus } from "@gust/bus";
import { CENSUS_STRANGERS, decodeAs, encode, Subjects } from "@gust/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { workerCensus } from "./worker-census.js";

let bus: MemoryBus | undefined;
afterEach(async () => {
  await bus?.close();
  bus = undefined;
});

/** A worker that answers a census with `running` (or never, with undefined). */
function fakeWorker(
  on: MemoryBus,
  workerId: string,
  running: Record<string, Record<string, number>> | undefined,
): void {
  on.subscribe(Subjects.workerCensus(workerId), (message) => {
    const { frontendIds: asked, known = [] } = decodeAs(message.data, "worker.census");
    if (running === undefined) return;
    const strangers = asked.includes(CENSUS_STRANGERS);
    const answer = Object.fromEntries(
      Object.entries(running).filter(
        ([id]) => asked.includes(id) || (strangers && !known.includes(id)),
      ),
    );
    message.respond(encode({ type: "worker.census.reply", workerId, running: answer }));
  });
}

describe("the worker census", () => {
  it("sums every worker's count per frontend and pool; a worker nobody listens for counts nothing", async () => {
    bus = new MemoryBus();
    fakeWorker(bus, "w1", { "fe-a": { t: 2, u: 1 }, "fe-z": { t: 9 } });
    fakeWorker(bus, "w2", { "fe-a": { t: 3 } });
    const census = workerCensus(bus, () => ["w1", "w2", "w-gone"], 1_000);
    const result = await census(["fe-a", "fe-b"], []);
    expect(result).toEqual(
      new Map([
        [
          "fe-a",
          new Map([
            ["t", 5],
            ["u", 1],
          ]),
        ],
        ["fe-b", new Map()],
      ]),
    );
  });

  it("is unknown when a worker does not answer in time", async () => {
    bus = new MemoryBus();
    fakeWorker(bus, "w1", { "fe-a": { t: 2 } });
    fakeWorker(bus, "w2", undefined);
    const census = workerCensus(bus, () => ["w1", "w2"], 50);
    expect(await census(["fe-a"], [])).toBeUndefined();
  });

  it("ignores counts that are not positive whole numbers", async () => {
    bus = new MemoryBus();
    fakeWorker(bus, "w1", { "fe-a": { t: -1, u: 1.5, v: 2 } });
    const census = workerCensus(bus, () => ["w1"], 1_000);
    expect(await census(["fe-a"], [])).toEqual(new Map([["fe-a", new Map([["v", 2]])]]));
  });

  it("names by their ids the frontends the asker never heard, leaving out those it knows", async () => {
    bus = new MemoryBus();
    fakeWorker(bus, "w1", { "fe-self": { t: 4 }, "fe-peer": { t: 1 }, "fe-gone": { t: 2 } });
    fakeWorker(bus, "w2", { "fe-gone": { t: 1 }, "fe-other": { u: 3 } });
    const census = workerCensus(bus, () => ["w1", "w2"], 1_000);
    expect(await census([CENSUS_STRANGERS], ["fe-self", "fe-peer"])).toEqual(
      new Map([
        [CENSUS_STRANGERS, new Map()],
        ["fe-gone", new Map([["t", 3]])],
        ["fe-other", new Map([["u", 3]])],
      ]),
    );
  });
});
