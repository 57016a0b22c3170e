import { describe, expect, it } from "vitest";
import type { Rejection } from "./decision.js";
import { TestFleet } from "./test-fleet.js";

const TICK = 100;

/** Two frontends, M = 10, split 5/5 by equal demand, past the start-up window. */
function evenFleet(): TestFleet {
  const fleet = new TestFleet(
    2,
    { initialLimit: 10, minLimit: 1, gossipIntervalMs: TICK },
    { lending: true },
  );
  fleet.controllers.forEach((c) => c.setTenant("t", { maxConcurrency: 10 }));
  for (let k = 0; k < 10; k++) {
    fleet.controllers.forEach((_c, f) => {
      while (fleet.tickets[f]!.length > 0) fleet.release(f);
      for (let i = 0; i < 3; i++) fleet.admit(f, "t");
    });
    fleet.now += TICK;
    fleet.tickAll();
    fleet.deliverAll();
  }
  fleet.controllers.forEach((_c, f) => {
    while (fleet.tickets[f]!.length > 0) fleet.release(f);
  });
  return fleet;
}

function rejection(decision: { kind: string }): Rejection {
  if (decision.kind !== "rejection") throw new Error("expected a rejection");
  return decision as Rejection;
}

describe("borrowing slots", () => {
  it("admits a request that finds no free slot after one round trip, from a peer's idle slot", () => {
    const fleet = evenFleet();
    const [a, b] = [fleet.controller(0), fleet.controller(1)];
    expect([a.localPool("t")!.share, b.localPool("t")!.share]).toEqual([5, 5]);
    for (let i = 0; i < 5; i++) expect(fleet.admit(0, "t").kind).toBe("ticket");
    const waiting = rejection(fleet.admit(0, "t"));
    expect(waiting).toMatchObject({ borrowing: true, reason: "ConcurrentInvocationLimitExceeded" });
    expect(waiting.retryAfterMs).toBe(a.policy.loanRetryMs);
    fleet.deliver(0); // the request reaches frontend 1, which lends at once
    expect(b.localPool("t")!.share).toBe(4);
    fleet.deliver(0); // the grant comes back
    const retried = a.retryAdmit(waiting, fleet.now + 2);
    expect(retried.kind).toBe("ticket");
    if (retried.kind === "ticket") fleet.tickets[0]!.push(retried);
    // The lender cannot use the slot it lent: the fleet stays within M.
    for (let i = 0; i < 10; i++) fleet.admit(1, "t");
    expect(fleet.tickets[1]).toHaveLength(4);
    expect(fleet.fleetInflight()).toBe(10);
  });

  it("keeps borrowed slots while few of its slots are free, and hands them back once more are", () => {
    const fleet = evenFleet();
    const [a, b] = [fleet.controller(0), fleet.controller(1)];
    for (let i = 0; i < 5; i++) fleet.admit(0, "t");
    const waiting = rejection(fleet.admit(0, "t"));
    fleet.deliverAll();
    const ticket = a.retryAdmit(waiting, fleet.now);
    expect(ticket.kind).toBe("ticket");
    // Taking its last free slot, the borrower asks ahead for the next request.
    fleet.deliverAll();
    expect(b.snapshot("t", fleet.now)!.unreserved.lent).toBe(2);
    // One slot free again: a busy borrower would only ask again, so it keeps
    // the loan (ceil(1.2 × sqrt(demand 3)) = 3 slots may stay free).
    if (ticket.kind === "ticket") a.release(ticket, fleet.now + 50);
    expect(a.snapshot("t", fleet.now)!.unreserved.borrowed).toBe(2);
    // Its own invocations end too: now it has more free than it keeps.
    while (fleet.tickets[0]!.length > 0) fleet.release(0);
    expect(a.snapshot("t", fleet.now)!.unreserved.borrowed).toBe(0);
    fleet.deliverAll(); // the return
    expect(b.snapshot("t", fleet.now)!.unreserved.lent).toBe(0);
  });

  it("takes lost loans back from the borrower's next report, and only then", () => {
    const fleet = evenFleet();
    const [a, b] = [fleet.controller(0), fleet.controller(1)];
    for (let i = 0; i < 5; i++) fleet.admit(0, "t");
    rejection(fleet.admit(0, "t"));
    fleet.deliver(0); // request delivered, the slot is lent...
    fleet.drop(0); // ...and the grant is lost
    const lent = () => b.snapshot("t", fleet.now)!.unreserved.lent;
    expect(lent()).toBe(1);
    // Until the borrower's lease ends, its reports keep the loan outstanding.
    fleet.now += 10;
    fleet.tick(0);
    fleet.deliverAll();
    expect(lent()).toBe(1);
    fleet.now += a.policy.loanLeaseMs;
    fleet.tick(0);
    fleet.deliverAll();
    expect(lent()).toBe(0);
  });

  it("counts what still runs on an expired loan against the borrower, never twice", () => {
    const fleet = evenFleet();
    const [a, b] = [fleet.controller(0), fleet.controller(1)];
    for (let i = 0; i < 5; i++) fleet.admit(0, "t");
    const waiting = rejection(fleet.admit(0, "t"));
    fleet.deliverAll();
    const long = a.retryAdmit(waiting, fleet.now);
    expect(long.kind).toBe("ticket");
    if (long.kind === "ticket") fleet.tickets[0]!.push(long);
    // The borrowed invocation outlives the lease; both sides keep gossiping.
    for (let k = 0; k < 10; k++) {
      fleet.now += TICK;
      fleet.tickAll();
      fleet.deliverAll();
      for (let i = 0; i < 6; i++) fleet.admit(1, "t");
      expect(fleet.fleetInflight()).toBeLessThanOrEqual(10);
    }
    expect(b.localPool("t")!.share).toBeLessThanOrEqual(4);
  });

  it("does not borrow when nobody reported a free slot, and does not lend what it needs", () => {
    const fleet = evenFleet();
    for (let i = 0; i < 5; i++) fleet.admit(1, "t");
    fleet.now += TICK;
    fleet.tickAll();
    fleet.deliverAll();
    for (let i = 0; i < 5; i++) fleet.admit(0, "t");
    const refused = rejection(fleet.admit(0, "t"));
    expect(refused.borrowing).toBe(false);
    expect(fleet.inFlight).toHaveLength(0);
  });
});
