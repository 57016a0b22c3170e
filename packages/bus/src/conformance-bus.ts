/** Conformance of Bus implementations: see conformance.ts. */
import { randomBytes } from "node:crypto";
import { BusTimeoutError, GustError, NoRespondersError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { BusClosedError, InvalidBusArgumentError, PayloadTooLargeError } from "./errors.js";
import { MB, bytes, rejection, sleep, text, thrown, waitFor } from "./conformance-helpers.js";
import type { ConformanceClients } from "./conformance-helpers.js";
import type { BusMessage, BusStatus } from "./types.js";

export function describeBusConformance(clients: ConformanceClients): void {
  describe("bus", () => {
    it("routes by subject with * and > wildcards, in publish order", async () => {
      const star: string[] = [];
      const tail: string[] = [];
      const exact: string[] = [];
      clients.a.bus.subscribe("t.*.x", (m) => void star.push(text(m.data)));
      clients.a.bus.subscribe("t.>", (m) => void tail.push(text(m.data)));
      clients.a.bus.subscribe("t.a.x", (m) => void exact.push(text(m.data)));
      await clients.a.bus.flush();
      for (const subject of ["t.a.x", "t.b.x", "t.a.y.z", "t", "u.a.x", "t.a.x.y"]) {
        clients.b.bus.publish(subject, bytes(subject));
      }
      // Every subscription sees this last one; anything it should have seen came before.
      clients.b.bus.publish("t.a.x", bytes("end"));
      await clients.b.bus.flush();
      await waitFor(
        () => star.includes("end") && tail.includes("end") && exact.includes("end"),
        "the last message",
      );
      expect(star).toEqual(["t.a.x", "t.b.x", "end"]);
      expect(tail).toEqual(["t.a.x", "t.b.x", "t.a.y.z", "t.a.x.y", "end"]);
      expect(exact).toEqual(["t.a.x", "end"]);
    });

    it("delivers asynchronously, never inside publish()", async () => {
      let delivered = false;
      clients.a.bus.subscribe("async.x", () => {
        delivered = true;
      });
      await clients.a.bus.flush();
      clients.a.bus.publish("async.x", bytes("1"));
      expect(delivered).toBe(false);
      await waitFor(() => delivered, "the delivery");
    });

    it("stops delivering after unsubscribe", async () => {
      const got: string[] = [];
      const subscription = clients.a.bus.subscribe("unsub.x", (m) => void got.push(text(m.data)));
      const witness: string[] = [];
      clients.a.bus.subscribe("unsub.x", (m) => void witness.push(text(m.data)));
      await clients.a.bus.flush();
      clients.b.bus.publish("unsub.x", bytes("1"));
      await waitFor(() => got.length === 1, "the first message");
      subscription.unsubscribe();
      await clients.a.bus.flush();
      clients.b.bus.publish("unsub.x", bytes("2"));
      await waitFor(() => witness.length === 2, "the second message at the other subscriber");
      expect(got).toEqual(["1"]);
    });

    it("gives each message to one member of a queue group, and a copy to plain subscribers", async () => {
      const members: string[][] = [[], [], []];
      const plain: string[] = [];
      clients.a.bus.subscribe("work.item", (m) => void members[0]?.push(text(m.data)), {
        queue: "workers",
      });
      clients.a.bus.subscribe("work.item", (m) => void members[1]?.push(text(m.data)), {
        queue: "workers",
      });
      clients.b.bus.subscribe("work.*", (m) => void members[2]?.push(text(m.data)), {
        queue: "workers",
      });
      clients.b.bus.subscribe("work.>", (m) => void plain.push(text(m.data)));
      await clients.a.bus.flush();
      await clients.b.bus.flush();
      const count = 60;
      for (let i = 0; i < count; i++) clients.b.bus.publish("work.item", bytes(String(i)));
      await clients.b.bus.flush();
      await waitFor(
        () => plain.length === count && members.flat().length >= count,
        "all deliveries",
      );
      await sleep(200);
      const delivered = members.flat();
      expect(delivered).toHaveLength(count);
      expect(new Set(delivered).size).toBe(count);
      // Members are chosen at random: all three idle for 60 messages is vanishingly unlikely.
      for (const member of members) expect(member.length).toBeGreaterThan(0);
      expect(plain).toHaveLength(count);
    });

    it("answers a request with the responder's reply and headers", async () => {
      clients.b.bus.subscribe("svc.echo", (m) => {
        m.respond(bytes(`echo:${text(m.data)}`), {
          "gust-request-id": m.headers["gust-request-id"] ?? "none",
        });
      });
      await clients.b.bus.flush();
      const reply = await clients.a.bus.request("svc.echo", bytes("hi"), {
        timeoutMs: 10_000,
        headers: { "gust-request-id": "req-1" },
      });
      expect(text(reply.data)).toBe("echo:hi");
      expect(reply.headers["gust-request-id"]).toBe("req-1");
      // A reply has nobody to reply to.
      expect(reply.respond(bytes("again"))).toBe(false);
    });

    it("has respond() return false for a plain publish", async () => {
      let result: boolean | undefined;
      clients.a.bus.subscribe("plain.x", (m) => {
        result = m.respond(bytes("nobody"));
      });
      await clients.a.bus.flush();
      clients.b.bus.publish("plain.x", bytes("1"));
      await waitFor(() => result !== undefined, "the delivery");
      expect(result).toBe(false);
    });

    it("rejects a request nobody listens to with NoRespondersError at once", async () => {
      const started = Date.now();
      const error = await rejection(
        clients.a.bus.request("nobody.home", bytes("?"), { timeoutMs: 20_000 }),
      );
      expect(error).toBeInstanceOf(NoRespondersError);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it("rejects a request that gets no reply with BusTimeoutError after timeoutMs", async () => {
      let seen = 0;
      clients.b.bus.subscribe("svc.silent", () => {
        seen++;
      });
      await clients.b.bus.flush();
      const started = Date.now();
      const error = await rejection(
        clients.a.bus.request("svc.silent", bytes("?"), { timeoutMs: 400 }),
      );
      expect(error).toBeInstanceOf(BusTimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      expect(seen).toBe(1);
    });

    it("carries headers unchanged and refuses invalid ones", async () => {
      const received: BusMessage[] = [];
      clients.a.bus.subscribe("hdr.x", (m) => void received.push(m));
      await clients.a.bus.flush();
      const headers = {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "gust-request-id": "abc-123",
        "gust-content-type": "application/msgpack",
      };
      clients.b.bus.publish("hdr.x", bytes("with"), headers);
      clients.b.bus.publish("hdr.x", bytes("without"));
      await waitFor(() => received.length === 2, "both messages");
      expect(received[0]?.headers).toEqual(headers);
      expect(received[1]?.headers).toEqual({});
      expect(
        thrown(() => clients.b.bus.publish("hdr.x", bytes("bad"), { "bad name": "x" })),
      ).toBeInstanceOf(InvalidBusArgumentError);
      expect(
        thrown(() => clients.b.bus.publish("hdr.x", bytes("bad"), { ok: "line\r\nbreak" })),
      ).toBeInstanceOf(InvalidBusArgumentError);
    });

    it("refuses wildcard publishes and malformed subjects", () => {
      expect(thrown(() => clients.a.bus.publish("a.*", bytes("x")))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(thrown(() => clients.a.bus.publish("a..b", bytes("x")))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(thrown(() => clients.a.bus.publish("", bytes("x")))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(thrown(() => clients.a.bus.subscribe("a.>.b", () => undefined))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
      expect(thrown(() => clients.a.bus.subscribe("a b", () => undefined))).toBeInstanceOf(
        InvalidBusArgumentError,
      );
    });

    it("hands garbage bytes through untouched and survives handlers that throw", async () => {
      const payloads = [
        new Uint8Array(0),
        new Uint8Array([0xff, 0x00, 0xc1, 0xde, 0xad]),
        randomBytes(4096),
      ];
      const received: Uint8Array[] = [];
      let calls = 0;
      clients.a.bus.subscribe("junk.x", (m) => {
        calls++;
        received.push(Uint8Array.from(m.data));
        if (calls === 1) throw new Error("handler blew up");
        if (calls === 2) return Promise.reject(new Error("async handler blew up"));
        return undefined;
      });
      await clients.a.bus.flush();
      for (const payload of payloads) clients.b.bus.publish("junk.x", payload);
      await waitFor(() => received.length === payloads.length, "all payloads");
      received.forEach((data, i) =>
        expect(Buffer.from(data).equals(Buffer.from(payloads[i] ?? []))).toBe(true),
      );
    });

    it("carries a 6 MB payload and refuses one above the payload limit", async () => {
      const payload = randomBytes(6 * MB);
      clients.b.bus.subscribe("big.x", (m) => {
        m.respond(Uint8Array.from(m.data).reverse());
      });
      await clients.b.bus.flush();
      const reply = await clients.a.bus.request("big.x", payload, { timeoutMs: 20_000 });
      expect(Buffer.from(reply.data).equals(Buffer.from(Uint8Array.from(payload).reverse()))).toBe(
        true,
      );
      expect(thrown(() => clients.a.bus.publish("big.x", new Uint8Array(9 * MB)))).toBeInstanceOf(
        PayloadTooLargeError,
      );
    });

    it("reports the current connection state to a new status listener", async () => {
      const seen: BusStatus[] = [];
      const remove = clients.a.bus.onStatus((status) => seen.push(status));
      await waitFor(() => seen.length > 0, "the first status");
      expect(seen[0]).toBe("connected");
      remove();
    });

    it("refuses to publish once closed, and fails requests still waiting", async () => {
      clients.b.bus.subscribe("svc.never", () => undefined);
      await clients.b.bus.flush();
      const waiting = rejection(
        clients.a.bus.request("svc.never", bytes("?"), { timeoutMs: 20_000 }),
      );
      await sleep(100);
      const started = Date.now();
      await clients.a.close();
      const error = await waiting;
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(error).toBeInstanceOf(GustError);
      expect(thrown(() => clients.a.bus.publish("closed.x", bytes("x")))).toBeInstanceOf(
        BusClosedError,
      );
    });
  });
}
