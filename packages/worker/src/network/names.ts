/**
 * The host-wide names of a worker's sandbox networks: what another worker,
 * an operator or removeStale() can find them by.
 */
import { readdir } from "node:fs/promises";
import { SANDBOX_LINK_PREFIX } from "./firewall.js";
import type { Ipv4Prefix } from "./ipv4.js";

/** Where `ip netns` keeps its namespaces. */
export const NETNS_DIR = "/run/netns";

export function namespaceName(workerTag: string, slot: number): string {
  return `gust-${workerTag}-${slot}`;
}

/** The slot a namespace of this tag belongs to, if it is one. */
export function slotOfNamespace(workerTag: string, name: string): number | undefined {
  const prefix = `gust-${workerTag}-`;
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/** `gust` and the subnet's network address in hex: 12 characters, under IFNAMSIZ. */
export function linkInterfaceName(subnet: Ipv4Prefix): string {
  return `${SANDBOX_LINK_PREFIX}${subnet.network.toString(16).padStart(8, "0")}`;
}

/** Links carry `gust:<tag>:<slot>` as their alias, so removeStale() finds a tag's. */
export function aliasPrefix(workerTag: string): string {
  return `gust:${workerTag}:`;
}

/** Names in NETNS_DIR (no program run). */
export async function listNamespaces(): Promise<string[]> {
  return readdir(NETNS_DIR).catch(() => []);
}

/** The host's interfaces (no program run). */
export async function listInterfaces(): Promise<string[]> {
  return readdir("/sys/class/net").catch(() => []);
}
