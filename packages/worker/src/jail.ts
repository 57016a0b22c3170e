/**
 * The jail a sandbox's runtime runs in when the host allows it: its own
 * mount, PID, IPC, UTS and network namespaces (bubblewrap), an unprivileged
 * uid with no capabilities (setpriv), a private /tmp and /dev/shm capped in
 * size, read-only code and runtime, and no view of any host file but the
 * read-only system directories programs need.
 *
 * What a runtime sees, as in Lambda:
 *
 *   /var/task      its function's code, read-only (LAMBDA_TASK_ROOT)
 *   /var/runtime   the runtime's files, read-only (LAMBDA_RUNTIME_DIR)
 *   /tmp           a tmpfs of EphemeralStorage bytes, its own
 *   /run/gust      its Runtime API's unix socket and its launch line
 *   /usr, /etc/…   the host's system files, read-only
 *
 * The Runtime API is at AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 as Lambda puts
 * it: a forwarder (socat) inside the sandbox's own network namespace listens
 * there and connects to the unix socket, so the sandbox reaches exactly one
 * platform endpoint and nothing on the host's loopback.
 *
 * The launch is a chain; everything before setpriv runs as root and must not
 * be influenced by the tenant, so it gets a fixed environment, never the
 * function's (LD_PRELOAD, GLIBC_TUNABLES or BASH_ENV would otherwise act on a
 * root process). The function's variables and command line are written to
 * a launch line only the sandbox's uid may read, and handed to `env -i -S`
 * after the uid and every capability are gone, so they are on no long-lived
 * command line another user of the host could read:
 *
 *   sh (root): join the sandbox's control groups, cap open files  → exec
 *   [nsenter --net=<slot netns>]                                  → exec
 *   bwrap: namespaces and mounts                                   → fork
 *   setpriv: uid/gid, no groups, no capabilities, no_new_privs     → exec
 *   sh (sandbox uid): start the forwarder, wait for its port       → exec
 *   env -i -S "$(cat /run/gust/launch)"                            → exec
 */
