import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@gust/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assertPrivateFile, checkPrivateFile } from "./private-file.js";
import {
  SealedSecretError,
  TenantKeyring,
  generateTenantKey,
  parseTenantKeys,
  readTenantKeyFile,
  tenantKeyId,
  writeTenantKeyFile,
} from "./tenant-key.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

describe("TenantKeyring", () => {
  it("opens what it sealed, and the sealed form names its format and key", () => {
    const key = generateTenantKey();
    const keyring = new TenantKeyring([key]);
    const sealed = keyring.seal(SECRET, "tenant acme access key AKIA1");
    expect(sealed[0]).toBe(1);
    expect(sealed[1]).toBe(tenantKeyId(key));
    // format, key id, 12-byte nonce, the secret's length, 16-byte tag
    expect(sealed.length).toBe(2 + 12 + SECRET.length + 16);
    expect(Buffer.from(sealed).includes(SECRET)).toBe(false);
    expect(keyring.open(sealed, "tenant acme access key AKIA1")).toBe(SECRET);
    // A fresh nonce each time: the same secret never seals the same way twice.
    expect(
      Buffer.from(keyring.seal(SECRET, "p")).equals(Buffer.from(keyring.seal(SECRET, "p"))),
    ).toBe(false);
  });

  it("refuses a secret moved to another place, changed, or sealed with another key", () => {
    const keyring = new TenantKeyring([generateTenantKey()]);
    const sealed = keyring.seal(SECRET, "tenant acme access key AKIA1");
    expect(() => keyring.open(sealed, "tenant evil access key AKIA1")).toThrow(SealedSecretError);
    expect(() => keyring.open(sealed, "tenant acme access key AKIA2")).toThrow(SealedSecretError);
    for (const at of [1, 5, sealed.length - 20, sealed.length - 1]) {
      const tampered = Uint8Array.from(sealed);
      tampered[at]! ^= 0x01;
      expect(() => keyring.open(tampered, "tenant acme access key AKIA1")).toThrow(
        SealedSecretError,
      );
    }
    const stranger = new TenantKeyring([generateTenantKey()]);
    expect(() => stranger.open(sealed, "tenant acme access key AKIA1")).toThrow(
      /sealed with tenant key id|does not open/,
    );
    expect(() => keyring.open(sealed.subarray(0, 10), "x")).toThrow(/too short/);
  });

  it("rotates: seals with the newest key and still opens what older keys sealed", () => {
    const old = generateTenantKey();
    const fresh = generateTenantKey();
    const before = new TenantKeyring([old]);
    const during = new TenantKeyring([old, fresh]);
    const sealedBefore = before.seal(SECRET, "p");
    expect(during.open(sealedBefore, "p")).toBe(SECRET);
    const sealedDuring = during.seal(SECRET, "p");
    expect(sealedDuring[1]).toBe(tenantKeyId(fresh));
    expect(during.sealingKeyId).toBe(tenantKeyId(fresh));
    expect(new TenantKeyring([fresh]).open(sealedDuring, "p")).toBe(SECRET);
    expect(() => before.open(sealedDuring, "p")).toThrow(SealedSecretError);
  });

  it("refuses keys of the wrong size", () => {
    expect(() => new TenantKeyring([new Uint8Array(16)])).toThrow(/32/);
    expect(() => new TenantKeyring([])).toThrow(ConfigError);
  });
});

describe("the tenant key file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "gust-tenant-key-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads base64 lines (newest last) or 32 raw bytes", () => {
    const [a, b] = [generateTenantKey(), generateTenantKey()];
    const text = `# the fleet's tenant keys\n${Buffer.from(a).toString("base64")}\n\n${Buffer.from(b).toString("base64")}\n`;
    expect(parseTenantKeys(Buffer.from(text), "f")).toEqual([a, b]);
    expect(parseTenantKeys(Buffer.from(a), "f")).toEqual([a]);
    expect(() => parseTenantKeys(Buffer.from("not a key\n"), "f")).toThrow(/f line 1/);
    expect(() => parseTenantKeys(Buffer.from("# nothing\n"), "f")).toThrow(/holds no tenant key/);
  });

  it("is written with mode 0600, never replaced, and grows a newer key with add", async () => {
    const file = join(dir, "tenant.key");
    const first = await writeTenantKeyFile(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readTenantKeyFile(file)).keyIds).toEqual([first]);
    await expect(writeTenantKeyFile(file)).rejects.toThrow(/exists/);
    const second = await writeTenantKeyFile(file, true);
    const keyring = await readTenantKeyFile(file);
    expect(keyring.keyIds).toEqual([first, second]);
    expect(keyring.sealingKeyId).toBe(second);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const raw = join(dir, "raw.key");
    await writeFile(raw, generateTenantKey(), { mode: 0o600 });
    await writeTenantKeyFile(raw, true);
    expect((await readTenantKeyFile(raw)).keyIds).toHaveLength(2);
    expect((await readFile(raw, "utf8")).split("\n").filter(Boolean)).toHaveLength(2);
  });

  it("is refused when other users could read it, naming the file, its mode and the fix", async () => {
    const file = join(dir, "tenant.key");
    await writeTenantKeyFile(file);
    await chmod(file, 0o644);
    await expect(readTenantKeyFile(file)).rejects.toThrow(
      new RegExp(`tenant key file ${file} \\(mode 0644.*chmod 600 ${file}`),
    );
    await chmod(file, 0o620);
    await expect(readTenantKeyFile(file)).rejects.toThrow(/its group may change it/);
    await chmod(file, 0o400);
    await expect(readTenantKeyFile(file)).resolves.toBeInstanceOf(TenantKeyring);
  });
});

describe("private files", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "gust-private-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("belong to this process's user or root, and are closed to everyone else", async (context) => {
    const file = join(dir, "secret");
    await writeFile(file, "x", { mode: 0o600 });
    expect((await checkPrivateFile(file, "f")).problems).toEqual([]);
    await chmod(file, 0o604);
    expect((await checkPrivateFile(file, "f")).problems).toEqual([
      "every user may read or change it",
    ]);
    await expect(assertPrivateFile(join(dir, "missing"), "the file")).rejects.toThrow(
      /cannot read the file/,
    );
    if (process.geteuid?.() !== 0) {
      context.skip("ownership by other users needs root to set up");
      return;
    }
    await chmod(file, 0o600);
    await chown(file, 54_321, 54_321);
    expect((await checkPrivateFile(file, "f")).problems).toEqual([
      "it belongs to uid 54321, not to this process's user (uid 0) or root",
    ]);
    // Group-readable: refused for a group that is not ours...
    await chown(file, 0, 54_321);
    await chmod(file, 0o640);
    expect((await checkPrivateFile(file, "f")).problems).toEqual([
      "its group (gid 54321) may read it",
    ]);
    // ...accepted for root's file in one of our groups, as Kubernetes mounts a Secret for fsGroup.
    await chown(file, 0, process.getegid!());
    await chmod(file, 0o440);
    expect((await checkPrivateFile(file, "f")).problems).toEqual([]);
  });
});
