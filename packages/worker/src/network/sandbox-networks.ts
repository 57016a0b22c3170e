/**
 * One network namespace per sandbox slot, made when the slot first runs a
 * sandbox and kept for the next ones while the worker lives, so that the
 * common path (namespace and link already there) runs no program at all.
 *
 * Inside a slot's namespace (`/run/netns/gust-<workerTag>-<slot>`):
 *
 *   lo     127.0.0.1 and ::1; the in-sandbox Runtime API forwarder listens
 *          here, and nothing of the host's loopback is visible
 *   eth0   only when the sandbox may reach the world: one end of a veth pair,
 *          <pool /30>.2, default route via .1, the other end on the host
 *          (named gust<subnet in hex>); IPv6 is off on it, so no v6 path
 *          sidesteps the IPv4 rules (see firewall.ts)
 *
 * Denying a tenant egress deletes the pair: what remains is loopback only.
 * The launcher runs `nsenter --net=<netnsPath> -- bwrap …` as root, with
 * bwrap keeping that namespace (no --unshare-net; --share-net after
 * --unshare-all). A slot is released only when every process of its last
 * sandbox is gone: a namespace is shared by the slot's successive sandboxes,
 * and a process left behind would share a loopback with the next tenant.
 *
 * Egress also needs IPv4 forwarding: open() sets net.ipv4.ip_forward=1 for the
 * host (the kernel routes a sandbox's packets from its link to the host's
 * uplink only when it is on). It is left on at close: other workers may rely
 * on it. The FORWARD rules decide what is forwarded for sandboxes; forwarding
 * between the host's other interfaces is whatever its own rules say.
 */
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ConfigError } from "@gust/protocol";
import { SandboxNetworkError, runChecked, runCommand } from "./commands.js";
import type { CommandRunner } from "./commands.js";
import { IP_FORWARD, probeNetworkIsolation } from "./detect.js";
import type { Capability, NetworkTools } from "./detect.js";
import { SANDBOX_LINK_PREFIX, firewallIntact, installFirewall } from "./firewall.js";
import {
  LINK_PREFIX_LENGTH,
  formatIpv4Prefix,
  linkAt,
  linkCount,
  parseIpv4Address,
  prefixContains,
} from "./ipv4.js";
import type { SandboxLink } from "./ipv4.js";
import {
  NETNS_DIR,
  aliasPrefix,
  linkInterfaceName,
  listInterfaces,
  listNamespaces,
  namespaceName,
  slotOfNamespace,
} from "./names.js";
import { resolveSandboxNetworkOptions } from "./options.js";
import type { ResolvedSandboxNetworkOptions, SandboxNetworkOptions } from "./options.js";

/** The sandbox's end of its link, as it sees it. */
const SANDBOX_INTERFACE = "eth0";
/** Slots are small numbers handed out lowest first; this bounds a typo. */
const MAX_SLOT = 65_535;
/** Give up claiming a link after this many were taken under our feet. */
const MAX_CLAIM_ATTEMPTS = 64;

/** What a sandbox of a slot runs in. */
export interface SandboxNetwork {
  /** The namespace to enter: `nsenter --net=<netnsPath> -- bwrap …`. */
  netnsPath: string;
  /** Whether the namespace has a link to the world (else loopback only). */
  egress: boolean;
  /** The sandbox's IPv4 address on its link, when it has one. */
  address?: string;
}

export interface SandboxNetworksDeps {
  /** Runs the network tools; tests wrap it to count what a path spawns. */
  run?: CommandRunner;
}

interface Link {
  index: number;
  /** The host's end of the veth pair. */
  hostInterface: string;
  addresses: SandboxLink;
}

interface Slot {
  namespace: string;
  netnsPath: string;
  link: Link | undefined;
}

/**
 * Run inside a fresh namespace: IPv6 off everywhere but loopback (writing
 * `all` also turns it off on an eth0 already moved in), then `ip -batch` ($1)
 * with the commands on stdin.
 */
const NAMESPACE_SETUP = [
  "set -e",
  "if [ -d /proc/sys/net/ipv6 ]; then",
  "  echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
  "  echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
  "  echo 0 > /proc/sys/net/ipv6/conf/lo/disable_ipv6",
  "fi",
  'exec "$1" -batch -',
].join("\n");

export class SandboxNetworks {
  readonly options: ResolvedSandboxNetworkOptions;
  /** Whether acquire(…, { egress: true }) gives a link, and why not. */
  readonly egress: Capability;
  readonly #run: CommandRunner;
  readonly #tools: NetworkTools;
  readonly #slots = new Map<number, Slot>();
  readonly #queues = new Map<number, Promise<unknown>>();
  /** Links this worker holds or is creating, by index in the pool. */
  readonly #claimedLinks = new Set<number>();
  #closed = false;

