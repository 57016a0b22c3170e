/**
 * Sandbox networks on the real host: needs root and iproute2 (and iptables
 * for egress). Every destination is a namespace this test makes or the host
 * itself; the world is a namespace of the test's own (see test-world.ts).
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { readFile, readdir, writeFile } from "node:fs/promises";
import net from "node:net";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runChecked, runCommand } from "./commands.js";
import type { CommandRunner } from "./commands.js";
import { IP_FORWARD, detectNetworkIsolation } from "./detect.js";
import { FirewallChains, SANDBOX_LINK_PREFIX } from "./firewall.js";
import { SandboxNetworks } from "./sandbox-networks.js";
import type { SandboxNetwork } from "./sandbox-networks.js";
import {
  METADATA_ADDRESS,
  TestWorld,
  WORLD_PORT,
  connectFrom,
  removeTestRules,
  serveIn,
} from "./test-world.js";

const support = await detectNetworkIsolation();
/** An unprivileged uid, as the launcher drops to. */
const SANDBOX_UID = 65534;
const suffix = randomBytes(3).toString("hex");

function skipped(what: string, capability: typeof support.namespaces): string {
  return capability.available ? what : `${what} (skipped: ${capability.reason})`;
}

async function interfacesIn(netnsPath: string): Promise<string[]> {
  const out = await runChecked(runCommand, "nsenter", [
    `--net=${netnsPath}`,
    "--",
    "ip",
    "-o",
    "link",
    "show",
  ]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => (line.split(":")[1] ?? "").trim().split("@")[0] ?? "");
}

async function readInside(netnsPath: string, file: string): Promise<string> {
  return (
    await runChecked(runCommand, "nsenter", [`--net=${netnsPath}`, "--", "cat", file])
  ).trim();
}

describe.skipIf(!support.namespaces.available)(
  skipped("a sandbox network without egress", support.namespaces),
  () => {
    let networks: SandboxNetworks;

    beforeAll(async () => {
      networks = await SandboxNetworks.open({ workerTag: `tl${suffix}`, egress: false });
      await networks.removeStale();
    });

    afterAll(async () => {
      await networks?.close();
    });

    it("has loopback only, up, and closing deletes it", async () => {
      const network = await networks.acquire(0, { egress: true });
      expect(network).toEqual({ netnsPath: `/run/netns/gust-tl${suffix}-0`, egress: false });
      expect(await interfacesIn(network.netnsPath)).toEqual(["lo"]);
      const outcome = await connectFrom(
        { netnsPath: network.netnsPath, uid: SANDBOX_UID },
        "198.18.0.1",
        80,
      );
      expect(outcome).toMatchObject({ ok: false, code: "ENETUNREACH" });
      await networks.close();
      expect(existsSync(network.netnsPath)).toBe(false);
    });
  },
);

