/**
 * The host's packet filter for sandbox links, in iptables (Debian's
 * `iptables` drives nftables through iptables-nft, and shares the tables
 * Docker, ufw and kube-proxy use, so an ACCEPT here is honoured on a host
 * whose FORWARD policy is DROP).
 *
 * Every sandbox link's host end is named `gust…` (see names.ts), so the rules
 * match sandboxes by interface, whatever pool a worker uses:
 *
 *   INPUT   -i gust+ → GUST-SANDBOX-INPUT: reject. A sandbox reaches no
 *           address of the host itself (a link's gateway, a LAN address, a
 *           service bound to 0.0.0.0). The host's loopback is out of reach
 *           anyway: 127.0.0.1 inside a sandbox is its own namespace's, and a
 *           packet arriving on a link for 127/8 is a martian the host drops
 *           (net.ipv4.conf.*.route_localnet=0, the default).
 *   FORWARD → GUST-SANDBOX-FORWARD:
 *           into a sandbox link: only replies (conntrack); nothing else, so
 *           neither another sandbox nor the world opens a connection to one;
 *           out of a sandbox link: reject link-local 169.254.0.0/16 (cloud
 *           metadata); reject what the host's nat table redirected (a
 *           Docker-published port or a Kubernetes service on the host's
 *           address is DNAT, reached through FORWARD, not INPUT); then
 *           GUST-SANDBOX-DENY (the operators' denyCidrs); then accept.
 *   nat POSTROUTING → GUST-SANDBOX-NAT: MASQUERADE each pool's sources
 *           leaving by a non-sandbox interface.
 *
 * Rejections answer a TCP SYN with a reset and anything else with ICMP
 * "administratively prohibited", so a denied connection fails at once rather
 * than after a connect timeout.
 *
 * Installation is idempotent and safe with several workers on one host: the
 * whole installation runs under a host-wide lock (flock); the fixed chains are
 * rewritten whole in one iptables-restore transaction (every worker writes
 * the same content), and additive rules (denied prefixes, a pool's
 * MASQUERADE, the jumps) are checked before they are added. The chains stay
 * installed while any worker may use them; uninstallSandboxFirewall() takes
 * them all away.
 */
import { formatIpv4Prefix } from "./ipv4.js";
import type { Ipv4Prefix } from "./ipv4.js";
import { SandboxNetworkError, findTool, runChecked, runCommand } from "./commands.js";
import type { CommandRunner } from "./commands.js";

/** The host end of every sandbox link starts with this; `gust+` matches them all. */
export const SANDBOX_LINK_PREFIX = "gust";
const LINKS = `${SANDBOX_LINK_PREFIX}+`;

export const FirewallChains = {
  input: "GUST-SANDBOX-INPUT",
  forward: "GUST-SANDBOX-FORWARD",
  deny: "GUST-SANDBOX-DENY",
  reject: "GUST-SANDBOX-REJECT",
  nat: "GUST-SANDBOX-NAT",
} as const;

/** Cloud metadata services (169.254.169.254) and other link-local hosts. */
export const LINK_LOCAL = "169.254.0.0/16";

export interface IptablesTools {
  iptables: string;
  iptablesRestore: string;
  /** util-linux's flock and a shell, to install under a host-wide lock. */
  flock: string;
  sh: string;
}

/**
 * `iptables` as the host's alternatives chose it, else Debian's iptables-nft;
 * or why there is none to use.
 */
export async function findIptables(): Promise<IptablesTools | string> {
  const flock = await findTool("flock");
  const sh = await findTool("sh");
  if (!flock || !sh) return "no flock (Debian package util-linux)";
  for (const flavour of ["iptables", "iptables-nft"]) {
    const iptables = await findTool(flavour);
    const iptablesRestore = await findTool(`${flavour}-restore`);
    if (iptables && iptablesRestore) return { iptables, iptablesRestore, flock, sh };
  }
  return "no iptables (Debian package iptables, which drives nftables)";
}

