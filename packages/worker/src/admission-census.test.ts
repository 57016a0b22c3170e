import { CENSUS_STRANGERS } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { AdmissionCensus } from "./admission-census.js";

describe("the worker's admission census", () => {
  it("counts running invocations per admitting frontend and pool until each ends once", () => {
    const census = new AdmissionCensus();
    const first = census.track({ frontendId: "fe-a", pool: "t" });
    census.track({ frontendId: "fe-a", pool: "t" });
    census.track({ frontendId: "fe-b", pool: "u" });
    first();
    first();
    expect(census.answer("w1", ["fe-a", "fe-b", "fe-c", 7])).toEqual({
      type: "worker.census.reply",
      workerId: "w1",
      running: { "fe-a": { t: 1 }, "fe-b": { u: 1 } },
    });
  });

  it("asked for strangers, names every frontend but the known ones", () => {
    const census = new AdmissionCensus();
    census.track({ frontendId: "fe-self", pool: "t" });
    census.track({ frontendId: "fe-peer", pool: "t" });
    census.track({ frontendId: "fe-gone", pool: "t" });
    census.track({ frontendId: "fe-gone", pool: "u" });
    expect(census.answer("w1", [CENSUS_STRANGERS], ["fe-self", "fe-peer"]).running).toEqual({
      "fe-gone": { t: 1, u: 1 },
    });
    // Without strangers asked for, only the frontends named.
    expect(census.answer("w1", ["fe-peer"], ["fe-self"]).running).toEqual({ "fe-peer": { t: 1 } });
  });
});
