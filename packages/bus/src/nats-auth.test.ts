/**
 * The bus's credentials and permissions on a real nats-server (Debian's
 * 2.9.10 where it is installed): who gets in, and what each role may not do.
 * Each refusal is asserted as nats.js reports it (a refused connection, a
 * subscription closed with a permission error, a request that fails), and
 * in the server's own log.
 */
import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buckets, Subjects } from "@gust/protocol";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generateBusCredentials,
  natsAccountsConfig,
  publicKeyOfSeed,
  publicKeysOf,
  readSeedFile,
} from "./nats-auth.js";
import { connectNatsInfrastructure } from "./nats-infrastructure.js";
import { silentLogger } from "./test-logger.js";
import { BUS_PERMISSIONS, inboxPrefixFor, type BusRole } from "./nats-permissions.js";
import { startNatsServer, type NatsServerHandle } from "./nats-server.js";

describe("bus credentials", () => {
  it("makes a distinct user nkey per role, whose seed yields its public key", () => {
    const credentials = generateBusCredentials();
    const keys = Object.values(credentials).map((identity) => identity.publicKey);
    expect(new Set(keys).size).toBe(4);
    for (const identity of Object.values(credentials)) {
      expect(identity.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
      expect(publicKeyOfSeed(identity.seed)).toBe(identity.publicKey);
    }
    expect(() => publicKeyOfSeed("SUnot-a-seed")).toThrow(/not a valid NATS nkey seed/);
    expect(() => publicKeyOfSeed("hunter2")).toThrow(/not a NATS user nkey seed/);
  });

  it("writes an accounts block with every role's key and permissions, and no anonymous user", () => {
    const credentials = generateBusCredentials();
    const config = natsAccountsConfig(publicKeysOf(credentials));
    for (const identity of Object.values(credentials)) expect(config).toContain(identity.publicKey);
    expect(config).toMatch(/^accounts \{\n {2}GUST \{\n {4}jetstream: enabled/m);
    expect(config).not.toMatch(/^\s*(no_auth_user|authorization)\b/m);
    expect(() => natsAccountsConfig({ worker: "not-a-key" })).toThrow(/not a user nkey/);
  });

  it("keeps the tenants bucket and the Event stream from workers", () => {
    const worker = BUS_PERMISSIONS.worker;
    const all = [...worker.publish, ...worker.subscribe].join("\n");
    expect(all).not.toContain(Buckets.tenants);
    expect(all).not.toContain("GUST_EVENTS");
    expect(worker.subscribe).toEqual(expect.arrayContaining([`${inboxPrefixFor("worker")}.>`]));
    for (const role of ["frontend", "worker", "coordinator"] as const) {
      const permissions = BUS_PERMISSIONS[role];
      expect(permissions.publish).not.toContain(">");
      expect(permissions.subscribe).not.toContain(">");
      // The only inbox a role may read is its own.
      const inboxes = permissions.subscribe.filter((subject) => subject.startsWith("_INBOX"));
      expect(inboxes).toEqual([`_INBOX_${role}.>`]);
    }
  });

  describe("seed files", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "gust-seeds-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("reads a seed its owner alone can read, and refuses one others can", async () => {
      const { seed } = generateBusCredentials().worker;
      const file = join(dir, "worker.nk");
      await writeFile(file, `${seed}\n`, { mode: 0o600 });
      expect(await readSeedFile(file)).toBe(seed);
      await chmod(file, 0o440); // a Kubernetes Secret mounted for the pod's fsGroup
      expect(await readSeedFile(file)).toBe(seed);
      await chmod(file, 0o644);
      await expect(readSeedFile(file)).rejects.toThrow(/mode 0644: other users could read/);
      await chmod(file, 0o660);
      await expect(readSeedFile(file)).rejects.toThrow(/mode 0660/);
      await expect(readSeedFile(join(dir, "missing.nk"))).rejects.toThrow(/cannot read/);
    });
  });
});

