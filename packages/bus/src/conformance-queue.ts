/** Conformance of WorkQueue implementations: see conformance.ts. */
import { Subjects } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { InvalidBusArgumentError } from "./errors.js";
import { bytes, rejection, sleep, text, waitFor } from "./conformance-helpers.js";
import type { ConformanceClients } from "./conformance-helpers.js";
import type { QueueJob } from "./types.js";

export function describeQueueConformance(clients: ConformanceClients): void {
  describe("work queue", () => {
    const subject = Subjects.events("tenant-1");

    it("delivers each job once and forgets it when acked", async () => {
      const queue = await clients.a.eventQueue();
      await queue.enqueue(subject, bytes("job-1"), { "gust-request-id": "r-1" });
      await queue.enqueue(Subjects.events("tenant-2"), bytes("job-2"));
      expect(await queue.pending()).toBe(2);
      const seen: { subject: string; data: string; headers: object; deliveryCount: number }[] = [];
      const consumer = await queue.consume(
        async (job) => {
          seen.push({
            subject: job.subject,
            data: text(job.data),
            headers: job.headers,
            deliveryCount: job.deliveryCount,
          });
          await job.ack();
        },
        { concurrency: 2, ackWaitMs: 30_000 },
      );
      await waitFor(() => seen.length === 2, "both jobs");
      await consumer.stop();
      expect(seen.sort((x, y) => x.data.localeCompare(y.data))).toEqual([
        { subject, data: "job-1", headers: { "gust-request-id": "r-1" }, deliveryCount: 1 },
        { subject: Subjects.events("tenant-2"), data: "job-2", headers: {}, deliveryCount: 1 },
      ]);
      expect(await queue.pending()).toBe(0);
    });

    it("delivers a retried job again after the delay, counting deliveries", async () => {
      const queue = await clients.a.eventQueue();
      await queue.enqueue(subject, bytes("flaky"));
      const deliveries: { count: number; at: number }[] = [];
      const consumer = await queue.consume(
        async (job) => {
          deliveries.push({ count: job.deliveryCount, at: Date.now() });
          if (job.deliveryCount === 1) await job.retry(500);
          else await job.ack();
        },
        { concurrency: 1, ackWaitMs: 30_000 },
      );
      await waitFor(() => deliveries.length === 2, "the retry");
      await consumer.stop();
      expect(deliveries.map((d) => d.count)).toEqual([1, 2]);
      expect((deliveries[1]?.at ?? 0) - (deliveries[0]?.at ?? 0)).toBeGreaterThanOrEqual(400);
      expect(await queue.pending()).toBe(0);
    });

    it("delivers a job again when it is not acked within ackWait", async () => {
      const queue = await clients.a.eventQueue();
      await queue.enqueue(subject, bytes("abandoned"));
      const counts: number[] = [];
      const consumer = await queue.consume(
        async (job) => {
          counts.push(job.deliveryCount);
          if (job.deliveryCount >= 2) await job.ack();
          // the first delivery is dropped on the floor, as by a crashed consumer
        },
        { concurrency: 1, ackWaitMs: 1_000 },
      );
      await waitFor(() => counts.length === 2, "the redelivery");
      await consumer.stop();
      expect(counts).toEqual([1, 2]);
      expect(await queue.pending()).toBe(0);
    });

    it("keeps a job that reports progress from being redelivered", async () => {
      const queue = await clients.a.eventQueue();
      await queue.enqueue(subject, bytes("slow"));
      const counts: number[] = [];
      const consumer = await queue.consume(
        async (job) => {
          counts.push(job.deliveryCount);
          for (let i = 0; i < 8; i++) {
            await sleep(250);
            await job.inProgress();
          }
          await job.ack();
        },
        { concurrency: 1, ackWaitMs: 1_500 },
      );
      await waitFor(() => counts.length >= 1, "the delivery");
      await sleep(2_500);
      await consumer.stop();
      expect(counts).toEqual([1]);
      expect(await queue.pending()).toBe(0);
    });

    it("retries a job whose handler throws", async () => {
      const queue = await clients.a.eventQueue();
      await queue.enqueue(subject, bytes("throws once"));
      const counts: number[] = [];
      const consumer = await queue.consume(
        async (job) => {
          counts.push(job.deliveryCount);
          if (job.deliveryCount === 1) throw new Error("handler failed");
          await job.ack();
        },
        { concurrency: 1, ackWaitMs: 30_000 },
      );
      await waitFor(() => counts.length === 2, "the retry after the failure");
      await consumer.stop();
      expect(counts).toEqual([1, 2]);
    });

    it("runs at most `concurrency` handlers at once", async () => {
      const queue = await clients.a.eventQueue();
      for (let i = 0; i < 6; i++) await queue.enqueue(subject, bytes(`job-${i}`));
      let running = 0;
      let peak = 0;
      let done = 0;
      const consumer = await queue.consume(
        async (job) => {
          running++;
          peak = Math.max(peak, running);
          await sleep(300);
          running--;
          done++;
          await job.ack();
        },
        { concurrency: 2, ackWaitMs: 30_000 },
      );
      await waitFor(() => done === 6, "all six jobs");
      await consumer.stop();
      expect(peak).toBe(2);
      expect(await queue.pending()).toBe(0);
    });

    it("shares jobs between consumers, each job handled once", async () => {
      const first = await clients.a.eventQueue();
      const second = await clients.b.eventQueue();
      const handledBy: Record<string, string[]> = { first: [], second: [] };
      const handler = (who: string) => async (job: QueueJob) => {
        handledBy[who]?.push(text(job.data));
        await sleep(50);
        await job.ack();
      };
      const c1 = await first.consume(handler("first"), { concurrency: 2, ackWaitMs: 30_000 });
      const c2 = await second.consume(handler("second"), { concurrency: 2, ackWaitMs: 30_000 });
      const count = 24;
      for (let i = 0; i < count; i++) await first.enqueue(subject, bytes(`job-${i}`));
      await waitFor(
        () => (handledBy["first"]?.length ?? 0) + (handledBy["second"]?.length ?? 0) >= count,
        "all jobs",
      );
      await sleep(300);
      await c1.stop();
      await c2.stop();
      const all = [...(handledBy["first"] ?? []), ...(handledBy["second"] ?? [])];
      expect(all).toHaveLength(count);
      expect(new Set(all).size).toBe(count);
      expect(handledBy["first"]?.length).toBeGreaterThan(0);
      expect(handledBy["second"]?.length).toBeGreaterThan(0);
      expect(await first.pending()).toBe(0);
    });

    it("waits for running handlers when a consumer stops, and delivers nothing after", async () => {
      const queue = await clients.a.eventQueue();
      await queue.enqueue(subject, bytes("long"));
      let finished = false;
      let started = 0;
      const consumer = await queue.consume(
        async (job) => {
          started++;
          await sleep(500);
          finished = true;
          await job.ack();
        },
        { concurrency: 1, ackWaitMs: 30_000 },
      );
      await waitFor(() => started === 1, "the delivery");
      await consumer.stop();
      expect(finished).toBe(true);
      await queue.enqueue(subject, bytes("after stop"));
      await sleep(500);
      expect(started).toBe(1);
      expect(await queue.pending()).toBe(1);
    });

    it("refuses subjects outside gust.v1.events.>", async () => {
      const queue = await clients.a.eventQueue();
      expect(await rejection(queue.enqueue("gust.v1.other.t1", bytes("x")))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(await queue.pending()).toBe(0);
    });
  });
}
