/**
 * Tenants' secrets at rest: the KV bucket, read raw, holds only their
 * ciphertext, in memory and on a real nats-server; a process with the key
 * finds them, and a record that does not open is left out, never trusted.
 */
import {
  connectNatsInfrastructure,
  createMemoryInfrastructure,
  startNatsServer,
  type Infrastructure,
  type KvBucket,
  type NatsServerHandle,
} from "@gust/bus";
import { Buckets, decodeRecord, encodeRecord } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateTenantKey, TenantKeyring } from "./tenant-key.js";
import { TenantDirectory } from "./tenants.js";
import type { TenantRecord } from "./tenants.js";

const logger = createLogger("tenants-test", { level: "silent" });

const acme: TenantRecord = {
  id: "acme",
  accountId: "123456789012",
  maxConcurrency: 5,
  credentials: [
    { accessKeyId: "AKIAACMEKEY000000001", secretAccessKey: "acme-secret-one-0123456789" },
    { accessKeyId: "AKIAACMEKEY000000002", secretAccessKey: "acme-secret-two-0123456789" },
  ],
  webhook: { url: "https://hooks.acme.example/gust", secret: "acme-webhook-secret-0123" },
};
const evil: TenantRecord = {
  id: "evil",
  accountId: "123456789013",
  maxConcurrency: 5,
  credentials: [{ accessKeyId: "AKIAEVILKEY000000001", secretAccessKey: "evil-secret-0123456789" }],
};
const SECRETS = [
  ...acme.credentials.map((credential) => credential.secretAccessKey),
  acme.webhook!.secret,
  ...evil.credentials.map((credential) => credential.secretAccessKey),
];

function holdsNoSecret(bytes: Uint8Array): void {
  const raw = Buffer.from(bytes);
  for (const secret of SECRETS) {
    expect(raw.includes(secret)).toBe(false);
    expect(raw.includes(Buffer.from(secret).toString("base64"))).toBe(false);
  }
}

async function rawRecords(kv: KvBucket): Promise<Map<string, Uint8Array>> {
  const records = new Map<string, Uint8Array>();
  for (const key of await kv.keys("tenant.>")) {
    const entry = await kv.get(key);
    if (entry) records.set(key, entry.value);
  }
  return records;
}

