import { afterEach, describe, expect, it, vi } from "vitest";
import { DispatchWindow, type DispatchPass } from "./dispatch-window.js";

afterEach(() => {
  vi.useRealTimers();
});

function windowOf(slots: number, holdMs = 10) {
  let now = 0;
  const window = new DispatchWindow({ slots, holdMs, shortMs: 1, now: () => now });
  return {
    window,
    advance: (ms: number) => {
      now += ms;
      vi.advanceTimersByTime(ms);
    },
    /** Time passes with the event loop blocked: timers do not run. */
    stall: (ms: number) => {
      now += ms;
    },
  };
}

/** Teach the window that a function's runs take `ms` inside the sandbox. */
function runs(window: DispatchWindow, key: string, ms: number, count = 16): void {
  for (let i = 0; i < count; i++) window.learn(key, ms);
}

/** On fake timers, a window of one slot held for 10 ms: one short invocation out, one waiting. */
function oneOutOneWaiting() {
  vi.useFakeTimers();
  const held = windowOf(1, 10);
  runs(held.window, "fn", 0.1);
  const out = held.window.enter("fn") as DispatchPass;
  const next = held.window.enter("fn");
  return { ...held, out, next };
}

async function settledCount(passes: Array<Promise<DispatchPass> | DispatchPass | undefined>) {
  let settled = 0;
  await Promise.all(
    passes.map((pass) =>
      Promise.race([Promise.resolve(pass).then(() => settled++), Promise.resolve()]),
    ),
  );
  return settled;
}

describe("DispatchWindow", () => {
  it("holds nothing of a function it knows too little of, or whose runs are long", () => {
    const { window } = windowOf(1);
    expect(window.enter("new")).toBeUndefined();
    runs(window, "almost", 0.1, 15);
    expect(window.isShort("almost")).toBe(false);
    runs(window, "slow", 10);
    expect(window.enter("slow")).toBeUndefined();
    expect(window.enter("slow")).toBeUndefined();
    // Five long runs in sixteen: not short yet.
    runs(window, "mixed", 0.1, 11);
    runs(window, "mixed", 5, 5);
    expect(window.isShort("mixed")).toBe(false);
    // A runtime that reports nothing teaches nothing.
    window.learn("silent", undefined);
    expect(window.isShort("silent")).toBe(false);
  });

  it("keeps a short function short until most of its recent runs are long", () => {
    const { window } = windowOf(1);
    runs(window, "fn", 0.1);
    expect(window.isShort("fn")).toBe(true);
    // Runs stretched under load: eleven long ones in sixteen keep it short...
    runs(window, "fn", 3, 11);
    expect(window.isShort("fn")).toBe(true);
    // ...twelve do not, and it takes twelve short ones again to come back.
    runs(window, "fn", 3);
    expect(window.isShort("fn")).toBe(false);
    runs(window, "fn", 0.1, 11);
    expect(window.isShort("fn")).toBe(false);
    runs(window, "fn", 0.1);
    expect(window.isShort("fn")).toBe(true);
  });

  it("lets `slots` short invocations out at once and the next in line go as one is answered", async () => {
    vi.useFakeTimers();
    const { window } = windowOf(2);
    runs(window, "fn", 0.1);
    const first = window.enter("fn") as DispatchPass;
    const second = window.enter("fn") as DispatchPass;
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    const third = window.enter("fn");
    const fourth = window.enter("fn");
    expect(third).toBeInstanceOf(Promise);
    expect(window.waiting).toBe(2);
    expect(await settledCount([third, fourth])).toBe(0);
    window.leave(first);
    expect(await settledCount([third, fourth])).toBe(1);
    // First come, first served: the third goes before the fourth.
    const thirdPass = await third!;
    expect(thirdPass).toBeDefined();
    window.leave(second);
    expect(await fourth!).toBeDefined();
    expect(window.waiting).toBe(0);
  });

  it("frees a slot held past holdMs, answered or not", async () => {
    const { window, advance, out: stuck, next } = oneOutOneWaiting();
    advance(9);
    expect(await settledCount([next])).toBe(0);
    advance(1);
    const nextPass = await next!;
    expect(nextPass).toBeDefined();
    // The late answer of the first gives back nothing it still holds.
    window.leave(stuck);
    expect(window.enter("fn")).toBeInstanceOf(Promise);
  });

  it("does not count a stall of the event loop against the slots", async () => {
    const { window, stall, out, next } = oneOutOneWaiting();
    // Blocked for 50 ms: the expiry timer runs 40 ms late, and lets nobody out...
    stall(50);
    vi.advanceTimersToNextTimer();
    expect(await settledCount([next])).toBe(0);
    expect(window.waiting).toBe(1);
    // ...so the answer read right after frees the slot, as it should.
    window.leave(out);
    expect(await next!).toBeDefined();
  });

  it("with no slots, or once closed, holds nothing and lets the waiting go", async () => {
    vi.useFakeTimers();
    const off = windowOf(0).window;
    runs(off, "fn", 0.1);
    expect(off.enter("fn")).toBeUndefined();

    const { window } = windowOf(1);
    runs(window, "fn", 0.1);
    expect(window.enter("fn")).toBeDefined();
    const waiting = window.enter("fn");
    window.close();
    expect(await waiting!).toBeDefined();
    expect(window.enter("fn")).toBeUndefined();
  });

  it("forgets the longest-known function beyond 10,000", () => {
    const { window } = windowOf(1);
    runs(window, "first", 0.1);
    for (let i = 0; i < 10_000; i++) window.learn(`fn-${i}`, 0.1);
    expect(window.isShort("first")).toBe(false);
    runs(window, "fn-9999", 0.1, 15);
    expect(window.isShort("fn-9999")).toBe(true);
  });
});
