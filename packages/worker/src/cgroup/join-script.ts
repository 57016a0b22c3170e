/**
 * How a sandbox's first process enters its control group without a window in
 * which it, or anything it forks, runs outside. The launcher is a /bin/sh that
 * writes its own pid ($$) into each cgroup.procs file and then execs the
 * runtime: exec keeps the pid, so the runtime starts already inside, and every
 * process it forks is born inside (cgroup membership is inherited on fork).
 * Moving a pid in after spawn would leave a moment in which a fast fork lands
 * outside for good.
 *
 * The writes need root (v2 also requires write access to cgroup.procs of the
 * nearest common ancestor of the old and the new group: cgroup-v2.rst,
 * "Delegation Containment"), so the launcher joins first and drops to the
 * sandbox's uid afterwards, in the exec (`setpriv --reuid … --regid …
 * --clear-groups -- runtime`). If any write fails the launcher exits 125 and
 * the runtime never starts: better no sandbox than an unconfined one.
 */

/** A word /bin/sh reads back verbatim: single quotes, with each ' written as '\''. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Exit status of a launcher that could not join its group (126/127 are taken by sh for exec failures). */
export const JOIN_FAILED_EXIT_CODE = 125;

export function joinScriptFor(procsFiles: readonly string[]): string {
  if (procsFiles.length === 0)
    throw new RangeError("a join script needs at least one cgroup.procs file");
  const writes = procsFiles.map((file) => `echo $$ > ${shellQuote(file)}`).join(" && ");
  return `{ ${writes}; } || { echo 'gust: cannot join the sandbox control group' >&2; exit ${JOIN_FAILED_EXIT_CODE}; }`;
}

/**
 * Arguments for spawn("/bin/sh", …) that join the group and exec `command`
 * with `args`, passed as positional parameters so none of them is ever parsed
 * by the shell.
 */
export function launcherArgsFor(
  procsFiles: readonly string[],
  command: string,
  args: readonly string[],
): string[] {
  return ["-c", `${joinScriptFor(procsFiles)}\nexec "$@"`, "gust-sandbox", command, ...args];
}