/** The chains whose content never varies, written whole by each installation. */
export function fixedChainsScript(): string {
  const { input, forward, deny, reject } = FirewallChains;
  return [
    "*filter",
    `:${reject} - [0:0]`,
    `:${input} - [0:0]`,
    `:${forward} - [0:0]`,
    `-A ${reject} -p tcp -j REJECT --reject-with tcp-reset`,
    `-A ${reject} -j REJECT --reject-with icmp-admin-prohibited`,
    `-A ${input} -j ${reject}`,
    `-A ${forward} -o ${LINKS} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${forward} -o ${LINKS} -j ${reject}`,
    `-A ${forward} -i ${LINKS} -d ${LINK_LOCAL} -j ${reject}`,
    `-A ${forward} -i ${LINKS} -m conntrack --ctstate DNAT -j ${reject}`,
    `-A ${forward} -i ${LINKS} -j ${deny}`,
    `-A ${forward} -i ${LINKS} -j ACCEPT`,
    "COMMIT",
    "",
  ].join("\n");
}

/** A rule as iptables arguments: table, chain and the match/target. */
interface Rule {
  table: "filter" | "nat";
  chain: string;
  spec: string[];
  /** Jumps go first, ahead of rules other software appends. */
  position: "first" | "last";
}

function jumps(): Rule[] {
  return [
    {
      table: "filter",
      chain: "INPUT",
      spec: ["-i", LINKS, "-j", FirewallChains.input],
      position: "first",
    },
    { table: "filter", chain: "FORWARD", spec: ["-j", FirewallChains.forward], position: "first" },
    { table: "nat", chain: "POSTROUTING", spec: ["-j", FirewallChains.nat], position: "first" },
  ];
}

function additiveRules(pool: Ipv4Prefix, denyCidrs: Ipv4Prefix[]): Rule[] {
  return [
    ...denyCidrs.map((prefix): Rule => ({
      table: "filter",
      chain: FirewallChains.deny,
      spec: ["-d", formatIpv4Prefix(prefix), "-j", FirewallChains.reject],
      position: "last",
    })),
    {
      table: "nat",
      chain: FirewallChains.nat,
      spec: ["-s", formatIpv4Prefix(pool), "!", "-o", LINKS, "-j", "MASQUERADE"],
      position: "last",
    },
  ];
}

/** Held while a worker installs or removes the chains, so that workers starting together add no rule twice. */
export const FIREWALL_LOCK = "/run/gust-sandbox-firewall.lock";

function quote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/**
 * The installation as one shell script, run under FIREWALL_LOCK: `$1` is
 * iptables, `$2` iptables-restore, stdin the fixed chains. The additive
 * chains are created, never redeclared: a restore that names a chain flushes
 * it, which would drop prefixes another worker added.
 */