  private constructor(
    options: ResolvedSandboxNetworkOptions,
    egress: Capability,
    run: CommandRunner,
    tools: NetworkTools,
  ) {
    this.options = options;
    this.egress = egress;
    this.#run = run;
    this.#tools = tools;
  }

  /**
   * Checks the host, and when egress is wanted and possible installs the
   * firewall (idempotently) and turns IPv4 forwarding on. Throws a
   * SandboxNetworkError when namespaces cannot be made at all.
   */
  static async open(
    options: SandboxNetworkOptions,
    deps: SandboxNetworksDeps = {},
  ): Promise<SandboxNetworks> {
    const resolved = resolveSandboxNetworkOptions(options);
    const run = deps.run ?? runCommand;
    const probe = await probeNetworkIsolation(run);
    if (!probe.support.namespaces.available || !probe.tools)
      throw new SandboxNetworkError(
        `sandboxes cannot have network namespaces: ${describe(probe.support.namespaces)}`,
      );
    let egress: Capability = probe.support.egress;
    if (!resolved.egress) egress = { available: false, reason: "egress is turned off" };
    if (egress.available && typeof probe.tools.iptables !== "string") {
      await installFirewall(run, probe.tools.iptables, resolved.addressPool, resolved.denyCidrs);
      if ((await readFile(IP_FORWARD, "utf8")).trim() !== "1") await writeFile(IP_FORWARD, "1\n");
    }
    return new SandboxNetworks(resolved, egress, run, probe.tools);
  }

