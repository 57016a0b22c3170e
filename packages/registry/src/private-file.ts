/**
 * Files that hold secrets (the tenants file, the tenant key) must be readable
 * by the process that uses them and nobody else: handlers of custom runtimes
 * run as other users on the same host, and a file written with the default
 * umask (0644) is theirs to read.
 *
 * Refused: any permission for other users, a group that may write, a group
 * that may read, and an owner other than this process's user or root (the
 * owner can chmod it open again). One shape of group read is accepted: a
 * root-owned file whose group is one of this process's groups, with no group
 * write. That is how Kubernetes mounts a Secret for a pod running as a
 * non-root user (`fsGroup`: files root's, mode 0440), where the group is the
 * pod's own; it cannot be given any other way.
 */
import { stat } from "node:fs/promises";
import { ConfigError } from "@gust/protocol";

export interface PrivateFileCheck {
  path: string;
  /** Permission bits, e.g. 0o600. */
  mode: number;
  uid: number;
  gid: number;
  /** Why other users could read or change the file; empty when it is private. */
  problems: string[];
}

/** `0644`-style text for messages. */
export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function ownGroups(): Set<number> {
  const groups = new Set<number>(process.getgroups?.() ?? []);
  const gid = process.getegid?.();
  if (gid !== undefined) groups.add(gid);
  return groups;
}

/**
 * Who besides this process's user could read or change `path`. Symbolic
 * links are followed (Kubernetes' Secret files are links into `..data/`).
 * Without POSIX users (Windows) nothing is checked.
 */
export async function checkPrivateFile(path: string, what: string): Promise<PrivateFileCheck> {
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
  const check: PrivateFileCheck = {
    path,
    mode: info.mode & 0o7777,
    uid: info.uid,
    gid: info.gid,
    problems: [],
  };
  const euid = process.geteuid?.();
  if (euid === undefined) return check;
  if (info.uid !== euid && info.uid !== 0) {
    check.problems.push(
      `it belongs to uid ${info.uid}, not to this process's user (uid ${euid}) or root`,
    );
  }
  if ((info.mode & 0o007) !== 0) check.problems.push("every user may read or change it");
  if ((info.mode & 0o020) !== 0) check.problems.push("its group may change it");
  const kubernetesSecret = info.uid === 0 && ownGroups().has(info.gid);
  if ((info.mode & 0o040) !== 0 && !kubernetesSecret) {
    check.problems.push(`its group (gid ${info.gid}) may read it`);
  }
  return check;
}

/** The operator's fix for a check with problems, e.g. for an error message. */
export function describePrivateFileProblems(check: PrivateFileCheck, what: string): string {
  return (
    `${what} ${check.path} (mode ${formatMode(check.mode)}, uid ${check.uid}) is not private: ` +
    `${check.problems.join("; ")}. Fix: chmod 600 ${check.path}` +
    (check.problems.some((problem) => problem.startsWith("it belongs"))
      ? ` and chown it to the user Gust runs as`
      : "")
  );
}

/** Throws a ConfigError naming the file, its mode and the fix unless only its owner can read it. */
export async function assertPrivateFile(path: string, what: string): Promise<void> {
  const check = await checkPrivateFile(path, what);
  if (check.problems.length > 0) {
    throw new ConfigError(describePrivateFileProblems(check, what));
  }
}
