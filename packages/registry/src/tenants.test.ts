import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryInfrastructure } from "@gust/bus";
import { Buckets, ConfigError } from "@gust/protocol";
import { describe, expect, it } from "vitest";
import { accountIdFor, loadTenantsConfig, parseTenantsConfig } from "./tenant-config.js";
import { TenantDirectory } from "./tenants.js";

const credential = { accessKeyId: "AKIAEXAMPLEKEY000001", secretAccessKey: "s3cr3t-s3cr3t-s3cr3t" };

describe("tenants config", () => {
  it("fills defaults and names the property at fault", () => {
    const [tenant] = parseTenantsConfig({ tenants: [{ id: "acme", credentials: [credential] }] });
    expect(tenant).toEqual({
      id: "acme",
      accountId: accountIdFor("acme"),
      maxConcurrency: 1000,
      credentials: [credential],
    });
    expect(accountIdFor("acme")).toMatch(/^\d{12}$/);
    const [denied] = parseTenantsConfig({
      tenants: [{ id: "walled", egress: "deny", credentials: [credential] }],
    });
    expect(denied?.egress).toBe("deny");
    expect(
      parseTenantsConfig({
        tenants: [{ id: "open", egress: "allow", credentials: [credential] }],
      })[0],
    ).not.toHaveProperty("egress");

    const cases: Array<[unknown, RegExp]> = [
      [{}, /tenants: must be an array/],
      [{ tenants: [{ id: "Bad Id", credentials: [credential] }] }, /tenants\[0\]\.id/],
      [
        { tenants: [{ id: "a", credentials: [] }] },
        /tenants\[0\]\.credentials: must be a non-empty array/,
      ],
      [
        { tenants: [{ id: "a", maxConcurrency: 0, credentials: [credential] }] },
        /tenants\[0\]\.maxConcurrency/,
      ],
      [
        { tenants: [{ id: "a", egress: "none", credentials: [credential] }] },
        /tenants\[0\]\.egress: must be "allow" or "deny"/,
      ],
      [
        {
          tenants: [
            { id: "a", credentials: [{ accessKeyId: "short", secretAccessKey: "x".repeat(20) }] },
          ],
        },
        /credentials\[0\]\.accessKeyId/,
      ],
      [
        {
          tenants: [
            { id: "a", credentials: [credential] },
            { id: "b", credentials: [credential] },
          ],
        },
        /given to both a and b/,
      ],
      [
        {
          tenants: [
            { id: "a", credentials: [credential] },
            { id: "a", credentials: [] },
          ],
        },
        /tenants\[1\]\.credentials/,
      ],
    ];
    for (const [config, message] of cases) {
      expect(() => parseTenantsConfig(config)).toThrow(message);
    }
  });

  it("reports a file that is missing or not JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gust-tenants-"));
    try {
      await expect(loadTenantsConfig(join(dir, "missing.json"))).rejects.toBeInstanceOf(
        ConfigError,
      );
      await writeFile(join(dir, "bad.json"), "{ tenants: ");
      await expect(loadTenantsConfig(join(dir, "bad.json"))).rejects.toThrow(/not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("TenantDirectory", () => {
  it("finds tenants by access key, across processes sharing the store", async () => {
    const infra = createMemoryInfrastructure();
    const kv = await infra.kv(Buckets.tenants);
    const writer = await TenantDirectory.open(kv);
    const reader = await TenantDirectory.open(kv);
    try {
      await writer.put({
        id: "acme",
        accountId: "123456789012",
        maxConcurrency: 5,
        credentials: [credential],
      });
      const found = await reader.byAccessKey(credential.accessKeyId);
      expect(found?.tenant).toEqual({ id: "acme", accountId: "123456789012", maxConcurrency: 5 });
      expect(found?.secretAccessKey).toBe(credential.secretAccessKey);
      expect(await reader.byAccessKey("AKIANOSUCHKEY0000000")).toBeUndefined();

      await expect(
        writer.put({
          id: "thief",
          accountId: "123456789013",
          maxConcurrency: 5,
          credentials: [credential],
        }),
      ).rejects.toBeInstanceOf(ConfigError);

      await writer.remove("acme");
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await reader.byAccessKey(credential.accessKeyId)).toBeUndefined();
      expect(reader.list()).toEqual([]);
    } finally {
      writer.close();
      reader.close();
      await infra.close();
    }
  });
});