describe("an authenticated nats-server", () => {
  let nats: NatsServerHandle;
  const open: NatsConnection[] = [];

  beforeAll(async () => {
    delete process.env["NATS_URL"];
    nats = await startNatsServer({ jetstream: true, auth: true });
  });
  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close()));
    await nats?.stop();
  });

  const connectAs = async (role: BusRole): Promise<NatsConnection> => {
    const seed = nats.auth!.credentials[role].seed;
    const nc = await connect({
      servers: nats.url,
      name: `test-${role}`,
      inboxPrefix: inboxPrefixFor(role),
      authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    });
    open.push(nc);
    return nc;
  };

  /** Subscribes and waits for the server's answer: the error that closed it, or undefined. */
  const subscribeOutcome = async (nc: NatsConnection, subject: string) => {
    const sub = nc.subscribe(subject);
    await nc.flush();
    // A refusal arrives right behind the flush's PONG; give it a round trip more.
    await nc.flush();
    if (!sub.isClosed()) {
      sub.unsubscribe();
      return undefined;
    }
    const reason = await sub.closed;
    return reason instanceof Error ? reason : undefined;
  };

  const violationsFor = (role: BusRole, subject: string) =>
    nats
      .permissionViolations()
      .filter((line) => line.includes(`"${role}"`) && line.includes(subject));

  it("writes each role's seed for the processes to connect with, readable by its owner only", async () => {
    for (const [role, file] of Object.entries(nats.auth!.seedFiles)) {
      expect((await stat(file)).mode & 0o777, role).toBe(0o600);
      expect(await readSeedFile(file)).toBe(nats.auth!.credentials[role as BusRole].seed);
    }
  });

  it("refuses a client without credentials, and one with a key it does not know", async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(
      /Authorization Violation/,
    );
    const stranger = generateBusCredentials().admin.seed;
    await expect(
      connect({
        servers: nats.url,
        reconnect: false,
        authenticator: nkeyAuthenticator(new TextEncoder().encode(stranger)),
      }),
    ).rejects.toThrow(/Authorization Violation/);
  });

  it("refuses a worker every subject, KV bucket and inbox that is not a worker's", async () => {
    const worker = await connectAs("worker");
    for (const subject of [
      ">",
      Subjects.gossipDemand,
      `$KV.${Buckets.tenants}.>`,
      `${inboxPrefixFor("frontend")}.>`,
      "_INBOX.>",
    ]) {
      const refused = await subscribeOutcome(worker, subject);
      expect(refused?.message, subject).toMatch(/Permissions Violation for Subscription/);
      expect(violationsFor("worker", subject)).not.toEqual([]);
    }
    // Reading a tenant's secret key straight from the stream.
    await expect(
      worker.request(
        `$JS.API.DIRECT.GET.KV_${Buckets.tenants}.$KV.${Buckets.tenants}.acme`,
        new Uint8Array(),
        { timeout: 5_000 },
      ),
    ).rejects.toThrow(/Permissions Violation for Publish/);
    // Or through the KV API.
    const kv = new Kvm(jetstream(worker));
    await expect(kv.open(Buckets.tenants).then((bucket) => bucket.get("acme"))).rejects.toThrow(
      /Permissions Violation/,
    );
    // Writing a tenant, taking a frontend's or the coordinator's part.
    for (const subject of [
      `$KV.${Buckets.tenants}.mallory`,
      Subjects.gossipDemand,
      Subjects.workerDiscover,
      Subjects.rolloutVerdict,
      Subjects.events("acme"),
    ]) {
      worker.publish(subject, new Uint8Array([1]));
      await worker.flush();
      await worker.flush();
      expect(violationsFor("worker", subject), subject).not.toEqual([]);
    }
  });

  it("refuses a frontend the workers' invocations and heartbeats", async () => {
    const frontend = await connectAs("frontend");
    for (const subject of [
      Subjects.invoke("w1"),
      "gust.v1.invoke.*",
      `${inboxPrefixFor("worker")}.>`,
    ]) {
      const refused = await subscribeOutcome(frontend, subject);
      expect(refused?.message, subject).toMatch(/Permissions Violation for Subscription/);
    }
    for (const subject of [
      Subjects.workerGone,
      Subjects.workerHeartbeat,
      Subjects.rolloutVerdict,
    ]) {
      frontend.publish(subject, new Uint8Array([1]));
      await frontend.flush();
      await frontend.flush();
      expect(violationsFor("frontend", subject), subject).not.toEqual([]);
    }
  });

  it("lets each role do its part: a frontend's invocation reaches a worker, whose answer comes back", async () => {
    const [frontend, worker] = await Promise.all([connectAs("frontend"), connectAs("worker")]);
    const sub = worker.subscribe(Subjects.invoke("w1"), {
      callback: (_error, msg) => {
        msg.respond(new TextEncoder().encode("done"));
      },
    });
    await worker.flush();
    const reply = await frontend.request(Subjects.invoke("w1"), new Uint8Array([1]), {
      timeout: 5_000,
    });
    expect(new TextDecoder().decode(reply.data)).toBe("done");
    sub.unsubscribe();
    // A worker answers a request once; it cannot publish to the frontend's inbox on its own.
    worker.publish(`${inboxPrefixFor("frontend")}.forged`, new Uint8Array([1]));
    await worker.flush();
    await worker.flush();
    expect(violationsFor("worker", `${inboxPrefixFor("frontend")}.forged`)).not.toEqual([]);
  });

  it("opens the buckets a role needs through Gust's own NATS infrastructure", async () => {
    const coordinator = await connectNatsInfrastructure({
      servers: nats.url,
      logger: silentLogger(),
      role: "coordinator",
      nkeySeed: nats.auth!.credentials.coordinator.seed,
    });
    const worker = await connectNatsInfrastructure({
      servers: nats.url,
      logger: silentLogger(),
      role: "worker",
      nkeySeed: nats.auth!.credentials.worker.seed,
    });
    try {
      const tenants = await coordinator.kv(Buckets.tenants);
      await tenants.put("acme", new TextEncoder().encode("secret"));
      const functions = await coordinator.kv(Buckets.functions);
      await functions.put("acme.f", new TextEncoder().encode("{}"));
      const seen = await (await worker.kv(Buckets.functions)).get("acme.f");
      expect(new TextDecoder().decode(seen?.value)).toBe("{}");
      await expect(worker.kv(Buckets.tenants)).rejects.toThrow(
        /NATS refused it: this process's role may not use \$JS\.API\.STREAM\.INFO\.KV_gust_tenants$/,
      );
      // A bucket the coordinator has not made yet: the worker may not make it either.
      await expect(worker.kv(Buckets.runtimeVersions)).rejects.toThrow(
        /start the coordinator first/,
      );
      await expect(
        (await worker.kv(Buckets.functions)).put("acme.g", new Uint8Array([1])),
      ).rejects.toThrow();
    } finally {
      await worker.close();
      await coordinator.close();
    }
  });
});
