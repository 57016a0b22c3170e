/**
 * `gust nats-config --out DIR`: credentials for a fleet's bus. Writes one
 * nkey seed per role (`DIR/<role>.nk`, mode 0600: give each process only its
 * own) and `DIR/auth.conf`, the nats-server `accounts` block that admits
 * those keys with their role's permissions, for nats.conf to `include`.
 * With --tls-cert and --tls-key, auth.conf also requires TLS from clients.
 * --owner ROLE=UID hands a seed to the uid its process runs as, for Docker
 * Compose, which mounts a secret's file with its owner on the host.
 *
 * Existing seeds are never overwritten: new keys lock every running
 * process out until it gets its new seed, so rotating is a deliberate act
 * (a new directory, then a rollout).
 */
import { access, chown, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  BUS_ROLES,
  generateBusCredentials,
  isBusRole,
  natsAccountsConfig,
  natsTlsConfig,
  publicKeysOf,
  seedFileName,
  writeBusSeeds,
  type BusRole,
} from "@gust/bus";
import { ConfigError } from "@gust/protocol";

export const NATS_CONFIG_USAGE = `Usage: gust nats-config --out DIR [--owner ROLE=UID]…
                        [--tls-cert FILE --tls-key FILE [--tls-ca FILE] [--tls-verify]]

Writes a fresh NATS nkey per role and the server config that admits them:
  DIR/frontend.nk DIR/worker.nk DIR/coordinator.nk DIR/admin.nk   seeds (mode 0600)
  DIR/auth.conf   for nats.conf: include "auth.conf"
Each service gets only its own seed: gust frontend --nats-nkey DIR/frontend.nk (or $NATS_NKEY).
admin.nk has every right, for operators' tools; no Gust service uses it.
--owner frontend=1000 makes frontend.nk uid 1000's (Docker Compose runs frontends as "node").
--tls-cert/--tls-key (paths as nats-server sees them) add a tls block: clients must use TLS
(gust … --nats-tls-ca CA); --tls-verify also requires client certificates signed by --tls-ca.
`;

export interface NatsConfigResult {
  dir: string;
  authConfig: string;
  seedFiles: Record<string, string>;
}

export async function runNatsConfigCommand(args: string[], cwd: string): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "tls-verify": { type: "boolean" },
      owner: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return NATS_CONFIG_USAGE;
  if (values.out === undefined)
    throw new ConfigError(`gust nats-config needs --out DIR\n\n${NATS_CONFIG_USAGE}`);
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("--tls-cert and --tls-key go together");
  }
  const tls =
    certFile === undefined || keyFile === undefined
      ? undefined
      : {
          certFile,
          keyFile,
          ...(values["tls-ca"] === undefined ? {} : { caFile: values["tls-ca"] }),
          ...(values["tls-verify"] === true ? { verify: true } : {}),
        };
  if (tls?.verify === true && tls.caFile === undefined) {
    throw new ConfigError("--tls-verify needs --tls-ca to verify client certificates with");
  }
  const owners: Partial<Record<BusRole, number>> = {};
  for (const pair of values.owner ?? []) {
    const [role, uid] = pair.split("=");
    if (role === undefined || !isBusRole(role) || uid === undefined || !/^\d+$/.test(uid)) {
      throw new ConfigError(`--owner takes ROLE=UID (e.g. frontend=1000), got ${pair}`);
    }
    owners[role] = Number(uid);
  }
  const result = await writeNatsConfig(resolve(cwd, values.out), tls, owners);
  return [
    `Wrote ${result.dir}:`,
    ...Object.entries(result.seedFiles).map(([role, file]) => `  ${file}  (${role}'s seed)`),
    `  ${result.authConfig}  (include it in nats.conf)`,
    "",
  ].join("\n");
}

export async function writeNatsConfig(
  dir: string,
  tls?: Parameters<typeof natsTlsConfig>[0],
  owners: Partial<Record<BusRole, number>> = {},
): Promise<NatsConfigResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const role of BUS_ROLES) {
    const file = join(dir, seedFileName(role));
    const exists = await access(file).then(
      () => true,
      () => false,
    );
    if (exists) {
      throw new ConfigError(
        `${file} exists: gust nats-config does not replace keys a fleet may be using; pick a new --out`,
      );
    }
  }
  const credentials = generateBusCredentials();
  const seedFiles = await writeBusSeeds(dir, credentials);
  for (const [role, uid] of Object.entries(owners))
    await chown(seedFiles[role as BusRole], uid, -1);
  const authConfig = join(dir, "auth.conf");
  const text = natsAccountsConfig(publicKeysOf(credentials));
  await writeFile(authConfig, tls === undefined ? text : `${natsTlsConfig(tls)}\n${text}`, {
    mode: 0o644,
  });
  return { dir, authConfig, seedFiles };
}