describe.skipIf(!support.egress.available)(
  skipped("sandbox egress through the host's firewall", support.egress),
  () => {
    const pool = `10.214.${randomInt(1, 255)}.0/24`;
    const tag = `t${suffix}`;
    let world: TestWorld;
    let networks: SandboxNetworks;
    let spawned = 0;
    const counting: CommandRunner = (file, args, input) => {
      spawned++;
      return runCommand(file, args, input);
    };
    let forwardingBefore: string;
    let hostServer: net.Server;
    let hostPort: number;
    let neighbourServer: ChildProcess | undefined;
    let a: SandboxNetwork;
    let b: SandboxNetwork;

    beforeAll(async () => {
      forwardingBefore = (await readFile(IP_FORWARD, "utf8")).trim();
      world = await TestWorld.create(pool);
      networks = await SandboxNetworks.open(
        { workerTag: tag, addressPool: pool, denyCidrs: [world.deniedPrefix] },
        { run: counting },
      );
      await networks.removeStale();
      hostServer = net.createServer((socket) => socket.end("host"));
      hostServer.listen(0, "0.0.0.0");
      await once(hostServer, "listening");
      hostPort = (hostServer.address() as AddressInfo).port;
      a = await networks.acquire(0, { egress: true });
      b = await networks.acquire(1, { egress: true });
      neighbourServer = await serveIn(b.netnsPath, "neighbour", WORLD_PORT);
    });

    afterAll(async () => {
      neighbourServer?.kill("SIGKILL");
      hostServer?.close();
      await networks?.close();
      await world?.close();
      // The chains stay for whatever worker runs on this host (a concurrent test's too):
      // take back only this test's own rules, its pool's and its denied prefix's.
      if (world) await removeTestRules(pool, world.deniedPrefix);
      // Forwarding back off unless another sandbox link on the host may need it.
      if (forwardingBefore === "0" && (await sandboxLinksExcept([])).length === 0)
        await writeFile(IP_FORWARD, "0\n");
    });

    const fromA = (host: string, port: number) =>
      connectFrom({ netnsPath: a.netnsPath, uid: SANDBOX_UID }, host, port);

    it("reaches the world", async () => {
      expect(a.egress).toBe(true);
      expect(a.address).toMatch(/^10\.214\./);
      expect(await fromA(world.address, WORLD_PORT)).toEqual({ ok: true, body: "world" });
    });

    it("reaches no address of the host: neither a link's gateway nor any other", async () => {
      // A's gateway, B's gateway, the world link's host end, and every address of the host
      // that is no other test's or worker's link (those may vanish while this runs).
      const ours = new Set([...(await linksOf(tag)), world.hostInterface]);
      const hostAddresses = Object.entries(os.networkInterfaces())
        .filter(([name]) => ours.has(name) || !/^(gust|gtw)/.test(name))
        .flatMap(([, entries]) => entries ?? [])
        .filter((entry) => entry.family === "IPv4" && !entry.internal)
        .map((entry) => entry.address);
      expect(hostAddresses).toEqual(expect.arrayContaining([world.hostAddress]));
      expect(hostAddresses.length).toBeGreaterThanOrEqual(3);
      for (const address of hostAddresses) {
        const direct = await connectFrom(
          { netnsPath: `/proc/${process.pid}/ns/net` },
          address,
          hostPort,
        );
        expect(direct, `the host's server answers at ${address}`).toEqual({
          ok: true,
          body: "host",
        });
        expect(await fromA(address, hostPort), address).toEqual({
          ok: false,
          code: "ECONNREFUSED",
        });
      }
    });

    it("cannot see the host's loopback: 127.0.0.1 is the sandbox's own", async () => {
      expect(await fromA("127.0.0.1", hostPort)).toEqual({ ok: false, code: "ECONNREFUSED" });
    });

    it("reaches neither link-local metadata nor a denied prefix, though the world answers there", async () => {
      const inWorld = { netnsPath: world.netnsPath };
      expect(await connectFrom(inWorld, METADATA_ADDRESS, WORLD_PORT)).toEqual({
        ok: true,
        body: "world",
      });
      expect(await connectFrom(inWorld, world.deniedAddress, WORLD_PORT)).toEqual({
        ok: true,
        body: "world",
      });
      expect(await fromA(METADATA_ADDRESS, WORLD_PORT)).toEqual({
        ok: false,
        code: "ECONNREFUSED",
      });
      expect(await fromA(world.deniedAddress, WORLD_PORT)).toEqual({
        ok: false,
        code: "ECONNREFUSED",
      });
    });

    it("reaches no port the host's nat table redirects (a Docker-published port, say)", async () => {
      // The host forwards <its address>:<port> to the world's server, as Docker does for a
      // published port; such traffic passes FORWARD, not INPUT. Only this test's pool matches.
      const port = randomInt(20_000, 30_000);
      const dnat = ["-s", pool, "-d", world.hostAddress, "-p", "tcp", "--dport", String(port)];
      const target = ["-j", "DNAT", "--to-destination", `${world.address}:${WORLD_PORT}`];
      await runChecked(runCommand, "iptables", [
        "-w",
        "-t",
        "nat",
        "-I",
        "PREROUTING",
        ...dnat,
        ...target,
      ]);
      try {
        expect(await fromA(world.hostAddress, port)).toEqual({ ok: false, code: "ECONNREFUSED" });
      } finally {
        await runChecked(runCommand, "iptables", [
          "-w",
          "-t",
          "nat",
          "-D",
          "PREROUTING",
          ...dnat,
          ...target,
        ]);
      }
    });

    it("reaches no other sandbox, though that one listens on its address", async () => {
      const bAddress = b.address ?? "";
      const inB = { netnsPath: b.netnsPath, uid: SANDBOX_UID };
      expect(await connectFrom(inB, bAddress, WORLD_PORT)).toEqual({ ok: true, body: "neighbour" });
      expect(await fromA(bAddress, WORLD_PORT)).toEqual({ ok: false, code: "ECONNREFUSED" });
    });

    it("has no IPv6 but on loopback, on either end of its link", async () => {
      expect(await readInside(a.netnsPath, "/proc/sys/net/ipv6/conf/all/disable_ipv6")).toBe("1");
      expect(await readInside(a.netnsPath, "/proc/sys/net/ipv6/conf/eth0/disable_ipv6")).toBe("1");
      expect(await readInside(a.netnsPath, "/proc/sys/net/ipv6/conf/lo/disable_ipv6")).toBe("0");
      const inside = await readInside(a.netnsPath, "/proc/net/if_inet6");
      expect(inside.split("\n").map((line) => line.trim().split(/\s+/).pop())).toEqual(["lo"]);
      const onHost = await readFile("/proc/net/if_inet6", "utf8");
      expect(onHost).not.toMatch(/ gust[0-9a-f]{8}\n/);
    });

    it("a tenant denied egress has loopback only; the slot's next sandbox gets its link back", async () => {
      const denied = await networks.denyEgress(0);
      expect(denied).toEqual({ netnsPath: a.netnsPath, egress: false });
      expect(await interfacesIn(a.netnsPath)).toEqual(["lo"]);
      expect(await fromA(world.address, WORLD_PORT)).toMatchObject({
        ok: false,
        code: "ENETUNREACH",
      });

      await networks.release(0);
      const before = spawned;
      a = await networks.acquire(0, { egress: true });
      expect(spawned - before, "the common path runs no program").toBe(0);
      expect(a.egress).toBe(true);
      expect(await fromA(world.address, WORLD_PORT)).toEqual({ ok: true, body: "world" });
    });

    it("a sandbox asked for without egress gets loopback only", async () => {
      const c = await networks.acquire(2, { egress: false });
      expect(c.egress).toBe(false);
      expect(await interfacesIn(c.netnsPath)).toEqual(["lo"]);
      const outcome = await connectFrom(
        { netnsPath: c.netnsPath, uid: SANDBOX_UID },
        world.address,
        WORLD_PORT,
      );
      expect(outcome).toMatchObject({ ok: false, code: "ENETUNREACH" });

      // A tenant allowed egress after all gets a link while its sandbox runs.
      expect((await networks.allowEgress(2)).egress).toBe(true);
      const fromC = { netnsPath: c.netnsPath, uid: SANDBOX_UID };
      expect(await connectFrom(fromC, world.address, WORLD_PORT)).toEqual({
        ok: true,
        body: "world",
      });
      expect((await networks.denyEgress(2)).egress).toBe(false);
    });

    it("even a namespace that routed 127/8 to the host would be dropped there as martian", async () => {
      // Only root inside the namespace could do this; a sandbox's uid cannot.
      const d = await networks.acquire(3, { egress: true });
      const gateway = (
        await runChecked(runCommand, "ip", ["-netns", `gust-${tag}-3`, "route", "show", "default"])
      ).split(" ")[2];
      await runChecked(
        runCommand,
        "ip",
        ["-netns", `gust-${tag}-3`, "-batch", "-"],
        [
          "address delete 127.0.0.1/8 dev lo",
          `route add 127.0.0.0/8 via ${gateway} dev eth0`,
          "",
        ].join("\n"),
      );
      // Dropped before the firewall's INPUT chain (which would reset): a timeout, not a refusal.
      const outcome = await connectFrom(
        { netnsPath: d.netnsPath, timeoutMs: 1500 },
        "127.0.0.1",
        hostPort,
      );
      expect(outcome).toEqual({ ok: false, code: "timeout" });
    });

    it("removeStale deletes what a dead worker with the same tag left", async () => {
      const deadTag = `d${suffix}`;
      const dead = await SandboxNetworks.open({ workerTag: deadTag, addressPool: pool });
      const left = await dead.acquire(0, { egress: true });
      expect(await linksOf(deadTag)).toHaveLength(1);
      // The worker dies here, its namespace and link still on the host.
      const successor = await SandboxNetworks.open({ workerTag: deadTag, addressPool: pool });
      await successor.removeStale();
      expect(existsSync(left.netnsPath)).toBe(false);
      expect(await linksOf(deadTag)).toEqual([]);
      expect((await successor.acquire(0, { egress: true })).egress).toBe(true);
      await successor.close();
      expect(existsSync(left.netnsPath)).toBe(false);
      expect(await linksOf(deadTag)).toEqual([]);
    });

    it("two workers sharing a pool, linking slots at once, get distinct links that all work", async () => {
      const other = await SandboxNetworks.open({ workerTag: `o${suffix}`, addressPool: pool });
      try {
        const linked = await Promise.all([
          ...[4, 5, 6].map((slot) => networks.acquire(slot, { egress: true })),
          ...[0, 1, 2].map((slot) => other.acquire(slot, { egress: true })),
        ]);
        const addresses = linked.map((network) => network.address);
        expect(new Set(addresses).size).toBe(linked.length);
        for (const network of linked) {
          const outcome = await connectFrom(
            { netnsPath: network.netnsPath, uid: SANDBOX_UID },
            world.address,
            WORLD_PORT,
          );
          expect(outcome, network.netnsPath).toEqual({ ok: true, body: "world" });
        }
      } finally {
        await other.close();
      }
    });

    it("workers opening at once install each of their rules once", async () => {
      const opened = await Promise.all(
        [1, 2, 3].map((n) =>
          SandboxNetworks.open({
            workerTag: `r${n}${suffix}`,
            addressPool: pool,
            denyCidrs: [world.deniedPrefix],
          }),
        ),
      );
      await Promise.all(opened.map((other) => other.close()));
      const rules = async (table: string, chain: string) =>
        (await runChecked(runCommand, "iptables", ["-w", "-t", table, "-S", chain]))
          .split("\n")
          .filter((line) => line.startsWith("-A "));
      const count = (lines: string[], text: string) =>
        lines.filter((line) => line.includes(text)).length;
      expect(count(await rules("filter", "INPUT"), FirewallChains.input)).toBe(1);
      expect(count(await rules("filter", "FORWARD"), FirewallChains.forward)).toBe(1);
      expect(count(await rules("nat", "POSTROUTING"), FirewallChains.nat)).toBe(1);
      expect(count(await rules("filter", FirewallChains.deny), world.deniedPrefix)).toBe(1);
      expect(count(await rules("nat", FirewallChains.nat), pool)).toBe(1);
    });

    it("close deletes every namespace and link of the worker", async () => {
      expect(await linksOf(tag)).toHaveLength(6);
      await networks.close();
      for (let slot = 0; slot <= 6; slot++)
        expect(existsSync(`/run/netns/gust-${tag}-${slot}`)).toBe(false);
      expect(await linksOf(tag)).toEqual([]);
    });
  },
);

/** The host ends of sandbox links on this host but those of the given worker tags. */
async function sandboxLinksExcept(workerTags: string[]): Promise<string[]> {
  const links: string[] = [];
  for (const name of await readdir("/sys/class/net")) {
    if (!name.startsWith(SANDBOX_LINK_PREFIX)) continue;
    const alias = await readFile(`/sys/class/net/${name}/ifalias`, "utf8").catch(() => "");
    if (!workerTags.some((tag) => alias.startsWith(`gust:${tag}:`))) links.push(name);
  }
  return links;
}

/** The host ends of the links a worker tag holds, found by their alias. */
async function linksOf(workerTag: string): Promise<string[]> {
  const links: string[] = [];
  for (const name of await readdir("/sys/class/net")) {
    const alias = await readFile(`/sys/class/net/${name}/ifalias`, "utf8").catch(() => "");
    if (alias.startsWith(`gust:${workerTag}:`)) links.push(name);
  }
  return links;
}
