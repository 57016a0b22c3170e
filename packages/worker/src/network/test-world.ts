/**
 * A stand-in for "the world" that sandbox egress tests talk to: a network
 * namespace of the test's own, linked to the host by a veth pair and running
 * a TCP server that answers with a fixed word on every address it holds.
 *
 * No test packet may leave the machine, so packets from the test's sandbox
 * pool are policy-routed through a table of the world's own: the world's
 * link, its "denied" prefix and its copy of the metadata address
 * (169.254.169.254) lead into the world namespace, the pool itself back to
 * the main table, and everything else is unreachable. Only sandboxes of that
 * pool see this table; the host's own traffic keeps its routes. A blocked
 * destination is thus blocked by the firewall, not by a missing route.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { once } from "node:events";
import { runChecked, runCommand } from "./commands.js";
import { FirewallChains, findIptables } from "./firewall.js";

/** Where the world's server listens, inside its own namespace. */
export const WORLD_PORT = 8080;
export const METADATA_ADDRESS = "169.254.169.254";

export interface ConnectOutcome {
  ok: boolean;
  /** What the server said, when the connection succeeded. */
  body?: string;
  /** errno code (ECONNREFUSED, ENETUNREACH…) or "timeout". */
  code?: string;
}

/** Connects, reads until the server closes, prints one JSON line. */
const CONNECT_SCRIPT = `
const net = require("node:net");
const [host, port, timeoutMs] = process.argv.slice(1);
let body = "";
const done = (outcome) => { process.stdout.write(JSON.stringify(outcome) + "\\n"); process.exit(0); };
const socket = net.connect({ host, port: Number(port) });
socket.setTimeout(Number(timeoutMs), () => done({ ok: false, code: "timeout" }));
socket.on("data", (chunk) => (body += chunk));
socket.on("end", () => done({ ok: true, body }));
socket.on("error", (error) => done({ ok: false, code: error.code }));
`;

const SERVER_SCRIPT = `
const [word, port] = process.argv.slice(1);
require("node:net")
  .createServer((socket) => socket.end(word))
  .listen(Number(port), "0.0.0.0", () => process.stdout.write("listening\\n"));
`;

export interface ConnectFrom {
  /** The namespace to connect from. */
  netnsPath: string;
  /** Run the client as this uid and gid (no groups), as a sandbox runs; root when absent. */
  uid?: number;
  timeoutMs?: number;
}

/** One TCP connection attempt from inside a namespace. */
export async function connectFrom(
  from: ConnectFrom,
  host: string,
  port: number,
): Promise<ConnectOutcome> {
  const client = [
    process.execPath,
    "-e",
    CONNECT_SCRIPT,
    host,
    String(port),
    String(from.timeoutMs ?? 3000),
  ];
  const command =
    from.uid === undefined
      ? client
      : [
          "setpriv",
          `--reuid=${from.uid}`,
          `--regid=${from.uid}`,
          "--clear-groups",
          "--",
          ...client,
        ];
  const stdout = await runChecked(runCommand, "nsenter", [
    `--net=${from.netnsPath}`,
    "--",
    ...command,
  ]);
  return JSON.parse(stdout) as ConnectOutcome;
}

