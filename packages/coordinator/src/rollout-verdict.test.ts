import { emptyTally, type FunctionProgress } from "@gust/registry";
import { describe, expect, it } from "vitest";
import { judge, resolveVerdictRule, twoProportionZ } from "./rollout-verdict.js";

const rule = resolveVerdictRule();

function progress(old: [number, number], fresh: [number, number]): FunctionProgress {
  const p: FunctionProgress = {
    tenantId: "t",
    name: "f",
    functionArn: "arn",
    old: emptyTally(),
    new: emptyTally(),
  };
  p.old.counts.success = old[0];
  p.old.counts["function-error"] = old[1];
  p.new.counts.success = fresh[0];
  p.new.counts["init-error"] = fresh[1];
  p.new.errorTypes = fresh[1] > 0 ? { "Runtime.CallbackHandlerDeprecated": fresh[1] } : {};
  return p;
}

describe("the rollout verdict rule", () => {
  it("stays pending below the minimum sample on either side", () => {
    expect(judge(progress([100, 0], [9, 0]), 10, rule)).toBeUndefined();
    expect(judge(progress([5, 0], [20, 0]), 10, rule)).toBeUndefined();
  });

  it("judges a version that fails every invocation incompatible, naming the error types", () => {
    const judgement = judge(progress([3, 0], [0, 10]), 10, rule);
    expect(judgement?.verdict).toBe("incompatible");
    expect(judgement?.reason).toContain("Runtime.CallbackHandlerDeprecated ×10");
  });

  it("judges equal failure rates compatible", () => {
    expect(judge(progress([90, 10], [45, 5]), 10, rule)?.verdict).toBe("compatible");
  });

  it("does not call a rise that chance explains incompatible", () => {
    // 10% vs 15% on small samples: z ≈ 0.6.
    expect(judge(progress([36, 4], [17, 3]), 10, rule)?.verdict).toBe("compatible");
  });

  it("calls a clear rise incompatible", () => {
    expect(judge(progress([190, 10], [60, 40]), 10, rule)?.verdict).toBe("incompatible");
  });

  it("computes the pooled two-proportion z", () => {
    expect(twoProportionZ(0, 23, 10, 10)).toBeCloseTo(5.76, 1);
    expect(twoProportionZ(0, 10, 0, 10)).toBe(0);
  });
});
