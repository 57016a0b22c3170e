/**
 * `gust tenant-key --out FILE`: the key tenants' secrets are sealed with in
 * the fleet's KV (see @gust/registry tenant-key.ts), for the coordinator and
 * every frontend (`--tenant-key-file FILE` or $GUST_TENANT_KEY_FILE), never
 * for workers. The file is written with mode 0600 and never replaced;
 * `--add` appends a new key for rotation.
 *
 * A fleet's coordinator and frontends refuse to start without the key: the
 * secrets would otherwise sit in clear in NATS, where a leaked account or a
 * copy of JetStream's store would give them away. `gust dev`, one process
 * with an in-memory store, makes a key of its own in memory.
 */
import { chown } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "@gust/protocol";
import { readTenantKeyFile, writeTenantKeyFile, type TenantKeyring } from "@gust/registry";

export const TENANT_KEY_FILE_VARIABLE = "GUST_TENANT_KEY_FILE";

export const TENANT_KEY_USAGE = `Usage: gust tenant-key --out FILE [--add] [--owner UID]

Writes a fresh 256-bit key (base64, mode 0600) that tenants' secret keys are encrypted
with in the fleet's NATS KV. Give the same file to the coordinator and every frontend
(--tenant-key-file FILE or $${TENANT_KEY_FILE_VARIABLE}), never to workers.
An existing file is never replaced. --add appends a new key, which then encrypts what is
written; older keys still decrypt. To rotate: --add, restart the frontends, then the
coordinator (it rewrites every tenant), then remove the old line and restart them again.
--owner UID makes the file that uid's (Docker Compose runs frontends and the coordinator as
"node", uid 1000).
`;

export async function runTenantKeyCommand(args: string[], cwd: string): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      add: { type: "boolean" },
      owner: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return TENANT_KEY_USAGE;
  if (values.out === undefined) {
    throw new ConfigError(`gust tenant-key needs --out FILE\n\n${TENANT_KEY_USAGE}`);
  }
  const owner = values.owner;
  if (owner !== undefined && !/^\d+$/.test(owner)) {
    throw new ConfigError(`--owner takes a numeric uid, got ${owner}`);
  }
  const file = resolve(cwd, values.out);
  const id = await writeTenantKeyFile(file, values.add === true);
  if (owner !== undefined) await chown(file, Number(owner), -1);
  return values.add === true
    ? `Added tenant key ${id} to ${file}; it encrypts what is written from now on.\n`
    : `Wrote tenant key ${id} to ${file} (mode 0600): give it to the coordinator and every frontend.\n`;
}

/**
 * The keyring of `gust coordinator|frontend`, from --tenant-key-file or
 * $GUST_TENANT_KEY_FILE. Without one the command refuses to start.
 */
export async function fleetTenantKeyring(
  command: string,
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TenantKeyring> {
  const file = flag ?? env[TENANT_KEY_FILE_VARIABLE];
  if (file === undefined || file.trim() === "") {
    throw new ConfigError(
      `gust ${command} needs the fleet's tenant key: --tenant-key-file FILE or $${TENANT_KEY_FILE_VARIABLE}. ` +
        "Tenants' secret keys are stored encrypted with it in NATS, and a fleet does not start " +
        "without one rather than keep them in clear. Make one with gust tenant-key --out FILE " +
        "and give the same file to the coordinator and every frontend (not to workers).",
    );
  }
  return readTenantKeyFile(file.trim());
}
