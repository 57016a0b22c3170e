/**
 * What only a real NATS server can show: the bus and the queue surviving a
 * server restart, a fleet setting up the same buckets at once, malformed
 * traffic from a hand-written client, and JetStream configs a 2.9 server
 * accepts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buckets, GustError, Streams } from "@gust/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sleep, waitFor } from "./conformance-helpers.js";
import { connectNatsInfrastructure } from "./nats-infrastructure.js";
import { DEFAULT_EVENT_CONSUMER } from "./nats-queue.js";
import { startNatsServer } from "./nats-server.js";
import type { NatsServerHandle } from "./nats-server.js";
import { silentLogger } from "./test-logger.js";
import type { BusStatus, Infrastructure, KvChange } from "./types.js";

const te = new TextEncoder();
const td = new TextDecoder();

let server: NatsServerHandle;
const opened: Infrastructure[] = [];
const extraServers: NatsServerHandle[] = [];
const extraDirs: string[] = [];

async function open(): Promise<Infrastructure> {
  const infrastructure = await connectNatsInfrastructure({
    servers: server.url,
    reconnectWaitMs: 200,
    logger: silentLogger(),
  });
  opened.push(infrastructure);
  return infrastructure;
}

beforeAll(async () => {
  server = await startNatsServer();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((infrastructure) => infrastructure.close()));
});
afterAll(async () => {
  // Servers a test started for itself, in case it timed out before its own cleanup.
  await Promise.all(extraServers.map((extra) => extra.stop()));
  await Promise.all(extraDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  await server?.stop();
});

describe("NATS infrastructure", () => {
  // Both need a server of their own to take down, which NATS_URL does not give.
  const ownServer = process.env["NATS_URL"] === undefined;

  it.runIf(ownServer)(
    "reconnects after the server restarts, with subscriptions, KV, watches and the queue intact",
    async () => {
      const subscriber = await open();
      const publisher = await open();
      const statuses: BusStatus[] = [];
      subscriber.bus.onStatus((status) => statuses.push(status));
      const publisherStatuses: BusStatus[] = [];
      publisher.bus.onStatus((status) => publisherStatuses.push(status));
      await waitFor(
        () => statuses.length === 1 && publisherStatuses.length === 1,
        "the initial status",
      );

      const received: string[] = [];
      subscriber.bus.subscribe("fault.x", (m) => void received.push(td.decode(m.data)));
      subscriber.bus.subscribe("fault.echo", (m) => void m.respond(m.data));
      const kv = await subscriber.kv(Buckets.functions);
      const revision = await kv.put("t1.fn", te.encode("kept on disk"));
      const changes: KvChange[] = [];
      await kv.watch(">", (change) => changes.push(change));
      const queue = await subscriber.eventQueue();
      const jobs: string[] = [];
      await queue.consume(
        async (job) => {
          jobs.push(td.decode(job.data));
          await job.ack();
        },
        { concurrency: 1, ackWaitMs: 30_000 },
      );
      await subscriber.bus.flush();

      await server.restart();
      await waitFor(() => statuses.includes("disconnected"), "the disconnect", 30_000);
      await waitFor(() => statuses.includes("reconnected"), "the reconnect", 30_000);
      await waitFor(
        () => publisherStatuses.includes("reconnected"),
        "the publisher's reconnect",
        30_000,
      );
      await publisher.bus.flush();
      expect(statuses.slice(0, 3)).toEqual(["connected", "disconnected", "reconnected"]);

      // Core NATS: the subscriptions were re-established.
      publisher.bus.publish("fault.x", te.encode("after restart"));
      await waitFor(
        () => received.includes("after restart"),
        "a message after the restart",
        30_000,
      );
      const reply = await publisher.bus.request("fault.echo", te.encode("ping"), {
        timeoutMs: 10_000,
      });
      expect(td.decode(reply.data)).toBe("ping");

      // JetStream: the data survived on disk, the watch and the consumer resumed.
      const entry = await (await publisher.kv(Buckets.functions)).get("t1.fn");
      expect(entry?.revision).toBe(revision);
      expect(td.decode(entry?.value ?? new Uint8Array())).toBe("kept on disk");
      await (await publisher.kv(Buckets.functions)).put("t1.fn", te.encode("changed"));
      await waitFor(
        () => changes.some((c) => c.op === "put" && td.decode(c.value) === "changed"),
        "the watch",
        30_000,
      );
      await (
        await publisher.eventQueue()
      ).enqueue("gust.v1.events.t1", te.encode("job after restart"));
      await waitFor(() => jobs.includes("job after restart"), "the job", 30_000);
    },
  );

  it.runIf(ownServer)(
    "keeps reconnecting through a long outage, failing requests cleanly meanwhile",
    async () => {
      const storeDir = await mkdtemp(join(tmpdir(), "gust-outage-"));
      extraDirs.push(storeDir);
      let own = await startNatsServer({ storeDir });
      extraServers.push(own);
      const port = own.port;
      try {
        const infrastructure = await connectNatsInfrastructure({
          servers: own.url,
          reconnectWaitMs: 100,
          logger: silentLogger(),
        });
        opened.push(infrastructure);
        const statuses: BusStatus[] = [];
        infrastructure.bus.onStatus((status) => statuses.push(status));
        const received: string[] = [];
        infrastructure.bus.subscribe("outage.x", (m) => void received.push(td.decode(m.data)));
        await infrastructure.bus.flush();

        await own.stop();
        await waitFor(() => statuses.includes("disconnected"), "the disconnect", 30_000);
        // nats.js gives up after 10 attempts by default; at 100 ms apart, 3 s is well past that.
        const error = await infrastructure.bus
          .request("outage.x", te.encode("?"), { timeoutMs: 500 })
          .then(
            () => undefined,
            (e: unknown) => e as GustError,
          );
        expect(error).toBeInstanceOf(GustError);
        expect(error?.retryable).toBe(true);
        await sleep(3_000);

        own = await startNatsServer({ port, storeDir });
        extraServers.push(own);
        await waitFor(() => statuses.includes("reconnected"), "the reconnect", 30_000);
        infrastructure.bus.publish("outage.x", te.encode("back"));
        await waitFor(() => received.includes("back"), "a message after the outage", 30_000);
      } finally {
        await own.stop();
        await rm(storeDir, { recursive: true, force: true });
      }
    },
  );

  it("puts the event stream and consumer back when an operator deletes them", async () => {
    const infrastructure = await open();
    const queue = await infrastructure.eventQueue();
    const jobs: string[] = [];
    await queue.consume(
      async (job) => {
        jobs.push(td.decode(job.data));
        await job.ack();
      },
      { concurrency: 1, ackWaitMs: 30_000 },
    );
    await queue.enqueue("gust.v1.events.t1", te.encode("before"));
    await waitFor(() => jobs.includes("before"), "the first job");

    const nc = await connect({ servers: server.url });
    try {
      await (await jetstreamManager(nc)).streams.delete(Streams.events);
    } finally {
      await nc.close();
    }
    await queue.enqueue("gust.v1.events.t1", te.encode("after"));
    await waitFor(() => jobs.includes("after"), "the job after the deletion", 60_000);
  });

  it("lets several processes set up the same buckets, stores and queue at once", async () => {
    const fleet = await Promise.all([open(), open(), open()]);
    const results = await Promise.all(
      fleet.flatMap((infrastructure) => [
        infrastructure.kv("race_bucket"),
        infrastructure.blobs("race_store"),
        infrastructure.eventQueue(),
      ]),
    );
    expect(results).toHaveLength(9);
    const kvs = await Promise.all(fleet.map((infrastructure) => infrastructure.kv("race_bucket")));
    await kvs[0]?.put("k", te.encode("v"));
    expect(td.decode((await kvs[2]?.get("k"))?.value ?? new Uint8Array())).toBe("v");
  });

  it("creates JetStream resources a 2.9 server accepts, with the configured shape", async () => {
    const infrastructure = await open();
    const queue = await infrastructure.eventQueue();
    const consumer = await queue.consume(async (job) => job.ack(), {
      concurrency: 1,
      ackWaitMs: 7_000,
    });
    await consumer.stop();
    await infrastructure.kv(Buckets.tenants);
    await infrastructure.blobs(Buckets.code);

    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = await jsm.streams.info(Streams.events);
      expect(stream.config.subjects).toEqual(["gust.v1.events.>"]);
      expect(stream.config.retention).toBe("workqueue");
      expect(stream.config.storage).toBe("file");
      const info = await jsm.consumers.info(Streams.events, DEFAULT_EVENT_CONSUMER);
      expect(info.config.ack_policy).toBe("explicit");
      expect(info.config.ack_wait).toBe(7_000 * 1_000_000);

      // A later consume() with another ackWait moves the shared consumer to it.
      const again = await queue.consume(async (job) => job.ack(), {
        concurrency: 1,
        ackWaitMs: 9_000,
      });
      await again.stop();
      expect(
        (await jsm.consumers.info(Streams.events, DEFAULT_EVENT_CONSUMER)).config.ack_wait,
      ).toBe(9_000 * 1_000_000);

      const kvStream = await jsm.streams.info(`KV_${Buckets.tenants}`);
      expect(kvStream.config.max_msgs_per_subject).toBe(1);
      expect(kvStream.config.storage).toBe("file");
      const objStream = await jsm.streams.info(`OBJ_${Buckets.code}`);
      expect(objStream.config.storage).toBe("file");
      expect(nc.info?.max_payload).toBe(8 * 1024 * 1024);
    } finally {
      await nc.close();
    }
  });

  it("keeps serving when a raw client sends malformed headers", async () => {
    const infrastructure = await open();
    const received: { data: string; headers: object }[] = [];
    infrastructure.bus.subscribe(
      "raw.x",
      (m) => void received.push({ data: td.decode(m.data), headers: m.headers }),
    );
    await infrastructure.bus.flush();

    // A header block whose first name has a space: nats.js refuses to decode it.
    const block = "NATS/1.0\r\nbad name: x\r\n\r\n";
    const payload = "body";
    const frames = [
      'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n',
      `HPUB raw.x ${block.length} ${block.length + payload.length}\r\n${block}${payload}\r\n`,
      "PUB raw.x 2\r\nok\r\n",
      "PING\r\n",
    ].join("");
    await new Promise<void>((resolve, reject) => {
      const socket = tcpConnect({ host: "127.0.0.1", port: server.port }, () =>
        socket.write(frames),
      );
      socket.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("PONG")) {
          socket.end();
          resolve();
        }
      });
      socket.on("error", reject);
    });
    await waitFor(() => received.some((m) => m.data === "ok"), "the well-formed message");
    await sleep(100);
    // The malformed block is ignored: the handler still gets the bytes, without headers.
    expect(received).toEqual([
      { data: "body", headers: {} },
      { data: "ok", headers: {} },
    ]);

    // The connection still works both ways.
    const echo = infrastructure.bus.subscribe("raw.echo", (m) => void m.respond(m.data));
    const reply = await infrastructure.bus.request("raw.echo", te.encode("still here"), {
      timeoutMs: 5_000,
    });
    expect(td.decode(reply.data)).toBe("still here");
    echo.unsubscribe();
  });

  it("fails to connect with a clear error when no server listens", async () => {
    const error = await connectNatsInfrastructure({
      servers: "nats://127.0.0.1:1",
      connectTimeoutMs: 2_000,
      logger: silentLogger(),
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/127\.0\.0\.1:1/);
  });
});