/** A TCP server inside a namespace answering `word` to every connection, until stopped. */
export async function serveIn(
  netnsPath: string,
  word: string,
  port: number,
): Promise<ChildProcess> {
  const server = spawn(
    "nsenter",
    [`--net=${netnsPath}`, "--", process.execPath, "-e", SERVER_SCRIPT, word, String(port)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [chunk] = (await Promise.race([
    once(server.stdout, "data"),
    once(server, "exit").then(() => {
      throw new Error(`the server in ${netnsPath} exited before listening`);
    }),
  ])) as [Buffer];
  if (!chunk.toString().includes("listening"))
    throw new Error(`unexpected server output ${String(chunk)}`);
  return server;
}

export class TestWorld {
  readonly namespace: string;
  readonly netnsPath: string;
  /** The host's end of the world's link. */
  readonly hostInterface: string;
  readonly hostAddress: string;
  /** The world's address on its link. */
  readonly address: string;
  /** A prefix the world also answers in, for denyCidrs. */
  readonly deniedPrefix: string;
  readonly deniedAddress: string;
  readonly table: number;
  readonly rulePriority: number;
  #server: ChildProcess | undefined;
  #routedPool: string | undefined;

  private constructor() {
    const suffix = randomBytes(3).toString("hex");
    const octet = randomInt(1, 255);
    this.namespace = `gust-test-world-${suffix}`;
    this.netnsPath = `/run/netns/${this.namespace}`;
    this.hostInterface = `gtw${suffix}`;
    this.hostAddress = `198.18.${octet}.1`;
    this.address = `198.18.${octet}.2`;
    this.deniedPrefix = `198.19.${octet}.0/24`;
    this.deniedAddress = `198.19.${octet}.2`;
    this.table = randomInt(20_000, 30_000);
    this.rulePriority = randomInt(20_000, 30_000);
  }

  /** The world, linked and serving "world" on WORLD_PORT; packets from `pool` routed as above. */
  static async create(pool: string): Promise<TestWorld> {
    const world = new TestWorld();
    try {
      await world.#build(pool);
    } catch (error) {
      await world.close();
      throw error;
    }
    return world;
  }

  async #build(pool: string): Promise<void> {
    const ip = (args: string[], input?: string) => runChecked(runCommand, "ip", args, input);
    await ip(["netns", "add", this.namespace]);
    await ip(
      ["-batch", "-"],
      [
        `link add ${this.hostInterface} type veth peer name eth0 netns ${this.namespace}`,
        `address add ${this.hostAddress}/30 dev ${this.hostInterface}`,
        `link set dev ${this.hostInterface} up`,
        "",
      ].join("\n"),
    );
    await ip(
      ["-netns", this.namespace, "-batch", "-"],
      [
        "link set dev lo up",
        `address add ${this.address}/30 dev eth0`,
        `address add ${this.deniedAddress}/32 dev eth0`,
        `address add ${METADATA_ADDRESS}/32 dev eth0`,
        "link set dev eth0 up",
        "",
      ].join("\n"),
    );
    this.#routedPool = pool;
    await ip(
      ["-batch", "-"],
      [
        `route add ${this.address}/32 dev ${this.hostInterface} table ${this.table}`,
        `route add ${this.deniedPrefix} via ${this.address} dev ${this.hostInterface} table ${this.table}`,
        `route add ${METADATA_ADDRESS}/32 via ${this.address} dev ${this.hostInterface} table ${this.table}`,
        `route add throw ${pool} table ${this.table}`,
        `route add unreachable default table ${this.table}`,
        `rule add from ${pool} lookup ${this.table} priority ${this.rulePriority}`,
        "",
      ].join("\n"),
    );
    this.#server = await serveIn(this.netnsPath, "world", WORLD_PORT);
  }

  async close(): Promise<void> {
    if (this.#server && this.#server.exitCode === null) {
      this.#server.kill("SIGKILL");
      await once(this.#server, "exit");
    }
    if (this.#routedPool)
      await runCommand("ip", [
        "rule",
        "delete",
        "from",
        this.#routedPool,
        "lookup",
        String(this.table),
        "priority",
        String(this.rulePriority),
      ]);
    await runCommand("ip", ["route", "flush", "table", String(this.table)]);
    await runCommand("ip", ["link", "delete", "dev", this.hostInterface]);
    await runCommand("ip", ["netns", "delete", this.namespace]);
  }
}

/**
 * Take back the host rules a test's workers added for its pool and denied
 * prefix. The chains themselves stay for whatever worker runs on this host
 * (a concurrent test's too).
 */
export async function removeTestRules(pool: string, deniedPrefix: string): Promise<void> {
  const iptables = await findIptables();
  if (typeof iptables === "string") return;
  const own = [
    ["-t", "filter", "-D", FirewallChains.deny, "-d", deniedPrefix, "-j", FirewallChains.reject],
    ["-t", "nat", "-D", FirewallChains.nat, "-s", pool, "!", "-o", "gust+", "-j", "MASQUERADE"],
  ];
  for (const rule of own)
    while ((await runCommand(iptables.iptables, ["-w", ...rule])).exitCode === 0);
}
