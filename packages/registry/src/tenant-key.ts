/**
 * The tenant key: what tenants' secrets (secret access keys, webhook
 * secrets) are encrypted with in the tenants KV bucket, so that whoever can
 * read the bucket (a NATS account with JetStream rights, a backup of its
 * store, a stolen disk) learns no secret. Only the coordinator, which writes
 * the records, and the frontends, which check signatures with them, hold it;
 * workers never do.
 *
 * AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce per secret. The
 * additional authenticated data names the secret's place (tenant id and
 * access key id, or the tenant's webhook), so a ciphertext copied into
 * another record, or under another access key, does not open. Sealed form:
 *
 *   byte 0       format, 1
 *   byte 1       key id: the first byte of SHA-256("gust tenant key\0" ‖ key)
 *   bytes 2–13   nonce
 *   then         ciphertext (as long as the secret), then the 16-byte tag
 *
 * A keyring holds several keys for rotation: secrets are sealed with the
 * newest and opened with whichever key has the id in the sealed form (two
 * keys may share an id byte: each is tried; the tag tells the right one).
 *
 * The key file: one key per line as base64 (oldest first, the newest last;
 * blank lines and `#` comments skipped), or exactly 32 raw bytes.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { ConfigError, GustError, type GustErrorOptions } from "@gust/protocol";
import { assertPrivateFile } from "./private-file.js";

export const TENANT_KEY_BYTES = 32;
export const SEALED_FORMAT = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 2;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/**
 * A sealed secret that does not open: tampered with, moved to another
 * record, or sealed with a key this process does not hold. Never retryable.
 */
export class SealedSecretError extends GustError {
  override name = "SealedSecretError";
  constructor(message: string, options: GustErrorOptions = {}) {
    super(message, "sealed-secret", { ...options, retryable: false });
  }
}

export function tenantKeyId(key: Uint8Array): number {
  return createHash("sha256").update("gust tenant key\0").update(key).digest()[0]!;
}

interface KeyringEntry {
  id: number;
  key: Buffer;
}

export class TenantKeyring {
  private readonly keys: readonly KeyringEntry[];

  /** `keys` oldest first: the last one seals. */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new ConfigError("a tenant keyring needs at least one key");
    this.keys = keys.map((key, index) => {
      if (key.length !== TENANT_KEY_BYTES) {
        throw new ConfigError(
          `tenant key ${index + 1} has ${key.length} bytes; AES-256 needs ${TENANT_KEY_BYTES}`,
        );
      }
      return { id: tenantKeyId(key), key: Buffer.from(key) };
    });
  }

  /** A keyring of one fresh key, for a process that is its own fleet (`gust dev`). */
  static ephemeral(): TenantKeyring {
    return new TenantKeyring([generateTenantKey()]);
  }

  /** The id of the key new secrets are sealed with. */
  get sealingKeyId(): number {
    return this.newest.id;
  }

  /** Ids of every key, oldest first. */
  get keyIds(): number[] {
    return this.keys.map((entry) => entry.id);
  }

  private get newest(): KeyringEntry {
    return this.keys[this.keys.length - 1]!;
  }

  /** Seals `secret`; `place` names where it is stored and must be given again to open it. */
  seal(secret: string, place: string): Uint8Array {
    const { id, key } = this.newest;
    const header = Buffer.from([SEALED_FORMAT, id]);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(header, place));
    const ciphertext = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
    return new Uint8Array(Buffer.concat([header, nonce, ciphertext, cipher.getAuthTag()]));
  }

  /** Opens what seal() made for the same `place`, or throws SealedSecretError. */
  open(sealed: Uint8Array, place: string): string {
    if (!(sealed instanceof Uint8Array) || sealed.length < HEADER_BYTES + NONCE_BYTES + TAG_BYTES) {
      throw new SealedSecretError(`the sealed secret of ${place} is too short`);
    }
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (bytes[0] !== SEALED_FORMAT) {
      throw new SealedSecretError(`the sealed secret of ${place} has unknown format ${bytes[0]}`);
    }
    const id = bytes[1]!;
    const candidates = this.keys.filter((entry) => entry.id === id);
    if (candidates.length === 0) {
      throw new SealedSecretError(
        `the secret of ${place} was sealed with tenant key id ${id}, which this process does not hold ` +
          `(it holds ${this.keyIds.join(", ")}): give every frontend and the coordinator the fleet's --tenant-key-file`,
      );
    }
    const header = bytes.subarray(0, HEADER_BYTES);
    const nonce = bytes.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const ciphertext = bytes.subarray(HEADER_BYTES + NONCE_BYTES, bytes.length - TAG_BYTES);
    const tag = bytes.subarray(bytes.length - TAG_BYTES);
    for (const { key } of candidates) {
      const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(header, place));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
      } catch {
        // Not this key, or not this place: try the next key with the same id.
      }
    }
    throw new SealedSecretError(
      `the sealed secret of ${place} does not open with tenant key id ${id}: ` +
        "it was changed, moved from another record, or sealed with another key of the same id",
    );
  }
}