/** Waits until `condition` holds; the bound only keeps a broken test from hanging. */
async function eventually(condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function describeSealedTenants(name: string, connect: () => Promise<Infrastructure>): void {
  describe(`sealed tenant secrets (${name})`, () => {
    it("stores only ciphertext; a reader with the key authenticates by them", async () => {
      const keyring = new TenantKeyring([generateTenantKey()]);
      const infra = await connect();
      const kv = await infra.kv(Buckets.tenants);
      const coordinator = await TenantDirectory.open(kv, logger, { keyring });
      const frontend = await TenantDirectory.open(kv, logger, { keyring });
      try {
        await coordinator.put(acme);
        await coordinator.put(evil);
        const raw = await rawRecords(kv);
        expect([...raw.keys()]).toEqual(["tenant.acme", "tenant.evil"]);
        for (const bytes of raw.values()) holdsNoSecret(bytes);
        const stored = decodeRecord(raw.get("tenant.acme")!);
        expect(stored["credentials"]).toEqual([
          { accessKeyId: "AKIAACMEKEY000000001", sealedSecretAccessKey: expect.any(Uint8Array) },
          { accessKeyId: "AKIAACMEKEY000000002", sealedSecretAccessKey: expect.any(Uint8Array) },
        ]);

        const found = await frontend.byAccessKey("AKIAACMEKEY000000002");
        expect(found?.tenant.id).toBe("acme");
        expect(found?.secretAccessKey).toBe("acme-secret-two-0123456789");
        expect(frontend.webhookFor("acme")?.secret).toBe("acme-webhook-secret-0123");
      } finally {
        coordinator.close();
        frontend.close();
        await infra.close();
      }
    });

    it("leaves out records that do not open: another key, a tampered or moved secret, a secret in clear", async () => {
      const keyring = new TenantKeyring([generateTenantKey()]);
      const infra = await connect();
      const kv = await infra.kv(Buckets.tenants);
      const coordinator = await TenantDirectory.open(kv, logger, { keyring });
      try {
        await coordinator.put(acme);
        await coordinator.put(evil);

        // A frontend with the wrong key, or none, knows no access key.
        for (const options of [{ keyring: new TenantKeyring([generateTenantKey()]) }, {}]) {
          const stranger = await TenantDirectory.open(kv, logger, options);
          expect(await stranger.byAccessKey("AKIAACMEKEY000000001")).toBeUndefined();
          expect(await stranger.byAccessKey("AKIAEVILKEY000000001")).toBeUndefined();
          expect(stranger.list()).toEqual([]);
          stranger.close();
        }

        const raw = await rawRecords(kv);
        const acmeStored = decodeRecord(raw.get("tenant.acme")!);
        const evilStored = decodeRecord(raw.get("tenant.evil")!);
        const acmeCredentials = acmeStored["credentials"] as Array<Record<string, unknown>>;
        const evilCredentials = evilStored["credentials"] as Array<Record<string, unknown>>;

        // Someone who can write the bucket moves acme's sealed secret under evil's
        // access key, then into a record that claims acme's key for evil.
        await kv.put(
          "tenant.evil",
          encodeRecord({
            ...evilStored,
            credentials: [
              {
                accessKeyId: "AKIAEVILKEY000000001",
                sealedSecretAccessKey: acmeCredentials[0]!["sealedSecretAccessKey"],
              },
            ],
          }),
        );
        const reader = await TenantDirectory.open(kv, logger, { keyring });
        expect(await reader.byAccessKey("AKIAEVILKEY000000001")).toBeUndefined();
        expect((await reader.byAccessKey("AKIAACMEKEY000000001"))?.tenant.id).toBe("acme");
        reader.close();

        await kv.put(
          "tenant.evil",
          encodeRecord({
            ...evilStored,
            credentials: [
              { ...acmeCredentials[0], accessKeyId: "AKIAEVILKEY000000009" },
              ...evilCredentials,
            ],
          }),
        );
        const flipped = Uint8Array.from(acmeCredentials[1]!["sealedSecretAccessKey"] as Uint8Array);
        flipped[flipped.length - 1]! ^= 0x80;
        await kv.put(
          "tenant.acme",
          encodeRecord({
            ...acmeStored,
            credentials: [
              acmeCredentials[0],
              { ...acmeCredentials[1], sealedSecretAccessKey: flipped },
            ],
          }),
        );
        const afterTamper = await TenantDirectory.open(kv, logger, { keyring });
        // The whole record is left out: one bad secret makes none of it trusted.
        expect(await afterTamper.byAccessKey("AKIAACMEKEY000000001")).toBeUndefined();
        expect(await afterTamper.byAccessKey("AKIAACMEKEY000000002")).toBeUndefined();
        expect(await afterTamper.byAccessKey("AKIAEVILKEY000000001")).toBeUndefined();
        expect(await afterTamper.byAccessKey("AKIAEVILKEY000000009")).toBeUndefined();
        afterTamper.close();

        // A record written in clear (an attacker's, or a writer without the key).
        await kv.put("tenant.evil", encodeRecord(evil));
        const clear = await TenantDirectory.open(kv, logger, { keyring });
        expect(await clear.byAccessKey("AKIAEVILKEY000000001")).toBeUndefined();
        clear.close();

        // A reader that was running drops a tenant whose record turns bad.
        await coordinator.put(acme);
        const running = await TenantDirectory.open(kv, logger, { keyring });
        expect((await running.byAccessKey("AKIAACMEKEY000000001"))?.tenant.id).toBe("acme");
        await kv.put(
          "tenant.acme",
          encodeRecord({
            ...acmeStored,
            maxConcurrency: 6,
            credentials: [{ ...acmeCredentials[0], sealedSecretAccessKey: flipped }],
          }),
        );
        await eventually(
          async () => (await running.byAccessKey("AKIAACMEKEY000000001")) === undefined,
        );
        running.close();
      } finally {
        coordinator.close();
        await infra.close();
      }
    });

    it("rotates: a new key seals new writes, the old one still opens the rest", async () => {
      const oldKey = generateTenantKey();
      const newKey = generateTenantKey();
      const infra = await connect();
      const kv = await infra.kv(Buckets.tenants);
      const before = await TenantDirectory.open(kv, logger, {
        keyring: new TenantKeyring([oldKey]),
      });
      await before.put(acme);
      before.close();
      // Frontends first get both keys; then the coordinator, which rewrites what it writes.
      const rotated = new TenantKeyring([oldKey, newKey]);
      const frontend = await TenantDirectory.open(kv, logger, { keyring: rotated });
      const coordinator = await TenantDirectory.open(kv, logger, { keyring: rotated });
      try {
        expect((await frontend.byAccessKey("AKIAACMEKEY000000001"))?.tenant.id).toBe("acme");
        await coordinator.put(evil);
        const raw = await rawRecords(kv);
        const sealedWith = (key: string) =>
          (
            (decodeRecord(raw.get(key)!)["credentials"] as Array<Record<string, unknown>>)[0]![
              "sealedSecretAccessKey"
            ] as Uint8Array
          )[1];
        expect(sealedWith("tenant.acme")).toBe(new TenantKeyring([oldKey]).sealingKeyId);
        expect(sealedWith("tenant.evil")).toBe(rotated.sealingKeyId);
        expect((await frontend.byAccessKey("AKIAEVILKEY000000001"))?.secretAccessKey).toBe(
          "evil-secret-0123456789",
        );
        // Once every record is rewritten, the old key can go.
        await coordinator.put(acme);
        const newOnly = await TenantDirectory.open(kv, logger, {
          keyring: new TenantKeyring([newKey]),
        });
        expect((await newOnly.byAccessKey("AKIAACMEKEY000000001"))?.tenant.id).toBe("acme");
        newOnly.close();
      } finally {
        frontend.close();
        coordinator.close();
        await infra.close();
      }
    });
  });
}

describeSealedTenants("in memory", () => Promise.resolve(createMemoryInfrastructure()));

let server: NatsServerHandle | undefined;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

describeSealedTenants("NATS JetStream KV", async () => {
  const infra = await connectNatsInfrastructure({ servers: server!.url, logger });
  // Each test starts from an empty bucket.
  const kv = await infra.kv(Buckets.tenants);
  for (const key of await kv.keys("tenant.>")) await kv.delete(key);
  return infra;
});
