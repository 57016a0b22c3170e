import { ConfigError } from "@gust/protocol";
import { LINK_PREFIX_LENGTH, parseIpv4Prefix } from "./ipv4.js";
import type { Ipv4Prefix } from "./ipv4.js";

/**
 * Private addresses handed to sandbox links, one /30 each (16,384 sandboxes
 * per host in the default). Pick a range the host's own networks do not use.
 */
export const DEFAULT_ADDRESS_POOL = "10.213.0.0/16";

export interface SandboxNetworkOptions {
  /**
   * Names this worker's namespaces (`gust-<workerTag>-<slot>`) and links.
   * Unique among the live workers of a host and stable across a worker's
   * restarts, so that removeStale() finds what a dead one left.
   * Letters, digits, `_`, `.` and `-`; at most 64 characters.
   */
  workerTag: string;
  /**
   * IPv4 prefix the sandbox links are cut from, one /30 per sandbox slot.
   * Several workers on a host may share it: a link is claimed host-wide by
   * its interface name.
   * @default DEFAULT_ADDRESS_POOL
   */
  addressPool?: string;
  /**
   * Destinations no sandbox may reach although egress is allowed: where the
   * platform lives (NATS, frontends, the coordinator), the host's LAN, a VPC.
   * IPv4 prefixes or addresses. The rules are host-wide, shared by every
   * worker on the host: a prefix one worker lists is denied to all sandboxes.
   * @default []
   */
  denyCidrs?: readonly string[];
  /**
   * Whether sandboxes may reach the world at all (Lambda's default is yes).
   * When false, or when the host cannot offer it, every sandbox gets a
   * namespace with loopback only.
   * @default true
   */
  egress?: boolean;
}

export interface ResolvedSandboxNetworkOptions {
  workerTag: string;
  addressPool: Ipv4Prefix;
  denyCidrs: Ipv4Prefix[];
  egress: boolean;
}

const WORKER_TAG = /^[A-Za-z0-9_.-]{1,64}$/;

export function resolveSandboxNetworkOptions(
  options: SandboxNetworkOptions,
): ResolvedSandboxNetworkOptions {
  if (!WORKER_TAG.test(options.workerTag))
    throw new ConfigError(
      `workerTag ${JSON.stringify(options.workerTag)} must be 1–64 letters, digits, "_", "." or "-"`,
    );
  const poolText = options.addressPool ?? DEFAULT_ADDRESS_POOL;
  const addressPool = parseIpv4Prefix(poolText);
  if (!addressPool || addressPool.length > LINK_PREFIX_LENGTH)
    throw new ConfigError(
      `addressPool ${JSON.stringify(poolText)} must be an IPv4 prefix such as ${DEFAULT_ADDRESS_POOL}, /${LINK_PREFIX_LENGTH} or wider, with no host bits set`,
    );
  const denyCidrs = (options.denyCidrs ?? []).map((text, index) => {
    const prefix = parseIpv4Prefix(text);
    if (!prefix)
      throw new ConfigError(
        `denyCidrs[${index}] ${JSON.stringify(text)} must be an IPv4 prefix (a.b.c.d/n, no host bits set) or address`,
      );
    return prefix;
  });
  return { workerTag: options.workerTag, addressPool, denyCidrs, egress: options.egress ?? true };
}