  /**
   * The slot's namespace for its next sandbox, with a link to the world when
   * `egress` is asked for and offered. Runs no program when the namespace
   * already is as asked (the common case); a fresh slot takes a few.
   */
  acquire(slot: number, options: { egress: boolean }): Promise<SandboxNetwork> {
    return this.#serially(slot, async () => {
      const wanted = options.egress && this.egress.available;
      const state = this.#slots.get(slot) ?? (await this.#createSlot(slot, wanted));
      if (wanted && !state.link) await this.#attachLink(slot, state);
      if (!wanted && state.link) await this.#detachLink(state);
      return viewOf(state);
    });
  }

  /**
   * Take the slot's link away: for a sandbox started before its tenant was
   * known, once the tenant turns out to be denied egress, before its code
   * loads. Afterwards the namespace has loopback only; its sockets to the
   * world are gone with the interface.
   */
  denyEgress(slot: number): Promise<SandboxNetwork> {
    return this.#serially(slot, async () => {
      const state = this.#slotOrThrow(slot);
      if (state.link) await this.#detachLink(state);
      return viewOf(state);
    });
  }

  /** Give a running sandbox's slot a link (when offered): the converse of denyEgress. */
  allowEgress(slot: number): Promise<SandboxNetwork> {
    return this.#serially(slot, async () => {
      const state = this.#slotOrThrow(slot);
      if (this.egress.available && !state.link) await this.#attachLink(slot, state);
      return viewOf(state);
    });
  }

  /**
   * The slot's sandbox is gone, all its processes with it. When egress is
   * offered and the slot lost its link, a new one is made now, so that the
   * next acquire runs nothing.
   */
  release(slot: number): Promise<void> {
    return this.#serially(slot, async () => {
      const state = this.#slots.get(slot);
      if (state && this.egress.available && !state.link) await this.#attachLink(slot, state);
    });
  }

  /**
   * Put the firewall back if something took it away (a host firewall reload,
   * an `iptables -F`); true when it had to. One short program run when all
   * is in place: call it periodically, e.g. with the worker's heartbeat.
   */
  async ensureFirewall(): Promise<boolean> {
    const iptables = this.#tools.iptables;
    if (!this.egress.available || typeof iptables === "string") return false;
    if (await firewallIntact(this.#run, iptables)) return false;
    const { addressPool, denyCidrs } = this.options;
    await installFirewall(this.#run, iptables, addressPool, denyCidrs);
    return true;
  }

  /**
   * Delete the namespaces and links a dead worker with the same tag left on
   * this host (call before the first acquire). A live worker with the same
   * tag would lose its own: tags must differ between live workers.
   */
  async removeStale(): Promise<void> {
    const ours = new Set([...this.#slots.values()].map((slot) => slot.namespace));
    const namespaces = (await listNamespaces()).filter(
      (name) => slotOfNamespace(this.options.workerTag, name) !== undefined && !ours.has(name),
    );
    const ourLinks = new Set(
      [...this.#slots.values()].flatMap((slot) => (slot.link ? [slot.link.hostInterface] : [])),
    );
    const links: string[] = [];
    for (const name of await listInterfaces()) {
      if (!name.startsWith(SANDBOX_LINK_PREFIX) || ourLinks.has(name)) continue;
      const alias = await readFile(`/sys/class/net/${name}/ifalias`, "utf8").catch(() => "");
      if (alias.trim().startsWith(aliasPrefix(this.options.workerTag))) links.push(name);
    }
    await this.#deleteAll(links, namespaces);
  }

  /** Delete every namespace and link of this worker. The firewall stays (see uninstallSandboxFirewall). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#queues.values()]);
    const slots = [...this.#slots.values()];
    this.#slots.clear();
    this.#claimedLinks.clear();
    await this.#deleteAll(
      slots.flatMap((slot) => (slot.link ? [slot.link.hostInterface] : [])),
      slots.map((slot) => slot.namespace),
    );
  }

  async #deleteAll(links: string[], namespaces: string[]): Promise<void> {
    if (links.length === 0 && namespaces.length === 0) return;
    // Links first: a namespace outlives `netns delete` while a process is in
    // it, and its link with it; the link must not.
    const script = [
      ...links.map((name) => `link delete dev ${name}`),
      ...namespaces.map((name) => `netns delete ${name}`),
    ].join("\n");
    await this.#run(this.#tools.ip, ["-force", "-batch", "-"], `${script}\n`);
    const interfaces = new Set(await listInterfaces());
    const remaining = new Set(await listNamespaces());
    const left = [
      ...links.filter((name) => interfaces.has(name)),
      ...namespaces.filter((name) => remaining.has(name)),
    ];
    if (left.length > 0)
      throw new SandboxNetworkError(`could not delete ${left.join(", ")}`, {
        command: "ip -batch",
      });
  }

  /**
   * A fresh slot: `ip netns add`, the link's host end when asked (one `ip
   * -batch`), then one run inside the namespace that turns IPv6 off and
   * brings up loopback and the sandbox's end.
   */
  async #createSlot(slot: number, withLink: boolean): Promise<Slot> {
    if (this.#closed) throw new SandboxNetworkError("sandbox networks are closed");
    const namespace = namespaceName(this.options.workerTag, slot);
    const netnsPath = path.join(NETNS_DIR, namespace);
    const { ip, nsenter, sh } = this.#tools;
    const added = await this.#run(ip, ["netns", "add", namespace]);
    if (added.exitCode !== 0)
      throw new SandboxNetworkError(
        /exists/i.test(added.stderr)
          ? `network namespace ${namespace} exists: another live worker has tag ${this.options.workerTag}, or removeStale() was not called`
          : `ip netns add ${namespace}: ${added.stderr.trim()}`,
        { command: "ip netns add", stderr: added.stderr },
      );
    const state: Slot = { namespace, netnsPath, link: undefined };
    let link: Link | undefined;
    try {
      if (withLink) link = await this.#claimLink(slot, state);
      const inside = ["link set dev lo up", ...(link ? sandboxEndCommands(link) : []), ""];
      await runChecked(
        this.#run,
        nsenter,
        [`--net=${netnsPath}`, "--", sh, "-c", NAMESPACE_SETUP, "sh", ip],
        inside.join("\n"),
      );
    } catch (error) {
      if (link) await this.#deleteLink(link);
      await this.#run(ip, ["netns", "delete", namespace]);
      throw error;
    }
    state.link = link;
    this.#slots.set(slot, state);
    return state;
  }

  /** A link for a slot whose namespace exists (after denyEgress, or made without). */
  async #attachLink(slot: number, state: Slot): Promise<void> {
    const link = await this.#claimLink(slot, state);
    try {
      await runChecked(
        this.#run,
        this.#tools.ip,
        ["-netns", state.namespace, "-batch", "-"],
        [...sandboxEndCommands(link), ""].join("\n"),
      );
    } catch (error) {
      await this.#deleteLink(link);
      throw error;
    }
    state.link = link;
  }

  /**
   * Claim the lowest free /30 and make the veth pair: the host's end named
   * for the subnet, addressed and up; the sandbox's end in the namespace, not
   * yet configured. The interface name is the host-wide claim on the subnet:
   * creating it fails if another worker took the subnet a moment ago.
   */
  async #claimLink(slot: number, state: Slot): Promise<Link> {
    const { ip } = this.#tools;
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      const index = await this.#claimFreeLinkIndex();
      const addresses = linkAt(this.options.addressPool, index);
      const hostInterface = linkInterfaceName(addresses.subnet);
      const alias = `${aliasPrefix(this.options.workerTag)}${slot}`;
      const host = await this.#run(
        ip,
        ["-batch", "-"],
        [
          `link add ${hostInterface} type veth peer name ${SANDBOX_INTERFACE} netns ${state.namespace}`,
          `link set dev ${hostInterface} addrgenmode none alias ${alias}`,
          `address add ${addresses.hostAddress}/${LINK_PREFIX_LENGTH} dev ${hostInterface}`,
          `link set dev ${hostInterface} up`,
          "",
        ].join("\n"),
      );
      if (host.exitCode === 0) return { index, hostInterface, addresses };
      this.#claimedLinks.delete(index);
      // `ip -batch` names the line that failed; the first is the claim.
      const claimFailed = /Command failed -:1\b/.test(host.stderr);
      if (claimFailed && /exists/i.test(host.stderr)) continue;
      if (!claimFailed) await this.#run(ip, ["link", "delete", "dev", hostInterface]);
      throw new SandboxNetworkError(`cannot link ${state.namespace}: ${host.stderr.trim()}`, {
        command: "ip -batch",
        stderr: host.stderr,
      });
    }
    throw new SandboxNetworkError(`no free link for ${state.namespace}: every try was taken`);
  }

  async #deleteLink(link: Link): Promise<void> {
    await this.#run(this.#tools.ip, ["link", "delete", "dev", link.hostInterface]);
    this.#claimedLinks.delete(link.index);
  }

  async #detachLink(state: Slot): Promise<void> {
    const link = state.link;
    if (!link) return;
    // Deleting one end of a veth pair deletes the other: eth0 leaves the namespace.
    const result = await this.#run(this.#tools.ip, ["link", "delete", "dev", link.hostInterface]);
    if (result.exitCode !== 0 && (await listInterfaces()).includes(link.hostInterface))
      throw new SandboxNetworkError(
        `cannot delete ${link.hostInterface} of ${state.namespace}: ${result.stderr.trim()}`,
        { command: "ip link delete", stderr: result.stderr },
      );
    state.link = undefined;
    this.#claimedLinks.delete(link.index);
  }

  /**
   * The lowest /30 of the pool nobody on the host uses (no link of that name,
   * no host address in it), claimed within this worker before any await so
   * that two slots linking at once pick different ones.
   */
  async #claimFreeLinkIndex(): Promise<number> {
    const pool = this.options.addressPool;
    const interfaces = new Set(await listInterfaces());
    const hostAddresses = Object.values(os.networkInterfaces())
      .flatMap((entries) => entries ?? [])
      .flatMap((entry) => (entry.family === "IPv4" ? [parseIpv4Address(entry.address)] : []))
      .filter((address): address is number => address !== undefined);
    const count = linkCount(pool);
    for (let index = 0; index < count; index++) {
      if (this.#claimedLinks.has(index)) continue;
      const { subnet } = linkAt(pool, index);
      if (interfaces.has(linkInterfaceName(subnet))) continue;
      if (hostAddresses.some((address) => prefixContains(subnet, address))) continue;
      this.#claimedLinks.add(index);
      return index;
    }
    throw new SandboxNetworkError(`address pool ${formatIpv4Prefix(pool)} has no free /30 left`);
  }

  #slotOrThrow(slot: number): Slot {
    const state = this.#slots.get(slot);
    if (!state) throw new SandboxNetworkError(`slot ${slot} has no network: acquire it first`);
    return state;
  }

  /** Operations on one slot run one after another; slots proceed independently. */
  #serially<T>(slot: number, operation: () => Promise<T>): Promise<T> {
    if (!Number.isInteger(slot) || slot < 0 || slot > MAX_SLOT)
      return Promise.reject(
        new ConfigError(`slot ${slot} must be an integer from 0 to ${MAX_SLOT}`),
      );
    if (this.#closed) return Promise.reject(new SandboxNetworkError("sandbox networks are closed"));
    const previous = this.#queues.get(slot) ?? Promise.resolve();
    const next = previous.then(operation);
    this.#queues.set(
      slot,
      next.catch(() => undefined),
    );
    return next;
  }
}

function describe(capability: Capability): string {
  return capability.available ? "available" : capability.reason;
}

/** Address the sandbox's end and route everything through the host's end. */
function sandboxEndCommands(link: Link): string[] {
  const { sandboxAddress, hostAddress } = link.addresses;
  return [
    `address add ${sandboxAddress}/${LINK_PREFIX_LENGTH} dev ${SANDBOX_INTERFACE}`,
    `link set dev ${SANDBOX_INTERFACE} up`,
    `route add default via ${hostAddress} dev ${SANDBOX_INTERFACE}`,
  ];
}

function viewOf(state: Slot): SandboxNetwork {
  return state.link
    ? { netnsPath: state.netnsPath, egress: true, address: state.link.addresses.sandboxAddress }
    : { netnsPath: state.netnsPath, egress: false };
}
