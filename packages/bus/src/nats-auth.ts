/**
 * Credentials for a fleet's bus: one NATS nkey per role (nats-permissions.ts)
 * and the nats-server `accounts` block that admits exactly those keys with
 * their role's permissions. The server config holds public keys only; each
 * process holds its own role's seed, in a file only its owner can read.
 *
 * The layout, and why: every user is an nkey inside one named account,
 * GUST, with JetStream enabled for it; there is no top-level
 * `authorization` block, no `no_auth_user` and no user in the global
 * account, so a client that presents no key is refused. Advisory
 * GHSA-fr2g-9hjm-wr23 (CVE-2023-47090; nats-server 2.2.0 to 2.9.22 and
 * 2.10.1, fixed in 2.9.23 and 2.10.2) concerns a different layout: users in
 * a top-level `authorization` block (the implicit global account "$G")
 * next to an `accounts` block that defines only the system account. There
 * the server creates an implicit "$G" user and makes it the no-auth user,
 * and anyone connects without credentials. Debian ships 2.9.10, so Gust
 * keeps to the accounts-only layout, which that bug does not touch; a test
 * connects without credentials to the real binary and is refused.
 */
import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@gust/protocol";
import { nkeys } from "@nats-io/transport-node";
import { BUS_PERMISSIONS, BUS_ROLES, type BusRole } from "./nats-permissions.js";

/** The one account every Gust user lives in. */
export const GUST_NATS_ACCOUNT = "GUST";

export interface BusIdentity {
  readonly role: BusRole;
  /** The nkey seed ("SU…"): the secret. */
  readonly seed: string;
  /** The public key ("U…") the server config names. */
  readonly publicKey: string;
}

export type BusCredentials = Readonly<Record<BusRole, BusIdentity>>;

/** A fresh nkey for every role. */
export function generateBusCredentials(): BusCredentials {
  const identity = (role: BusRole): BusIdentity => {
    const pair = nkeys.createUser();
    return { role, seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
  };
  return Object.fromEntries(BUS_ROLES.map((role) => [role, identity(role)])) as Record<
    BusRole,
    BusIdentity
  >;
}

/** The public key of a user seed; throws a ConfigError for anything else. */
export function publicKeyOfSeed(seed: string, source = "the nkey seed"): string {
  const text = seed.trim();
  if (!text.startsWith("SU")) {
    throw new ConfigError(`${source} is not a NATS user nkey seed (one line starting with SU)`);
  }
  try {
    return nkeys.fromSeed(new TextEncoder().encode(text)).getPublicKey();
  } catch (error) {
    throw new ConfigError(`${source} is not a valid NATS nkey seed`, { cause: error });
  }
}

/** `<role>.nk` in each role's file name, as `gust nats-config` and local fleets write them. */
export function seedFileName(role: BusRole): string {
  return `${role}.nk`;
}

/** Writes each role's seed to `<dir>/<role>.nk`, readable by its owner only. */
export async function writeBusSeeds(
  dir: string,
  credentials: BusCredentials,
): Promise<Record<BusRole, string>> {
  const files = {} as Record<BusRole, string>;
  for (const role of BUS_ROLES) {
    const file = join(dir, seedFileName(role));
    await writeFile(file, `${credentials[role].seed}\n`, { mode: 0o600 });
    // The mode given to writeFile applies only to a new file.
    await chmod(file, 0o600);
    files[role] = file;
  }
  return files;
}

/**
 * Reads a seed file, refusing one that other users could read or anyone but
 * its owner could change. Group read is allowed: Kubernetes mounts a
 * Secret for a pod's fsGroup with group read (defaultMode 0440).
 */
export async function readSeedFile(path: string): Promise<string> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    throw new ConfigError(`cannot read the NATS nkey seed file ${path}`, { cause: error });
  }
  if ((mode & 0o027) !== 0) {
    throw new ConfigError(
      `the NATS nkey seed file ${path} has mode ${(mode & 0o777).toString(8).padStart(4, "0")}: ` +
        "other users could read or change it; chmod 600 it",
    );
  }
  const seed = (await readFile(path, "utf8")).trim();
  publicKeyOfSeed(seed, `the NATS nkey seed file ${path}`);
  return seed;
}

function quoted(values: readonly string[]): string {
  return `[${values.map((value) => JSON.stringify(value)).join(", ")}]`;
}

/**
 * nats-server's `accounts` block for the given public keys, with each role's
 * permissions from BUS_PERMISSIONS. Roles left out get no user.
 */
export function natsAccountsConfig(publicKeys: Partial<Record<BusRole, string>>): string {
  const users: string[] = [];
  for (const role of BUS_ROLES) {
    const key = publicKeys[role];
    if (key === undefined) continue;
    if (!/^U[A-Z2-7]{55}$/.test(key)) {
      throw new ConfigError(`the ${role} public key ${JSON.stringify(key)} is not a user nkey`);
    }
    const permissions = BUS_PERMISSIONS[role];
    users.push(
      [
        `      # ${role}`,
        `      {`,
        `        nkey: ${JSON.stringify(key)}`,
        `        permissions: {`,
        `          publish: { allow: ${quoted(permissions.publish)} }`,
        `          subscribe: { allow: ${quoted(permissions.subscribe)} }`,
        ...(permissions.allowResponses ? [`          allow_responses: true`] : []),
        `        }`,
        `      }`,
      ].join("\n"),
    );
  }
  if (users.length === 0) throw new ConfigError("a NATS accounts block needs at least one user");
  return [
    `# Gust's users: one nkey per role, all in account ${GUST_NATS_ACCOUNT}; no anonymous`,
    `# access (no authorization block, no no_auth_user). Generated from Gust's`,
    `# permission table (packages/bus/src/nats-permissions.ts): edit that, not this.`,
    `accounts {`,
    `  ${GUST_NATS_ACCOUNT} {`,
    `    jetstream: enabled`,
    `    users: [`,
    users.join("\n"),
    `    ]`,
    `  }`,
    `}`,
    ``,
  ].join("\n");
}

export function publicKeysOf(credentials: BusCredentials): Record<BusRole, string> {
  return Object.fromEntries(BUS_ROLES.map((role) => [role, credentials[role].publicKey])) as Record<
    BusRole,
    string
  >;
}