import { execFile } from "node:child_process";
import { chown, lstat, readlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { findTool } from "./network/commands.js";

const run = promisify(execFile);

/** Where things are inside a jail. */
export const JailPaths = {
  taskRoot: "/var/task",
  runtimeDir: "/var/runtime",
  tmpDir: "/tmp",
  runDir: "/run/gust",
  runtimeApiSocket: "/run/gust/runtime.sock",
  launchLine: "/run/gust/launch",
} as const;

/** AWS_LAMBDA_RUNTIME_API inside a jail: Lambda's own address. */
export const JAIL_RUNTIME_API_HOST = "127.0.0.1";
export const JAIL_RUNTIME_API_PORT = 9001;
export const JAIL_RUNTIME_API = `${JAIL_RUNTIME_API_HOST}:${JAIL_RUNTIME_API_PORT}`;

/** Lambda's limit of open file descriptors per execution environment. */
export const JAIL_OPEN_FILES = 1024;
/** /dev/shm is the sandbox's own; it counts against its memory like /tmp. */
export const JAIL_SHM_BYTES = 64 * 1024 * 1024;

/** Programs the chain runs, found once at start. */
export interface JailTools {
  sh: string;
  bwrap: string;
  setpriv: string;
  socat: string;
  env: string;
  nsenter: string;
}

export type JailSupport =
  { available: true; tools: JailTools } | { available: false; reason: string };

/** System directories a runtime needs, bound read-only when they exist. */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/** Files of /etc programs read (name resolution, TLS roots, time zone, linker cache). */
const ETC_ENTRIES = [
  "/etc/resolv.conf",
  "/etc/hosts",
  "/etc/host.conf",
  "/etc/nsswitch.conf",
  "/etc/gai.conf",
  "/etc/protocols",
  "/etc/services",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/pki",
  "/etc/alternatives",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/mime.types",
];

let detected: Promise<JailSupport> | undefined;

/**
 * Whether this host can jail sandboxes: root, the tools present (Debian:
 * bubblewrap, socat, util-linux), and a trial jail that really starts.
 * Cached for the process.
 */
export function detectJail(): Promise<JailSupport> {
  detected ??= detect();
  return detected;
}

async function detect(): Promise<JailSupport> {
  if (process.platform !== "linux") return { available: false, reason: "not Linux" };
  if (process.getuid?.() !== 0) {
    return { available: false, reason: "the worker does not run as root" };
  }
  const names = ["sh", "bwrap", "setpriv", "socat", "env", "nsenter"] as const;
  const found: Partial<Record<(typeof names)[number], string>> = {};
  const missing: string[] = [];
  for (const name of names) {
    const tool = await findTool(name);
    if (tool === undefined) missing.push(name);
    else found[name] = tool;
  }
  if (missing.length > 0) {
    return {
      available: false,
      reason: `missing ${missing.join(", ")} (Debian: apt-get install bubblewrap socat util-linux)`,
    };
  }
  const tools = found as JailTools;
  try {
    // The launch line needs env's --split-string (GNU coreutils 8.30 and later).
    await run(tools.env, ["-i", "-S", "'/bin/true'"], { timeout: 10_000 });
  } catch {
    return { available: false, reason: `${tools.env} has no -S (GNU coreutils 8.30 or later)` };
  }
  try {
    await run(tools.bwrap, [...namespaceArguments(), ...(await systemBinds()), "--", "/bin/true"], {
      timeout: 10_000,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return { available: false, reason: `bubblewrap cannot make namespaces here: ${message}` };
  }
  return { available: true, tools };
}

function namespaceArguments(): string[] {
  return [
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--hostname",
    "localhost",
    "--die-with-parent",
    "--new-session",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
  ];
}

async function kindOf(target: string): Promise<"dir" | "file" | "link" | undefined> {
  try {
    const stats = await lstat(target);
    if (stats.isSymbolicLink()) return "link";
    return stats.isDirectory() ? "dir" : "file";
  } catch {
    return undefined;
  }
}

let systemBindsCache: Promise<string[]> | undefined;

/** Read-only binds of the system directories (symlinks kept as symlinks, merged /usr or not). */
function systemBinds(): Promise<string[]> {
  systemBindsCache ??= (async () => {
    const args: string[] = [];
    for (const dir of SYSTEM_DIRS) {
      const kind = await kindOf(dir);
      if (kind === "dir") args.push("--ro-bind", dir, dir);
      else if (kind === "link") {
        args.push("--symlink", await readlink(dir), dir);
      }
    }
    // Made explicitly: bubblewrap would otherwise give /etc the mode of a host directory.
    args.push("--perms", "0755", "--dir", "/etc");
    for (const entry of ETC_ENTRIES) args.push("--ro-bind-try", entry, entry);
    return args;
  })();
  return systemBindsCache;
}

export interface JailSpec {
  /** The host directory bound read-only at /var/task. */
  taskRoot: string;
  /** The host directory bound read-only at /var/runtime. */
  runtimeDir: string;
  /** The host directory bound at /run/gust: the Runtime API socket; the launch line is written here. */
  runDir: string;
  /** What runs in the jail, with exactly this environment. */
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  /** The host directory of passwd and group for the sandbox user, bound into /etc. */
  etcDir: string;
  uid: number;
  gid: number;
  /** Size of the private /tmp (EphemeralStorage). */
  tmpBytes: number;
  /** The network namespace to enter (its slot's); undefined: a new one with loopback only. */
  netnsPath?: string | undefined;
  /** Shell lines run as root before anything else (joining the sandbox's control groups). */
  prelude?: string;
  /** Host files the runtime executes that live outside the system directories (e.g. node). */
  extraReadOnly?: readonly string[];
  /**
   * Start the runtime only once the forwarder listens on 127.0.0.1:9001. A
   * runtime that reaches its API through the socket (Gust's Node.js runtime)
   * need not wait; a custom runtime's first `curl` must not be refused.
   * @default true
   */
  awaitForwarder?: boolean;
  /**
   * The file shown at /etc/resolv.conf (one whose nameservers a sandbox can
   * reach: see network/resolver.ts); undefined shows the host's.
   */
  resolvConf?: string;
}

/** How the worker spawns a jailed runtime: a fixed command and a root-safe environment. */
export interface JailLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * `env -i` words: VAR=value for each variable, then the command and its
 * arguments. Names are checked upstream (a Lambda variable name never holds
 * '='), so `env` cannot take a word of the command for a variable or the
 * reverse.
 */
export function environmentWords(
  env: Record<string, string>,
  command: string,
  args: readonly string[],
): string[] {
  if (command.includes("="))
    throw new TypeError(`a jailed command may not contain '=': ${command}`);
  const words: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    if (value.includes("\0")) continue;
    words.push(`${name}=${value}`);
  }
  words.push(command, ...args);
  for (const word of words) {
    if (word.includes("\0")) throw new TypeError("a jailed argument contains NUL");
  }
  return words;
}

/**
 * The words as one `env -S` string: each single-quoted, where only \\ and \'
 * are escapes, so any character but NUL passes through unchanged and no
 * \${VAR} is expanded (GNU coreutils, env's --split-string).
 */
export function launchLine(words: readonly string[]): string {
  return words.map((word) => `'${word.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`).join(" ");
}

/** passwd and group for a jail: root and the sandbox's own user, as Lambda's sbx_user1051. */
export async function writeJailIdentity(etcDir: string, uid: number, gid: number): Promise<void> {
  await writeFile(
    path.join(etcDir, "passwd"),
    `root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user1051:x:${uid}:${gid}::/tmp:/usr/sbin/nologin\n`,
    { mode: 0o444 },
  );
  await writeFile(path.join(etcDir, "group"), `root:x:0:\nsbx_user1051:x:${gid}:\n`, {
    mode: 0o444,
  });
}

/**
 * The port the forwarder listens on, as /proc/net/tcp writes a listening
 * socket on 127.0.0.1 (hex address and port, state 0A).
 */
const FORWARDER_LISTEN_ENTRY = ` 0100007F:${JAIL_RUNTIME_API_PORT.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 0A `;

/** Longest the jail's init waits for its forwarder before starting the runtime anyway. */
const FORWARDER_WAIT_STEPS = 400;

/** The command line that starts a runtime in its jail (its launch line written into spec.runDir). */
export async function jailLaunch(tools: JailTools, spec: JailSpec): Promise<JailLaunch> {
  const binds: string[] = [...(await systemBinds())];
  if (spec.resolvConf !== undefined) binds.push("--ro-bind", spec.resolvConf, "/etc/resolv.conf");
  binds.push("--ro-bind", path.join(spec.etcDir, "passwd"), "/etc/passwd");
  binds.push("--ro-bind", path.join(spec.etcDir, "group"), "/etc/group");
  for (const file of spec.extraReadOnly ?? []) {
    if (SYSTEM_DIRS.some((dir) => file === dir || file.startsWith(`${dir}/`))) continue;
    binds.push("--ro-bind", file, file);
  }
  // Parents made explicitly: bubblewrap would otherwise give them the mode of the host's.
  for (const parent of ["/var", "/run"]) binds.push("--perms", "0755", "--dir", parent);
  binds.push("--ro-bind", spec.taskRoot, JailPaths.taskRoot);
  binds.push("--ro-bind", spec.runtimeDir, JailPaths.runtimeDir);
  binds.push("--bind", spec.runDir, JailPaths.runDir);
  binds.push("--perms", "1777", "--size", String(spec.tmpBytes), "--tmpfs", JailPaths.tmpDir);
  binds.push("--perms", "1777", "--size", String(JAIL_SHM_BYTES), "--tmpfs", "/dev/shm");
  binds.push("--remount-ro", "/");

  // The sandbox user's init: the forwarder, a short wait for its port, then the runtime.
  const init = [
    `${tools.socat} TCP-LISTEN:${JAIL_RUNTIME_API_PORT},bind=${JAIL_RUNTIME_API_HOST},reuseaddr,fork UNIX-CONNECT:${JailPaths.runtimeApiSocket} </dev/null >/dev/null 2>&1 &`,
    spec.awaitForwarder === false
      ? ""
      : `i=0; while [ $i -lt ${FORWARDER_WAIT_STEPS} ] && ! grep -q '${FORWARDER_LISTEN_ENTRY}' /proc/net/tcp; do i=$((i+1)); sleep 0.005; done`,
    `exec ${tools.env} -i -S "$(cat ${JailPaths.launchLine})"`,
  ]
    .filter((line) => line !== "")
    .join("\n");

  const launchFile = path.join(spec.runDir, path.basename(JailPaths.launchLine));
  await writeFile(launchFile, launchLine(environmentWords(spec.env, spec.command, spec.args)), {
    mode: 0o400,
  });
  await chown(launchFile, spec.uid, spec.gid);
  const inside = [
    tools.bwrap,
    ...namespaceArguments(),
    ...(spec.netnsPath === undefined ? ["--unshare-net"] : []),
    ...binds,
    "--chdir",
    JailPaths.taskRoot,
    "--",
    tools.setpriv,
    `--reuid=${spec.uid}`,
    `--regid=${spec.gid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
    tools.sh,
    "-c",
    init,
    "gust-sandbox-init",
  ];
  // A worker killed outright (SIGKILL, OOM) runs no clean-up: bubblewrap, whose parent it
  // is (every step before execs), takes the sandbox down with it (--die-with-parent); a
  // sandbox frozen at that moment acts on it only once the worker's reaper thaws it
  // (cgroup/reaper.ts).
  const chain =
    spec.netnsPath === undefined
      ? inside
      : [tools.nsenter, `--net=${spec.netnsPath}`, "--", ...inside];
  const root = [spec.prelude ?? "", `ulimit -n ${JAIL_OPEN_FILES}`, "ulimit -c 0", 'exec "$@"']
    .filter((line) => line !== "")
    .join("\n");
  return {
    command: tools.sh,
    args: ["-c", root, "gust-sandbox", ...chain],
    // The root part of the chain sees only this.
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" },
  };
}
