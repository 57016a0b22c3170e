/**
 * IPv4 prefixes as numbers: enough arithmetic to cut an address pool into
 * the /30 links that join each sandbox to the host, and to write them back
 * in the canonical form `ip` and `iptables` print.
 */

export interface Ipv4Prefix {
  /** The network address as an unsigned 32-bit number (host bits zero). */
  network: number;
  length: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** The address as a number, or undefined when `text` is not a dotted quad. */
export function parseIpv4Address(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => OCTET.test(part))) return undefined;
  return parts.reduce((sum, part) => sum * 256 + Number(part), 0);
}

export function formatIpv4Address(address: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".");
}

/**
 * "a.b.c.d/n", or a bare address (a /32). Undefined when malformed or when
 * host bits are set: "10.0.0.1/8" is more likely a typo than a wish.
 */
export function parseIpv4Prefix(text: string): Ipv4Prefix | undefined {
  const [addressText, lengthText, ...rest] = text.trim().split("/");
  if (addressText === undefined || rest.length > 0) return undefined;
  const address = parseIpv4Address(addressText);
  if (address === undefined) return undefined;
  let length = 32;
  if (lengthText !== undefined) {
    if (!/^\d{1,2}$/.test(lengthText)) return undefined;
    length = Number(lengthText);
    if (length > 32) return undefined;
  }
  if (address % 2 ** (32 - length) !== 0) return undefined;
  return { network: address, length };
}

export function formatIpv4Prefix(prefix: Ipv4Prefix): string {
  return `${formatIpv4Address(prefix.network)}/${prefix.length}`;
}

export function prefixContains(prefix: Ipv4Prefix, address: number): boolean {
  const size = 2 ** (32 - prefix.length);
  return address >= prefix.network && address < prefix.network + size;
}

/** The length of the link between a sandbox and the host: its two ends and nothing else. */
export const LINK_PREFIX_LENGTH = 30;
const LINK_SIZE = 2 ** (32 - LINK_PREFIX_LENGTH);

/** The two ends of one /30 link: the host's side is the sandbox's gateway. */
export interface SandboxLink {
  subnet: Ipv4Prefix;
  hostAddress: string;
  sandboxAddress: string;
}

export function linkCount(pool: Ipv4Prefix): number {
  return 2 ** (LINK_PREFIX_LENGTH - pool.length);
}

/** The `index`th /30 of the pool: .1 is the host's end, .2 the sandbox's. */
export function linkAt(pool: Ipv4Prefix, index: number): SandboxLink {
  const network = pool.network + index * LINK_SIZE;
  return {
    subnet: { network, length: LINK_PREFIX_LENGTH },
    hostAddress: formatIpv4Address(network + 1),
    sandboxAddress: formatIpv4Address(network + 2),
  };
}
