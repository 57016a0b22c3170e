/**
 * `npm run fleet`'s secrets at rest: its tenants file, credentials and tenant
 * key are private files; the key goes to the coordinator and the frontends
 * and not to the workers; the tenants bucket on its nats-server holds no
 * secret in clear, and the tenant's requests still authenticate.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { ListFunctionsCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { connectNatsInfrastructure, readSeedFile } from "@gust/bus";
import {
  findHaproxyBinary,
  GUST_MAIN,
  HAPROXY_INSTALL_HINT,
  startLocalFleet,
  type LocalFleet,
} from "@gust/cli";
import { Buckets } from "@gust/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lambdaFor } from "./support/lambda.js";

const haproxy = await findHaproxyBinary();

describe.skipIf(haproxy === undefined)(
  haproxy === undefined
    ? `local fleet secrets (skipped: ${HAPROXY_INSTALL_HINT})`
    : "local fleet secrets",
  () => {
    let fleet: LocalFleet;
    let lambda: LambdaClient | undefined;

    beforeAll(async () => {
      fleet = await startLocalFleet({ port: 0, frontends: 1, workers: 1, pool: 0 });
    }, 120_000);

    afterAll(async () => {
      lambda?.destroy();
      await fleet?.stop();
    }, 60_000);

    it("writes its secrets with mode 0600 and hands the tenant key to the coordinator and frontends only", async () => {
      for (const file of [
        fleet.tenantsFile,
        fleet.tenantKeyFile,
        join(fleet.dir, "credentials.json"),
      ]) {
        expect({ file, mode: (await stat(file)).mode & 0o777 }).toEqual({ file, mode: 0o600 });
      }
      for (const member of [fleet.coordinator, ...fleet.workers, ...fleet.frontends]) {
        const args = member.process.child.spawnargs;
        const role = args[args.indexOf(GUST_MAIN) + 1];
        const keyAt = args.indexOf("--tenant-key-file");
        if (role === "worker") {
          expect(keyAt).toBe(-1);
          expect(args.join(" ")).not.toContain(fleet.tenantKeyFile);
        } else {
          expect(args[keyAt + 1]).toBe(fleet.tenantKeyFile);
        }
      }
    });

    it("keeps the tenant's secret out of KV in clear, and authenticates it", async () => {
      const tenant = fleet.tenant!;
      const admin = await connectNatsInfrastructure({
        servers: fleet.natsUrl,
        role: "admin",
        nkeySeed: await readSeedFile(fleet.natsSeedFiles!.admin),
      });
      try {
        const entry = await (await admin.kv(Buckets.tenants)).get(`tenant.${tenant.id}`);
        const raw = Buffer.from(entry!.value);
        const secret = tenant.credentials[0]!.secretAccessKey;
        expect(raw.includes(tenant.credentials[0]!.accessKeyId)).toBe(true);
        expect(raw.includes(secret)).toBe(false);
        expect(raw.includes(Buffer.from(secret).toString("base64"))).toBe(false);
      } finally {
        await admin.close();
      }
      lambda = lambdaFor(fleet.url, tenant);
      const listed = await lambda.send(new ListFunctionsCommand({}));
      expect(listed.$metadata.httpStatusCode).toBe(200);
    });
  },
);
