/**
 * The dev tenant's credentials. Made once per machine and kept in the user's
 * state directory (never in the project), so that credentials exported in one
 * shell keep working after `gust dev` restarts. They are only ever accepted by
 * `gust dev`, which listens on loopback.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { parseTenantRecord, type Credential, type TenantRecord } from "@gust/registry";

export const DEV_TENANT_ID = "dev";

export function devStateDir(): string {
  const base = process.env["XDG_STATE_HOME"] ?? join(homedir(), ".local", "state");
  return join(base, "gust");
}

export function devCredentialsPath(): string {
  return process.env["GUST_DEV_CREDENTIALS"] ?? join(devStateDir(), "dev-credentials.json");
}

function newCredential(): Credential {
  // AWS-shaped: a 20-character upper-case key id and a 40-character secret.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const id = [...randomBytes(16)].map((byte) => alphabet[byte % alphabet.length]).join("");
  return {
    accessKeyId: `GKDV${id}`,
    secretAccessKey: randomBytes(30).toString("base64").replace(/[+/]/g, "x"),
  };
}

/**
 * Reads the dev credentials, creating them the first time. The file is kept
 * at mode 0600 (one an older Gust wrote more open is closed): handlers of
 * custom runtimes may run as other users of this machine.
 */
export async function devCredentials(path = devCredentialsPath()): Promise<Credential> {
  try {
    const record = parseTenantRecord(
      { id: DEV_TENANT_ID, credentials: [JSON.parse(await readFile(path, "utf8"))] },
      path,
    );
    const credential = record.credentials[0];
    if (credential) {
      if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
      return credential;
    }
  } catch {
    // Missing or unreadable: make new ones below.
  }
  const credential = newCredential();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(credential, null, 2)}\n`, { mode: 0o600 });
  // writeFile's mode applies only to a file it creates.
  await chmod(path, 0o600);
  return credential;
}

export function devTenant(credential: Credential): TenantRecord {
  return parseTenantRecord({ id: DEV_TENANT_ID, credentials: [credential] }, "dev tenant");
}
