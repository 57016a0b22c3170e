import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@gust/protocol";
import { TenantKeyring } from "@gust/registry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { devCredentials } from "./dev-credentials.js";
import { fleetTenantKeyring, runTenantKeyCommand } from "./tenant-key-command.js";

describe("gust tenant-key", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "gust-tenant-key-command-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a key only its owner can read, never replaces it, and adds one for rotation", async () => {
    expect(await runTenantKeyCommand(["--out", "tenant.key"], dir)).toMatch(/mode 0600/);
    const file = join(dir, "tenant.key");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, "utf8")).trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await expect(runTenantKeyCommand(["--out", "tenant.key"], dir)).rejects.toThrow(/exists/);
    await runTenantKeyCommand(["--out", "tenant.key", "--add"], dir);
    expect((await fleetTenantKeyring("frontend", file)).keyIds).toHaveLength(2);
    await expect(runTenantKeyCommand([], dir)).rejects.toThrow(/needs --out FILE/);
    await expect(runTenantKeyCommand(["--out", "k", "--owner", "node"], dir)).rejects.toThrow(
      /numeric uid/,
    );
  });

  it("is required by the fleet's frontends and coordinator, from the flag or the environment", async () => {
    const refusal = fleetTenantKeyring("coordinator", undefined, {});
    await expect(refusal).rejects.toBeInstanceOf(ConfigError);
    await expect(refusal).rejects.toThrow(/gust coordinator needs the fleet's tenant key/);
    await expect(refusal).rejects.toThrow(/gust tenant-key --out FILE/);
    await runTenantKeyCommand(["--out", "tenant.key"], dir);
    const file = join(dir, "tenant.key");
    expect(
      await fleetTenantKeyring("frontend", undefined, { GUST_TENANT_KEY_FILE: file }),
    ).toBeInstanceOf(TenantKeyring);
    await chmod(file, 0o644);
    await expect(fleetTenantKeyring("frontend", file)).rejects.toThrow(`chmod 600 ${file}`);
  });

  it("keeps gust dev's credentials file at mode 0600", async () => {
    const path = join(dir, "state", "dev-credentials.json");
    const credential = await devCredentials(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    // One an older Gust left open is closed, and keeps its credentials.
    await chmod(path, 0o644);
    expect(await devCredentials(path)).toEqual(credential);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    // One that does not parse is replaced, private too.
    await writeFile(path, "{", { mode: 0o644 });
    await chmod(path, 0o644);
    await devCredentials(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });
});