function associatedData(header: Uint8Array, place: string): Buffer {
  return Buffer.concat([header, Buffer.from(`gust tenant secret\0${place}`, "utf8")]);
}

export function generateTenantKey(): Uint8Array {
  return new Uint8Array(randomBytes(TENANT_KEY_BYTES));
}

/** A key as a line of the key file. */
export function formatTenantKey(key: Uint8Array): string {
  return `${Buffer.from(key).toString("base64")}\n`;
}

/** The keys in a key file's bytes, oldest first. `source` names the file in errors. */
export function parseTenantKeys(bytes: Uint8Array, source: string): Uint8Array[] {
  if (bytes.length === TENANT_KEY_BYTES) return [new Uint8Array(bytes)];
  const keys: Uint8Array[] = [];
  const lines = Buffer.from(bytes).toString("utf8").split("\n");
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    if (!BASE64_KEY.test(line)) {
      throw new ConfigError(
        `${source} line ${index + 1}: not a tenant key (32 bytes as base64, 44 characters); ` +
          "make one with gust tenant-key --out FILE",
      );
    }
    keys.push(new Uint8Array(Buffer.from(line, "base64")));
  });
  if (keys.length === 0) {
    throw new ConfigError(
      `${source} holds no tenant key; make one with gust tenant-key --out FILE`,
    );
  }
  return keys;
}

/** Reads a key file, refusing one that other users could read (see private-file.ts). */
export async function readTenantKeyFile(path: string): Promise<TenantKeyring> {
  await assertPrivateFile(path, "the tenant key file");
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new ConfigError(`cannot read the tenant key file ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
  return new TenantKeyring(parseTenantKeys(bytes, `the tenant key file ${path}`));
}

/**
 * Writes a new key file (mode 0600) with one fresh key, never replacing an
 * existing file; with `add`, appends a fresh key to an existing file instead,
 * which makes it the newest. Returns the new key's id.
 */
export async function writeTenantKeyFile(path: string, add = false): Promise<number> {
  const key = generateTenantKey();
  if (add) {
    await readTenantKeyFile(path);
    const bytes = await readFile(path);
    if (bytes.length === TENANT_KEY_BYTES) {
      // A raw key: the file becomes lines of base64, the old key first.
      await writeFile(path, formatTenantKey(bytes) + formatTenantKey(key));
    } else {
      const separator = bytes.length === 0 || bytes[bytes.length - 1] === 0x0a ? "" : "\n";
      await appendFile(path, `${separator}${formatTenantKey(key)}`);
    }
  } else {
    try {
      await writeFile(path, formatTenantKey(key), { mode: 0o600, flag: "wx" });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "EEXIST") {
        throw new ConfigError(
          `${path} exists: a fleet may be using its key; --add appends a new one for rotation`,
          { cause },
        );
      }
      throw cause;
    }
  }
  return tenantKeyId(key);
}
