/**
 * What network isolation this host allows, found once when a worker starts:
 * namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2;
 * egress needs, on top, iptables and the right to turn on IPv4 forwarding.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { findTool, runCommand } from "./commands.js";
import type { CommandRunner } from "./commands.js";
import { findIptables } from "./firewall.js";
import type { IptablesTools } from "./firewall.js";

export type Capability = { available: true } | { available: false; reason: string };

export interface NetworkIsolationSupport {
  /** Whether each sandbox can get its own network namespace (loopback only at least). */
  namespaces: Capability;
  /** Whether sandboxes can also be offered filtered, NATed egress to the world. */
  egress: Capability;
}

export interface NetworkTools {
  sh: string;
  ip: string;
  nsenter: string;
  /** The iptables tools, or why egress cannot have them. */
  iptables: IptablesTools | string;
}

export const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

export interface NetworkProbe {
  support: NetworkIsolationSupport;
  tools: NetworkTools | undefined;
}

export async function detectNetworkIsolation(
  run: CommandRunner = runCommand,
): Promise<NetworkIsolationSupport> {
  return (await probeNetworkIsolation(run)).support;
}

export async function probeNetworkIsolation(run: CommandRunner): Promise<NetworkProbe> {
  const unavailable = (reason: string): NetworkProbe => ({
    support: {
      namespaces: { available: false, reason },
      egress: { available: false, reason: `no network namespaces: ${reason}` },
    },
    tools: undefined,
  });
  if (process.getuid?.() !== 0) return unavailable("the worker does not run as root");
  const [sh, ip, nsenter, iptables] = await Promise.all([
    findTool("sh"),
    findTool("ip"),
    findTool("nsenter"),
    findIptables(),
  ]);
  if (!sh) return unavailable("no sh");
  if (!ip) return unavailable("no ip (Debian package iproute2)");
  if (!nsenter) return unavailable("no nsenter (Debian package util-linux)");
  // Creating one is the only sure test: a container may be root without CAP_SYS_ADMIN.
  const probeName = `gust-probe-${process.pid}-${randomBytes(3).toString("hex")}`;
  const added = await run(ip, ["netns", "add", probeName]);
  if (added.exitCode !== 0)
    return unavailable(`cannot create a network namespace: ${added.stderr.trim()}`);
  await run(ip, ["netns", "delete", probeName]);
  const tools: NetworkTools = { sh, ip, nsenter, iptables };
  return {
    support: { namespaces: { available: true }, egress: await probeEgress(run, iptables) },
    tools,
  };
}

async function probeEgress(
  run: CommandRunner,
  iptables: IptablesTools | string,
): Promise<Capability> {
  if (typeof iptables === "string") return { available: false, reason: iptables };
  const nat = await run(iptables.iptables, ["-w", "-t", "nat", "-S", "POSTROUTING"]);
  if (nat.exitCode !== 0)
    return { available: false, reason: `iptables cannot use the nat table: ${nat.stderr.trim()}` };
  let forwarding: string;
  try {
    forwarding = (await readFile(IP_FORWARD, "utf8")).trim();
  } catch {
    return { available: false, reason: `${IP_FORWARD} is unreadable (no IPv4?)` };
  }
  if (forwarding !== "1") {
    try {
      await access(IP_FORWARD, constants.W_OK);
    } catch {
      return {
        available: false,
        reason: `IPv4 forwarding is off and ${IP_FORWARD} is read-only (a container?)`,
      };
    }
  }
  return { available: true };
}
