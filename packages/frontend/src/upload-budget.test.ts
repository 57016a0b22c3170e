import { afterEach, describe, expect, it, vi } from "vitest";
import { UploadBudget } from "./upload-budget.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("UploadBudget", () => {
  it("admits uploads while their bytes fit, the next ones first come first served", async () => {
    const budget = new UploadBudget(100, 60_000);
    const first = await budget.acquire(60);
    const order: string[] = [];
    const second = budget.acquire(60).then((release) => (order.push("second"), release));
    const third = budget.acquire(10).then((release) => (order.push("third"), release));
    await Promise.resolve();
    // The small one waits behind the large one: no upload starves.
    expect(budget.waiting).toBe(2);
    first();
    (await second)();
    (await third)();
    expect(order).toEqual(["second", "third"]);
    expect(budget.inUse).toBe(0);
  });

  it("admits an upload larger than the whole budget alone", async () => {
    const budget = new UploadBudget(100, 60_000);
    const release = await budget.acquire(500);
    expect(budget.inUse).toBe(100);
    release();
    release();
    expect(budget.inUse).toBe(0);
  });

  it("answers 429 TooManyRequestsException to an upload that waited too long", async () => {
    vi.useFakeTimers();
    const budget = new UploadBudget(100, 5_000);
    const held = await budget.acquire(100);
    const waiting = budget.acquire(1);
    const refused = expect(waiting).rejects.toMatchObject({
      errorType: "TooManyRequestsException",
      statusCode: 429,
      fields: { Reason: "CallerRateLimitExceeded" },
    });
    await vi.advanceTimersByTimeAsync(5_000);
    await refused;
    expect(budget.waiting).toBe(0);
    held();
  });

  it("forgets an upload whose client went away while it waited", async () => {
    const budget = new UploadBudget(100, 60_000);
    const held = await budget.acquire(100);
    const gone = new AbortController();
    const waiting = budget.acquire(50, gone.signal);
    gone.abort(new Error("client closed"));
    await expect(waiting).rejects.toThrow("client closed");
    expect(budget.waiting).toBe(0);
    held();
    expect(budget.inUse).toBe(0);
  });
});
