/**
 * Name resolution for sandboxes with egress. A sandbox reaches a nameserver
 * only through its link and the firewall, so the host's resolv.conf serves
 * it only if it names a resolver that is neither on the host's loopback
 * (systemd-resolved's 127.0.0.53 is the host's, not the sandbox's), nor
 * link-local (rejected with cloud metadata), nor in a denied prefix, nor
 * IPv6 (off in sandboxes). On a systemd-resolved host the upstream servers
 * it uses are listed in /run/systemd/resolve/resolv.conf: that file serves.
 */
import { readFile } from "node:fs/promises";
import { LINK_LOCAL } from "./firewall.js";
import { parseIpv4Address, parseIpv4Prefix, prefixContains } from "./ipv4.js";
import type { Ipv4Prefix } from "./ipv4.js";

export const HOST_RESOLV_CONF = "/etc/resolv.conf";
export const SYSTEMD_RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf";

export type SandboxResolvConf =
  { available: true; path: string; nameservers: string[] } | { available: false; reason: string };

const LOOPBACK: Ipv4Prefix = { network: 0x7f000000, length: 8 };

/** The IPv4 nameservers of a resolv.conf a sandbox can reach. */
export function reachableNameservers(text: string, denyCidrs: readonly Ipv4Prefix[]): string[] {
  const linkLocal = parseIpv4Prefix(LINK_LOCAL);
  const blocked = [LOOPBACK, ...(linkLocal ? [linkLocal] : []), ...denyCidrs];
  return text
    .split("\n")
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
    .filter((server): server is string => server !== undefined)
    .filter((server) => {
      const address = parseIpv4Address(server);
      return address !== undefined && !blocked.some((prefix) => prefixContains(prefix, address));
    });
}

/**
 * The resolv.conf to show sandboxes at /etc/resolv.conf: the host's when it
 * names a reachable nameserver, else systemd-resolved's upstream list, else
 * none (with why), in which case sandboxes with egress cannot resolve names.
 */
export async function sandboxResolvConf(
  denyCidrs: readonly Ipv4Prefix[],
): Promise<SandboxResolvConf> {
  const unusable: string[] = [];
  for (const path of [HOST_RESOLV_CONF, SYSTEMD_RESOLVED_UPSTREAM]) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      continue;
    }
    const nameservers = reachableNameservers(text, denyCidrs);
    if (nameservers.length > 0) return { available: true, path, nameservers };
    unusable.push(path);
  }
  return {
    available: false,
    reason:
      unusable.length === 0
        ? `no ${HOST_RESOLV_CONF}`
        : `${unusable.join(" and ")} name no IPv4 nameserver a sandbox can reach (loopback, link-local and denied prefixes are out of reach)`,
  };
}
