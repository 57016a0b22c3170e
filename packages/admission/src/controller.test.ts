import { ConfigError, LambdaApiError } from "@gust/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AdmissionController } from "./controller.js";
import type { Rejection, Ticket } from "./decision.js";

function standalone(policy = {}) {
  return new AdmissionController({ frontendId: "only", standalone: true, policy });
}

function admitted(decision: Ticket | Rejection): Ticket {
  if (decision.kind !== "ticket") throw new Error(`expected a ticket, got ${decision.reason}`);
  return decision;
}

describe("AdmissionController: one frontend", () => {
  it("admits up to the tenant's limit, then throttles like Lambda, and frees a slot once per ticket", () => {
    const c = standalone({ initialLimit: 3, minLimit: 1 });
    c.setTenant("t1", { maxConcurrency: 3 });
    const tickets = [0, 1, 2].map(() => admitted(c.tryAdmit("t1", "f", 0)));
    const no = c.tryAdmit("t1", "f", 1);
    expect(no).toMatchObject({
      kind: "rejection",
      reason: "ConcurrentInvocationLimitExceeded",
      borrowing: false,
      share: 3,
      inflight: 3,
    });
    expect(no.kind === "rejection" && no.retryAfterMs).toBeGreaterThanOrEqual(1);
    // Another tenant is not affected.
    expect(c.tryAdmit("t2", "f", 1).kind).toBe("ticket");
    c.release(tickets[0]!, 100);
    c.release(tickets[0]!, 100);
    expect(c.localPool("t1")?.inflight).toBe(2);
    expect(c.tryAdmit("t1", "f", 101).kind).toBe("ticket");
    expect(c.tryAdmit("t1", "f", 101).kind).toBe("rejection");
  });

  it("gives an unknown tenant the default maximum", () => {
    const c = standalone({ defaultMaxConcurrency: 7, initialLimit: 7, minLimit: 1 });
    for (let i = 0; i < 7; i++) expect(c.tryAdmit("new", "f", 0).kind).toBe("ticket");
    expect(c.tryAdmit("new", "f", 0).kind).toBe("rejection");
    expect(c.accountConcurrency("other")).toEqual({
      concurrentExecutions: 7,
      unreservedConcurrentExecutions: 7,
    });
  });

  it("rejects nonsense configuration with a ConfigError naming it", () => {
    expect(() => new AdmissionController({ frontendId: "" })).toThrow(ConfigError);
    expect(() => new AdmissionController({ frontendId: "a", fleetSizeHint: 0 })).toThrow(
      /fleetSizeHint/,
    );
    expect(() => new AdmissionController({ frontendId: "a", policy: { riseStep: -1 } })).toThrow(
      /riseStep/,
    );
    expect(() => standalone().setTenant("t", { maxConcurrency: 0 })).toThrow(/maxConcurrency/);
  });

  it("applies Lambda's reserved concurrency rules", () => {
    const c = standalone({ initialLimit: 1000 });
    c.setTenant("t", { maxConcurrency: 1000 });
    c.setReservedConcurrency("t", "a", 600);
    expect(c.reservedConcurrency("t", "a")).toBe(600);
    expect(c.accountConcurrency("t")).toEqual({
      concurrentExecutions: 1000,
      unreservedConcurrentExecutions: 400,
    });
    // 301 more would leave 99 unreserved: Lambda's minimum is 100.
    const tooMuch = (() => {
      try {
        c.setReservedConcurrency("t", "b", 301);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(tooMuch).toBeInstanceOf(LambdaApiError);
    expect(tooMuch).toMatchObject({ errorType: "InvalidParameterValueException", statusCode: 400 });
    expect((tooMuch as Error).message).toMatch(/below its minimum value of \[100\]/);
    expect(c.reservedConcurrency("t", "b")).toBeUndefined();
    c.setReservedConcurrency("t", "b", 300);
    expect(() => c.setReservedConcurrency("t", "c", -1)).toThrow(/at least 0/);
    expect(() => c.setReservedConcurrency("t", "c", 1.5)).toThrow(LambdaApiError);
    // Changing a reservation counts only the difference.
    c.setReservedConcurrency("t", "a", 500);
    expect(c.accountConcurrency("t").unreservedConcurrentExecutions).toBe(200);
    c.setReservedConcurrency("t", "a", undefined);
    expect(c.accountConcurrency("t").unreservedConcurrentExecutions).toBe(700);
  });

  it("runs a reserved function within its reservation only, and 0 stops it", () => {
    const c = standalone({ initialLimit: 200, minLimit: 1 });
    c.setTenant("t", { maxConcurrency: 200 });
    c.setReservedConcurrency("t", "reserved", 2);
    c.setReservedConcurrency("t", "stopped", 0);
    admitted(c.tryAdmit("t", "reserved", 0));
    admitted(c.tryAdmit("t", "reserved", 0));
    expect(c.tryAdmit("t", "reserved", 0)).toMatchObject({
      kind: "rejection",
      reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
    });
    expect(c.tryAdmit("t", "stopped", 0)).toMatchObject({
      kind: "rejection",
      reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
      retryAfterMs: c.policy.maxRetryAfterMs,
    });
    // The others share the 198 left unreserved.
    for (let i = 0; i < 198; i++) admitted(c.tryAdmit("t", "other", 0));
    expect(c.tryAdmit("t", "other", 0)).toMatchObject({
      reason: "ConcurrentInvocationLimitExceeded",
    });
    const snapshot = c.snapshot("t", 0);
    expect(snapshot).toMatchObject({
      maxConcurrency: 200,
      unreservedConcurrency: 198,
      reservedConcurrency: 2,
    });
    expect(snapshot?.reserved.map((p) => [p.functionName, p.limit, p.inflight])).toEqual([
      ["reserved", 2, 2],
      ["stopped", 0, 0],
    ]);
  });

  it("moves a function's invocations back to the shared pool when its reservation is removed", () => {
    const c = standalone({ initialLimit: 200, minLimit: 1 });
    c.setTenant("t", { maxConcurrency: 200 });
    c.setReservedConcurrency("t", "f", 5);
    const ticket = admitted(c.tryAdmit("t", "f", 0));
    c.setReservedConcurrency("t", "f", undefined);
    expect(c.localPool("t")?.inflight).toBe(1);
    c.release(ticket, 10);
    expect(c.localPool("t")?.inflight).toBe(0);
  });

  it("is conservative while it has not heard its peers: never the whole limit at start", () => {
    const c = new AdmissionController({
      frontendId: "fe-1",
      policy: { initialLimit: 100, minLimit: 1 },
    });
    c.setTenant("t", { maxConcurrency: 100 });
    // Idle, the pool is left out of reports and claimed at its idle claim:
    // floor(T's floor, 1, / 2) = 0 here.
    c.demandReport(0);
    expect(c.localPool("t")?.share).toBe(0);
    // Busy: its claim goes out explicitly, at most half the limit while start-up lasts.
    c.tryAdmit("t", "fn", 0);
    c.demandReport(1);
    expect(c.mode(1)).toBe("rejoining");
    expect(c.localPool("t")?.share).toBe(50);
    // Nobody spoke up within the expiry period: this frontend is alone.
    const later = c.policy.peerExpiryIntervals * c.policy.gossipIntervalMs;
    c.tryAdmit("t", "fn", later);
    c.demandReport(later);
    expect(c.mode(later)).toBe("gossip");
    expect(c.localPool("t")?.share).toBe(100);
  });

  it("property: admission never exceeds the local share; reserved never exceeds the reservation", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("admit" as const), fn: fc.constantFrom("a", "b", "c") }),
      fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("tick" as const) }),
      fc.record({
        kind: fc.constant("reserve" as const),
        fn: fc.constantFrom("a", "b"),
        n: fc.option(fc.integer({ min: 0, max: 80 })),
      }),
      fc.record({ kind: fc.constant("max" as const), max: fc.integer({ min: 1, max: 300 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const c = standalone({ initialLimit: 150, minLimit: 10, minUnreserved: 20 });
        c.setTenant("t", { maxConcurrency: 200 });
        const live: Ticket[] = [];
        let now = 0;
        const inflightOf = (fn: string) => c.localPool("t", fn)?.inflight ?? 0;
        for (const o of ops) {
          now += 7;
          const before = { a: inflightOf("a"), b: inflightOf("b") };
          if (o.kind === "admit") {
            const before = c.localPool(
              "t",
              c.reservedConcurrency("t", o.fn) === undefined ? "" : o.fn,
            )!;
            const decision = c.tryAdmit("t", o.fn, now);
            if (decision.kind === "ticket") {
              expect(before.inflight).toBeLessThan(before.share);
              live.push(decision);
            }
          } else if (o.kind === "release" && live.length > 0) {
            c.release(live.splice(o.pick % live.length, 1)[0]!, now);
          } else if (o.kind === "tick") {
            c.demandReport(now);
          } else if (o.kind === "reserve") {
            try {
              c.setReservedConcurrency("t", o.fn, o.n ?? undefined);
            } catch (error) {
              expect(error).toBeInstanceOf(LambdaApiError);
            }
          } else if (o.kind === "max") {
            c.setTenant("t", { maxConcurrency: o.max });
          }
          for (const fn of ["a", "b"] as const) {
            const reserved = c.reservedConcurrency("t", fn);
            const pool = c.localPool("t", fn);
            if (reserved === undefined || !pool) continue;
            expect(pool.share).toBeLessThanOrEqual(reserved);
            // Above a lowered reservation, a function only drains.
            if (pool.inflight > reserved) expect(pool.inflight).toBeLessThanOrEqual(before[fn]);
          }
          const shared = c.localPool("t")!;
          expect(shared.limit).toBeLessThanOrEqual(
            c.accountConcurrency("t").unreservedConcurrentExecutions,
          );
        }
      }),
      { numRuns: 200 },
    );
  });
});
