/**
 * Tenants' secrets at rest, in a fleet on a real nats-server that admits
 * only Gust's roles: the coordinator seals them with the tenant key, the
 * tenants bucket (read with the admin role, as anyone who got at JetStream
 * would) holds no secret in clear, a frontend with the key authenticates the
 * tenant's requests, and a frontend with another key or none, or a record
 * someone tampered with, refuses them: never accepted.
 */
import { Buckets, decodeRecord, encodeRecord } from "@gust/protocol";
import { startNatsServer, type NatsServerHandle } from "@gust/bus";
import { startCoordinatorService, startFrontendService, type Service } from "@gust/cli";
import { generateTenantKey, TenantKeyring } from "@gust/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRoles, type RoleConnections } from "./support/gust.js";
import { signedFetch } from "./support/signed-fetch.js";
import { testTenant } from "./support/tenants.js";

const LIST = "/2015-03-31/functions/";

/** Waits until `condition` holds; the bound only keeps a broken test from hanging. */
async function eventually(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("tenant secrets sealed in a fleet's KV", () => {
  const acme = testTenant("acme");
  const other = testTenant("other");
  const keyring = new TenantKeyring([generateTenantKey()]);
  let nats: NatsServerHandle;
  let roles: RoleConnections;
  const services: Service[] = [];

  const frontend = async (tenantKeyring?: TenantKeyring) => {
    const service = await startFrontendService(roles.frontend, {
      host: "127.0.0.1",
      port: 0,
      ...(tenantKeyring === undefined ? {} : { tenantKeyring }),
    });
    services.push(service);
    return service;
  };

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true, auth: true });
    roles = await connectRoles(nats);
    services.push(
      await startCoordinatorService(roles.coordinator, {
        tenants: [acme, other],
        tenantKeyring: keyring,
      }),
    );
  });

  afterAll(async () => {
    for (const service of services.reverse()) await service.close();
    await roles?.close();
    await nats?.stop();
  });

  it("holds only ciphertext, which a frontend with the key opens", async () => {
    const kv = await roles.admin.kv(Buckets.tenants);
    for (const tenant of [acme, other]) {
      const entry = await kv.get(`tenant.${tenant.id}`);
      expect(entry).toBeDefined();
      const raw = Buffer.from(entry!.value);
      const secret = tenant.credentials[0]!.secretAccessKey;
      expect(raw.includes(secret)).toBe(false);
      expect(raw.includes(Buffer.from(secret).toString("base64"))).toBe(false);
      expect(raw.includes(tenant.credentials[0]!.accessKeyId)).toBe(true);
    }

    const withKey = await frontend(keyring);
    expect((await signedFetch(withKey.url, acme, "GET", LIST)).status).toBe(200);
    expect((await signedFetch(withKey.url, other, "GET", LIST)).status).toBe(200);
  });

  it("refuses every request at a frontend with another key, or none", async () => {
    for (const tenantKeyring of [new TenantKeyring([generateTenantKey()]), undefined]) {
      const stranger = await frontend(tenantKeyring);
      const response = await signedFetch(stranger.url, acme, "GET", LIST);
      expect(response.status).toBe(403);
      expect(response.body).toMatch(/security token included in the request is invalid/);
    }
  });

  it("refuses a tenant whose record was tampered with, or whose sealed secret was moved", async () => {
    const withKey = await frontend(keyring);
    expect((await signedFetch(withKey.url, other, "GET", LIST)).status).toBe(200);
    const kv = await roles.admin.kv(Buckets.tenants);
    const stored = decodeRecord((await kv.get("tenant.acme"))!.value);
    const otherStored = decodeRecord((await kv.get("tenant.other"))!.value);
    const [acmeCredential] = stored["credentials"] as Array<Record<string, unknown>>;

    // Acme's sealed secret put under other's access key: other's signature
    // (made with other's real secret) no longer checks, and acme's secret
    // does not open there either.
    const [otherCredential] = otherStored["credentials"] as Array<Record<string, unknown>>;
    await kv.put(
      "tenant.other",
      encodeRecord({
        ...otherStored,
        credentials: [
          { ...otherCredential, sealedSecretAccessKey: acmeCredential!["sealedSecretAccessKey"] },
        ],
      }),
    );
    const actingAsOther = {
      ...other,
      credentials: [{ ...acme.credentials[0]!, accessKeyId: other.credentials[0]!.accessKeyId }],
    };
    await eventually(
      async () => (await signedFetch(withKey.url, other, "GET", LIST)).status === 403,
    );
    expect((await signedFetch(withKey.url, actingAsOther, "GET", LIST)).status).toBe(403);

    // One bit of acme's ciphertext flipped.
    const flipped = Uint8Array.from(acmeCredential!["sealedSecretAccessKey"] as Uint8Array);
    flipped[20]! ^= 0x01;
    await kv.put(
      "tenant.acme",
      encodeRecord({
        ...stored,
        credentials: [{ ...acmeCredential, sealedSecretAccessKey: flipped }],
      }),
    );
    await eventually(
      async () => (await signedFetch(withKey.url, acme, "GET", LIST)).status === 403,
    );

    // The coordinator writes them again; the fleet takes them back.
    const coordinator = await startCoordinatorService(roles.coordinator, {
      tenants: [acme, other],
      tenantKeyring: keyring,
    });
    services.push(coordinator);
    await eventually(
      async () => (await signedFetch(withKey.url, acme, "GET", LIST)).status === 200,
    );
    await eventually(
      async () => (await signedFetch(withKey.url, other, "GET", LIST)).status === 200,
    );
  });
});
