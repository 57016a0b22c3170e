/**
 * The behaviour every Infrastructure must show, written once and run against
 * the in-memory implementation (memory.test.ts) and against NATS on a
 * freshly started server (nats.test.ts). A difference between the two is a
 * bug in one of them: `gust dev` must behave like a fleet.
 *
 * The suite talks to each target through two connections where it matters
 * (a publisher and a subscriber, two queue consumers), so on NATS the bytes
 * really cross the server.
 */
import { afterEach, beforeEach, describe } from "vitest";
import { describeBusConformance } from "./conformance-bus.js";
import { describeQueueConformance } from "./conformance-queue.js";
import { describeStoreConformance } from "./conformance-store.js";
import type { Infrastructure } from "./types.js";

export interface ConformanceTarget {
  /** Another client of the same state: a new connection on NATS; may be the same object in memory. */
  connect(): Promise<Infrastructure>;
  /** Closes what connect() returned and discards the state. */
  dispose(): Promise<void>;
}

export function describeInfrastructureConformance(
  name: string,
  factory: () => Promise<ConformanceTarget>,
): void {
  describe(`Infrastructure conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let a: Infrastructure;
    let b: Infrastructure;

    beforeEach(async () => {
      target = await factory();
      a = await target.connect();
      b = await target.connect();
    });
    afterEach(async () => {
      await target.dispose();
    });

    const clients = {
      get a() {
        return a;
      },
      get b() {
        return b;
      },
    };
    describeBusConformance(clients);
    describeStoreConformance(clients);
    describeQueueConformance(clients);
  });
}
