import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { findNatsServerBinary, publicKeyOfSeed, readSeedFile } from "@gust/bus";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runNatsConfigCommand } from "./nats-config-command.js";
import { natsConnectionOptions } from "./nats-flags.js";

const run = promisify(execFile);

describe("gust nats-config", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "gust-nats-config-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes one owner-only seed per role and an auth.conf naming their public keys", async () => {
    const output = await runNatsConfigCommand(["--out", "keys"], dir);
    expect(output).toContain("frontend.nk");
    const auth = await readFile(join(dir, "keys", "auth.conf"), "utf8");
    for (const role of ["frontend", "worker", "coordinator", "admin"]) {
      const file = join(dir, "keys", `${role}.nk`);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(auth).toContain(publicKeyOfSeed(await readSeedFile(file)));
    }
    // Keys a fleet may be using are never replaced.
    await expect(runNatsConfigCommand(["--out", "keys"], dir)).rejects.toThrow(/exists/);
  });

  it("writes a config nats-server accepts, with TLS when asked", async (context) => {
    await runNatsConfigCommand(
      ["--out", "keys", "--tls-cert", "/etc/nats/tls.crt", "--tls-key", "/etc/nats/tls.key"],
      dir,
    );
    const auth = await readFile(join(dir, "keys", "auth.conf"), "utf8");
    expect(auth).toMatch(/^tls \{\n {2}cert_file: "\/etc\/nats\/tls.crt"/m);
    const natsServer = await findNatsServerBinary();
    if (natsServer === undefined) {
      context.skip("nats-server is not installed (apt-get install -y nats-server)");
      return;
    }
    // Without TLS, so that -t need not open certificate files that are not there.
    await rm(join(dir, "plain"), { recursive: true, force: true });
    await runNatsConfigCommand(["--out", "plain"], dir);
    const conf = join(dir, "plain", "nats.conf");
    await writeFile(
      conf,
      "port: 4222\njetstream {\n  store_dir: /tmp/unused\n}\ninclude ./auth.conf\n",
    );
    const checked = await run(natsServer, ["-t", "-c", conf]).catch(
      (error: { stderr: string }) => ({
        stdout: "",
        stderr: error.stderr,
      }),
    );
    expect(`${checked.stdout}${checked.stderr}`).toContain("is valid");
  });

  it("refuses a bad --owner and a half-given TLS pair", async () => {
    await expect(runNatsConfigCommand(["--out", "k", "--owner", "root=0"], dir)).rejects.toThrow(
      /ROLE=UID/,
    );
    await expect(runNatsConfigCommand(["--out", "k", "--tls-cert", "c"], dir)).rejects.toThrow(
      /go together/,
    );
  });

  it("gives a service its role, seed and TLS files from flags or the environment", async () => {
    await runNatsConfigCommand(["--out", "keys"], dir);
    const seed = join(dir, "keys", "worker.nk");
    const { options, anonymous } = await natsConnectionOptions(
      "worker",
      { "nats-tls-ca": "/ca.pem" },
      { NATS_URL: "nats://bus:4222", NATS_NKEY: seed },
    );
    expect(anonymous).toBe(false);
    expect(options).toMatchObject({
      servers: "nats://bus:4222",
      role: "worker",
      nkeySeed: await readSeedFile(seed),
      tls: { caFile: "/ca.pem" },
    });
    const none = await natsConnectionOptions("frontend", {}, {});
    expect(none.anonymous).toBe(true);
    expect(none.options.servers).toBe("nats://127.0.0.1:4222");
    await expect(
      natsConnectionOptions("frontend", { "nats-tls-cert": "/c.pem" }, {}),
    ).rejects.toThrow(/go together/);
  });
});
