import { mkdtemp, readdir, rm } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startNatsServer } from "./nats-server.js";
import type { NatsServerHandle } from "./nats-server.js";

const started: NatsServerHandle[] = [];
const env = { TMPDIR: process.env["TMPDIR"], NATS_URL: process.env["NATS_URL"] };

beforeEach(() => {
  // These tests are about launching a server; a NATS_URL in the environment would bypass that.
  delete process.env["NATS_URL"];
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()));
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

async function start(options?: Parameters<typeof startNatsServer>[0]): Promise<NatsServerHandle> {
  const server = await startNatsServer(options);
  started.push(server);
  return server;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("startNatsServer", () => {
  it("starts nats-server on a random port with JetStream and an 8 MB max_payload", async () => {
    const server = await start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const nc = await connect({ servers: server.url });
    try {
      expect(nc.info?.max_payload).toBe(8 * 1024 * 1024);
      expect(nc.info?.jetstream).toBe(true);
    } finally {
      await nc.close();
    }
  });

  it("starts two servers side by side on different ports", async () => {
    const [one, two] = await Promise.all([start(), start()]);
    expect(one?.port).not.toBe(two?.port);
  });

  it("restarts on the same port with the same JetStream store", async () => {
    const server = await start();
    const port = server.port;
    let nc = await connect({ servers: server.url });
    const kv = await new Kvm(jetstream(nc)).create("restart_test");
    await kv.put("k", new TextEncoder().encode("survives"));
    await nc.close();

    await server.restart();
    expect(server.port).toBe(port);
    nc = await connect({ servers: server.url });
    try {
      const entry = await (await new Kvm(jetstream(nc)).open("restart_test")).get("k");
      expect(new TextDecoder().decode(entry?.value)).toBe("survives");
    } finally {
      await nc.close();
    }
  });

  it("uses the port it is given", async () => {
    const probe = await start();
    const port = probe.port;
    await probe.stop();
    const server = await start({ port, jetstream: false });
    expect(server.port).toBe(port);
    expect(await accepts(port)).toBe(true);
  });

  it("stops the process and removes its temp dir, and keeps a store dir it was given", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "gust-nats-test-"));
    try {
      process.env["TMPDIR"] = scratch;
      const storeDir = join(scratch, "store");
      const server = await start({ storeDir });
      expect((await readdir(scratch)).filter((d) => d.startsWith("gust-nats-"))).toHaveLength(1);
      await server.stop();
      await server.stop(); // idempotent
      expect(await accepts(server.port)).toBe(false);
      expect(await readdir(scratch)).toEqual(["store"]);
      expect((await readdir(storeDir)).length).toBeGreaterThan(0);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("uses NATS_URL when set, leaving that server alone", async () => {
    const real = await start();
    process.env["NATS_URL"] = real.url;
    const shared = await startNatsServer();
    expect(shared.url).toBe(real.url);
    expect(shared.port).toBe(real.port);
    await expect(shared.restart()).rejects.toThrow(/NATS_URL/);
    await shared.stop();
    await shared[Symbol.asyncDispose]();
    expect(await accepts(real.port)).toBe(true);
  });

  it("refuses a bad port", async () => {
    await expect(startNatsServer({ port: 70_000 })).rejects.toThrow(/port/);
  });
});
