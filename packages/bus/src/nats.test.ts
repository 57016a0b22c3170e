/**
 * The conformance suite against a real nats-server started for this file on
 * a random port (Debian ships 2.9.10, so this also proves that what nats.js
 * sends is accepted by a 2.9 server), plus what only NATS can show:
 * reconnecting after a restart, concurrent setup, malformed traffic.
 */
import { Streams } from "@gust/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import { describeInfrastructureConformance } from "./conformance.js";
import { connectNatsInfrastructure } from "./nats-infrastructure.js";
import { startNatsServer } from "./nats-server.js";
import type { NatsServerHandle } from "./nats-server.js";
import type { Infrastructure } from "./types.js";
import { silentLogger } from "./test-logger.js";

let server: NatsServerHandle;
let admin: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  admin = await connect({ servers: server.url });
});

afterAll(async () => {
  await admin?.close();
  await server?.stop();
});

/**
 * Each test starts without the streams the suite creates (its buckets and
 * stores are named conf_*, plus the event queue). Only those: with NATS_URL
 * set, the server may be someone else's.
 */
async function resetJetStream(): Promise<void> {
  const jsm = await jetstreamManager(admin);
  const ours = /^(KV_conf_|OBJ_conf_)/;
  for await (const name of jsm.streams.names()) {
    if (ours.test(name) || name === Streams.events) await jsm.streams.delete(name);
  }
}

describeInfrastructureConformance("NATS", async () => {
  await resetJetStream();
  const opened: Infrastructure[] = [];
  return {
    connect: async () => {
      const infrastructure = await connectNatsInfrastructure({
        servers: server.url,
        logger: silentLogger(),
      });
      opened.push(infrastructure);
      return infrastructure;
    },
    dispose: async () => {
      await Promise.all(opened.map((infrastructure) => infrastructure.close()));
    },
  };
});
