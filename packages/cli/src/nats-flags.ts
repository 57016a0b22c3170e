/**
 * How `gust frontend|worker|coordinator` reach NATS: the server URL, the
 * role's nkey seed file, and TLS. Each flag has an environment variable, so
 * a container can take them from its Secret's mount without a command line.
 *
 *   --nats URL            $NATS_URL        default nats://127.0.0.1:4222
 *   --nats-nkey FILE      $NATS_NKEY       the role's seed (`gust nats-config` writes them);
 *                                          refused if other users can read it
 *   --nats-tls-ca FILE    $NATS_TLS_CA     CA that signed the server's certificate
 *   --nats-tls-cert FILE  $NATS_TLS_CERT   client certificate, for a server that verifies
 *   --nats-tls-key FILE   $NATS_TLS_KEY    clients (both or neither)
 */
import { readSeedFile, type BusRole, type NatsInfrastructureOptions } from "@gust/bus";
import { ConfigError } from "@gust/protocol";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

export interface NatsFlags {
  nats?: string | undefined;
  "nats-nkey"?: string | undefined;
  "nats-tls-ca"?: string | undefined;
  "nats-tls-cert"?: string | undefined;
  "nats-tls-key"?: string | undefined;
}

function setting(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  variable: string,
): string | undefined {
  const value = flag ?? env[variable];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

export function natsUrlOf(flags: NatsFlags, env: NodeJS.ProcessEnv = process.env): string {
  return setting(flags.nats, env, "NATS_URL") ?? DEFAULT_NATS_URL;
}

/**
 * Connection options for a service of `role`. Without a seed file the
 * process connects anonymously, which only a server without Gust's
 * permissions accepts; `anonymous` says so, for the caller to warn.
 */
export async function natsConnectionOptions(
  role: BusRole,
  flags: NatsFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ options: NatsInfrastructureOptions; anonymous: boolean }> {
  const nkeyFile = setting(flags["nats-nkey"], env, "NATS_NKEY");
  const caFile = setting(flags["nats-tls-ca"], env, "NATS_TLS_CA");
  const certFile = setting(flags["nats-tls-cert"], env, "NATS_TLS_CERT");
  const keyFile = setting(flags["nats-tls-key"], env, "NATS_TLS_KEY");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("--nats-tls-cert and --nats-tls-key go together");
  }
  const tls =
    caFile === undefined && certFile === undefined
      ? undefined
      : {
          ...(caFile === undefined ? {} : { caFile }),
          ...(certFile === undefined ? {} : { certFile }),
          ...(keyFile === undefined ? {} : { keyFile }),
        };
  const options: NatsInfrastructureOptions = {
    servers: natsUrlOf(flags, env),
    name: `gust-${role}`,
    role,
    ...(nkeyFile === undefined ? {} : { nkeySeed: await readSeedFile(nkeyFile) }),
    ...(tls === undefined ? {} : { tls }),
  };
  return { options, anonymous: nkeyFile === undefined };
}