export function installScript(pool: Ipv4Prefix, denyCidrs: Ipv4Prefix[]): string {
  const lines = [
    "set -e",
    `"$1" -w -t filter -N ${FirewallChains.deny} 2>/dev/null || true`,
    `"$1" -w -t nat -N ${FirewallChains.nat} 2>/dev/null || true`,
    '"$2" -w --noflush',
  ];
  for (const rule of [...jumps(), ...additiveRules(pool, denyCidrs)]) {
    const spec = rule.spec.map(quote).join(" ");
    const add = rule.position === "first" ? `-I ${rule.chain} 1` : `-A ${rule.chain}`;
    lines.push(
      `"$1" -w -t ${rule.table} -C ${rule.chain} ${spec} 2>/dev/null || "$1" -w -t ${rule.table} ${add} ${spec}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Install (or refresh) the chains for one worker's pool and denied prefixes:
 * one program run, once when a worker opens its sandbox networks.
 */
export async function installFirewall(
  run: CommandRunner,
  tools: IptablesTools,
  pool: Ipv4Prefix,
  denyCidrs: Ipv4Prefix[],
): Promise<void> {
  await runChecked(
    run,
    tools.flock,
    [
      FIREWALL_LOCK,
      tools.sh,
      "-c",
      installScript(pool, denyCidrs),
      "sh",
      tools.iptables,
      tools.iptablesRestore,
    ],
    fixedChainsScript(),
  );
}

/**
 * Whether the jumps and the chains' rejecting rules are all in place: a host
 * firewall reload or an `iptables -F` takes them away, and without them the
 * host's own policy (often ACCEPT) decides what sandboxes reach.
 */
export async function firewallIntact(run: CommandRunner, tools: IptablesTools): Promise<boolean> {
  const { input, forward, reject } = FirewallChains;
  const checks = [
    ...jumps().map((jump) => ["-t", jump.table, "-C", jump.chain, ...jump.spec]),
    ["-t", "filter", "-C", input, "-j", reject],
    ["-t", "filter", "-C", forward, "-o", LINKS, "-j", reject],
    ["-t", "filter", "-C", reject, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
  ];
  const script = checks
    .map((check) => `"$1" -w ${check.map(quote).join(" ")} 2>/dev/null`)
    .join(" && ");
  const result = await run(tools.sh, ["-c", script, "sh", tools.iptables]);
  return result.exitCode === 0;
}

/** Whether the chains are installed (the INPUT jump is the last thing removal takes). */
export async function firewallInstalled(
  run: CommandRunner,
  tools: IptablesTools,
): Promise<boolean> {
  const result = await run(tools.iptables, ["-w", "-t", "filter", "-S", FirewallChains.input]);
  return result.exitCode === 0;
}

/**
 * Take every Gust sandbox chain and jump off the host, for all workers: an
 * operator's clean-up when no worker runs here any more. Sandboxes that are
 * still linked lose their egress (FORWARD no longer accepts for them) and
 * are no longer kept from the host.
 */
export async function uninstallFirewall(run: CommandRunner, tools: IptablesTools): Promise<void> {
  const chains = [
    ["filter", FirewallChains.input],
    ["filter", FirewallChains.forward],
    ["filter", FirewallChains.deny],
    ["filter", FirewallChains.reject],
    ["nat", FirewallChains.nat],
  ] as const;
  // Under the installation's lock, so that a worker installing meanwhile
  // finds either everything or nothing. Every jump goes (a race of older
  // versions could add two); chains are flushed before any is deleted, as
  // they refer to one another.
  const lines = [
    ...jumps().map((jump) => {
      const rule = `-t ${jump.table} -D ${jump.chain} ${jump.spec.map(quote).join(" ")}`;
      return `while "$1" -w ${rule} 2>/dev/null; do :; done`;
    }),
    ...chains.map(([table, chain]) => `"$1" -w -t ${table} -F ${chain} 2>/dev/null || true`),
    ...chains.map(([table, chain]) => `"$1" -w -t ${table} -X ${chain} 2>/dev/null || true`),
  ];
  await runChecked(run, tools.flock, [
    FIREWALL_LOCK,
    tools.sh,
    "-c",
    lines.join("\n"),
    "sh",
    tools.iptables,
  ]);
  const left: string[] = [];
  for (const [table, chain] of chains) {
    const result = await run(tools.iptables, ["-w", "-t", table, "-S", chain]);
    if (result.exitCode === 0) left.push(chain);
  }
  if (left.length > 0)
    throw new SandboxNetworkError(`cannot remove ${left.join(", ")}: still referenced or in use`);
}

/**
 * Remove the sandbox firewall from this host, for every worker: when no
 * worker runs here any more. Does nothing where iptables is absent.
 */
export async function uninstallSandboxFirewall(run: CommandRunner = runCommand): Promise<void> {
  const tools = await findIptables();
  if (typeof tools !== "string") await uninstallFirewall(run, tools);
}
