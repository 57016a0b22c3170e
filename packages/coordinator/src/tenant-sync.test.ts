import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryInfrastructure } from "@gust/bus";
import { Buckets, ConfigError } from "@gust/protocol";
import { TenantDirectory, type TenantRecord } from "@gust/registry";
import { createLogger } from "@gust/telemetry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { syncTenantsFile, type TenantFileSync } from "./tenant-sync.js";

function tenant(id: string, key: string): Partial<TenantRecord> {
  return { id, credentials: [{ accessKeyId: key, secretAccessKey: `${id}-secret-0123456789` }] };
}

/** Waits until `condition` holds; the bound only keeps a broken test from hanging. */
async function eventually(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("the tenants file's permissions", () => {
  let dir: string;
  let file: string;
  let directory: TenantDirectory;
  let sync: TenantFileSync | undefined;
  let lines: Array<{ level: string; message: string; [field: string]: unknown }>;
  const infra = createMemoryInfrastructure();
  const logger = createLogger("coordinator", {
    level: "debug",
    write: (line) => void lines.push(JSON.parse(line) as (typeof lines)[number]),
  });

  beforeEach(async () => {
    lines = [];
    dir = await mkdtemp(join(tmpdir(), "gust-tenant-sync-"));
    file = join(dir, "tenants.json");
    directory = await TenantDirectory.open(await infra.kv(Buckets.tenants), logger);
  });
  afterEach(async () => {
    sync?.stop();
    sync = undefined;
    for (const { id } of directory.list()) await directory.remove(id);
    directory.close();
    await rm(dir, { recursive: true, force: true });
  });

  const write = (tenants: Array<Partial<TenantRecord>>, mode?: number) =>
    writeFile(file, JSON.stringify({ tenants }), mode === undefined ? {} : { mode });

  it("refuses a file others can read, naming it, its mode and the fix", async () => {
    await write([tenant("acme", "AKIAACMEKEY000000001")], 0o644);
    await chmod(file, 0o644);
    const refusal = syncTenantsFile(directory, file, logger);
    await expect(refusal).rejects.toBeInstanceOf(ConfigError);
    await expect(refusal).rejects.toThrow(
      `the tenants file ${file} (mode 0644, uid ${process.geteuid!()}) is not private: ` +
        `every user may read or change it`,
    );
    await expect(refusal).rejects.toThrow(`chmod 600 ${file}`);
    await expect(refusal).rejects.toThrow("--allow-readable-tenants-file");
    expect(directory.list()).toEqual([]);
  });

  it("loads it with a warning when the operator allows it", async () => {
    await write([tenant("acme", "AKIAACMEKEY000000001")], 0o604);
    await chmod(file, 0o604);
    sync = await syncTenantsFile(directory, file, logger, { allowReadableFile: true });
    expect(directory.list().map(({ id }) => id)).toEqual(["acme"]);
    const warning = lines.find((line) => line.level === "warn");
    expect(warning?.message).toMatch(/other users could read/);
    expect(String(warning?.["problem"])).toContain(`chmod 600 ${file}`);
  });

  it("checks again on every change: opened up, it keeps the tenants it had; closed, it loads", async () => {
    await write([tenant("acme", "AKIAACMEKEY000000001")], 0o600);
    sync = await syncTenantsFile(directory, file, logger);
    expect(directory.list().map(({ id }) => id)).toEqual(["acme"]);

    await chmod(file, 0o644);
    await write([tenant("globex", "AKIAGLOBEXKEY0000001")]);
    await eventually(() =>
      lines.some(
        (line) =>
          line.level === "error" &&
          JSON.stringify(line).includes("mode 0644") &&
          line.path === file,
      ),
    );
    expect(directory.list().map(({ id }) => id)).toEqual(["acme"]);
    // reload() says the same as the watcher did.
    await expect(sync.reload()).rejects.toThrow(/is not private/);

    await chmod(file, 0o600);
    await eventually(() => directory.list().some(({ id }) => id === "globex"));
    expect(directory.list().map(({ id }) => id)).toEqual(["globex"]);
  });
});
