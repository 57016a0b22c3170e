/**
 * TLS between Gust's processes and nats-server, with certificates the
 * operator supplies: here a throwaway CA, server and client certificate
 * made with `openssl` for each run. A client that does not trust the CA, or
 * (with verify) presents no certificate, is refused.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Buckets } from "@gust/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNatsInfrastructure } from "./nats-infrastructure.js";
import { silentLogger } from "./test-logger.js";
import { startNatsServer, type NatsServerHandle } from "./nats-server.js";

const run = promisify(execFile);
const openssl = await run("openssl", ["version"]).then(
  () => true,
  () => false,
);

/** A CA and two certificates it signs: the server's (for 127.0.0.1) and a client's. */
async function makeCertificates(dir: string) {
  const file = (name: string) => join(dir, name);
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req", "-x509", ...key, "-keyout", file("ca.key"), "-out", file("ca.crt"),
    "-days", "1", "-subj", "/CN=Gust test CA",
  ]); // prettier-ignore
  for (const [name, extension] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"],
    ["client", "extendedKeyUsage=clientAuth\n"],
  ] as const) {
    await writeFile(file(`${name}.ext`), extension);
    await run("openssl", [
      "req", ...key, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`),
      "-subj", `/CN=gust-${name}`,
    ]); // prettier-ignore
    await run("openssl", [
      "x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
      "-CAcreateserial", "-days", "1", "-out", file(`${name}.crt`), "-extfile", file(`${name}.ext`),
    ]); // prettier-ignore
  }
  return {
    ca: file("ca.crt"),
    server: { certFile: file("server.crt"), keyFile: file("server.key") },
    client: { certFile: file("client.crt"), keyFile: file("client.key") },
  };
}

describe.skipIf(!openssl)(
  openssl ? "NATS over TLS" : "NATS over TLS (skipped: no openssl; apt-get install -y openssl)",
  () => {
    let dir: string;
    let certificates: Awaited<ReturnType<typeof makeCertificates>>;
    const servers: NatsServerHandle[] = [];

    beforeAll(async () => {
      delete process.env["NATS_URL"];
      dir = await mkdtemp(join(tmpdir(), "gust-tls-"));
      certificates = await makeCertificates(dir);
    });
    afterAll(async () => {
      await Promise.all(servers.map((server) => server.stop()));
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    const start = async (verify: boolean) => {
      const server = await startNatsServer({
        jetstream: true,
        auth: true,
        tls: { ...certificates.server, caFile: certificates.ca, verify },
      });
      servers.push(server);
      return server;
    };

    /** The coordinator's round trip through JetStream: a KV put read back. */
    const roundTrip = async (server: NatsServerHandle, tls: object) => {
      const infra = await connectNatsInfrastructure({
        servers: server.url,
        logger: silentLogger(),
        role: "coordinator",
        nkeySeed: server.auth!.credentials.coordinator.seed,
        connectTimeoutMs: 5_000,
        tls,
      });
      try {
        const bucket = await infra.kv(Buckets.tenants);
        await bucket.put("acme", new TextEncoder().encode("over TLS"));
        return new TextDecoder().decode((await bucket.get("acme"))?.value);
      } finally {
        await infra.close();
      }
    };

    it("serves clients that trust the operator's CA, and refuses those that do not", async () => {
      const server = await start(false);
      expect(await roundTrip(server, { caFile: certificates.ca })).toBe("over TLS");
      // Without the CA, the server's certificate is one nobody vouches for.
      await expect(roundTrip(server, {})).rejects.toThrow(/certificate/i);
    });

    it("with verify, refuses a client that presents no certificate of the CA's", async () => {
      const server = await start(true);
      expect(await roundTrip(server, { caFile: certificates.ca, ...certificates.client })).toBe(
        "over TLS",
      );
      await expect(roundTrip(server, { caFile: certificates.ca })).rejects.toThrow();
    });
  },
);
