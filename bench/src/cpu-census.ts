/**
 * Who used the CPU during a measurement, from /proc: the whole machine
 * (/proc/stat), and the processes that are not the benchmark's own — on a
 * shared machine, other people's work competes with both tenants and must
 * be told apart from the noisy tenant. The benchmark's own processes are
 * the descendants of this process, plus any whose command line carries a
 * marker (spinners that escaped the sandbox's tree by double-forking are
 * reparented to init, out of the tree).
 *
 * Per-process figures are utime + stime (proc(5), fields 14 and 15, in
 * USER_HZ): a process that lives through the measurement counts its change,
 * one started during it all of its time, and one that ended before the
 * second snapshot nothing (children's times, cutime, are left out: a parent
 * reaping a long-lived child would count the child's whole life). So "other
 * work" is a lower bound, missing what short-lived processes used; it is
 * enough to tell a quiet machine from a busy one, and the machine's own
 * total (/proc/stat) is exact.
 */
import { readFile, readdir } from "node:fs/promises";
import { cpus } from "node:os";

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const TICKS_PER_SECOND = 100;

interface ProcessSample {
  parent: number;
  startTime: string;
  ticks: number;
}

export interface CpuSnapshot {
  atMs: number;
  machineBusyTicks: number;
  machineTotalTicks: number;
  processes: Map<number, ProcessSample>;
  /** Pids whose command line carries the marker. */
  marked: Set<number>;
}

async function machineTicks(): Promise<{ busy: number; total: number }> {
  const stat = await readFile("/proc/stat", "utf8");
  const fields = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

async function sampleProcess(pid: number): Promise<ProcessSample | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // After the command name (which may hold spaces and parentheses): field 3 onwards.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = [11, 12].reduce((sum, index) => sum + Number(fields[index] ?? 0), 0);
    return { parent: Number(fields[1]), startTime: fields[19] ?? "", ticks };
  } catch {
    return undefined;
  }
}

export async function cpuSnapshot(marker: string): Promise<CpuSnapshot> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const processes = new Map<number, ProcessSample>();
  const marked = new Set<number>();
  await Promise.all(
    pids.map(async (pid) => {
      const sample = await sampleProcess(pid);
      if (!sample) return;
      processes.set(pid, sample);
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (cmdline.includes(marker)) marked.add(pid);
    }),
  );
  const machine = await machineTicks();
  return {
    atMs: performance.now(),
    machineBusyTicks: machine.busy,
    machineTotalTicks: machine.total,
    processes,
    marked,
  };
}

function descendantsOf(root: number, processes: Map<number, ProcessSample>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, sample] of processes) {
    children.set(sample.parent, [...(children.get(sample.parent) ?? []), pid]);
  }
  const tree = new Set<number>();
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    tree.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

export interface CpuUse {
  /** Cores' worth of CPU the whole machine used (0..cores). */
  machineCores: number;
  /** Cores' worth used by processes that are not the benchmark's (a lower bound). */
  otherCores: number;
  cores: number;
}

/** CPU use between two snapshots; the benchmark's own processes descend from `root`. */
export function cpuUseBetween(before: CpuSnapshot, after: CpuSnapshot, root: number): CpuUse {
  const cores = cpus().length;
  const total = after.machineTotalTicks - before.machineTotalTicks;
  const busy = after.machineBusyTicks - before.machineBusyTicks;
  const seconds = (after.atMs - before.atMs) / 1000;
  const ours = descendantsOf(root, after.processes);
  let otherTicks = 0;
  for (const [pid, sample] of after.processes) {
    if (ours.has(pid) || after.marked.has(pid)) continue;
    const earlier = before.processes.get(pid);
    const since = earlier && earlier.startTime === sample.startTime ? earlier.ticks : 0;
    otherTicks += Math.max(0, sample.ticks - since);
  }
  return {
    machineCores: total > 0 ? (busy / total) * cores : Number.NaN,
    otherCores: seconds > 0 ? otherTicks / TICKS_PER_SECOND / seconds : Number.NaN,
    cores,
  };
}

/** A process and its descendants now, each with its start time (pids are reused). */
export async function processTree(root: number): Promise<Map<number, string>> {
  const snapshot = await cpuSnapshot("\0");
  const tree = new Map<number, string>();
  for (const pid of descendantsOf(root, snapshot.processes)) {
    const sample = snapshot.processes.get(pid);
    if (sample) tree.set(pid, sample.startTime);
  }
  return tree;
}

/** How many of `tree`'s processes still run. */
export async function stillRunning(tree: Map<number, string>): Promise<number> {
  const alive = await Promise.all(
    [...tree].map(async ([pid, startTime]) => (await sampleProcess(pid))?.startTime === startTime),
  );
  return alive.filter(Boolean).length;
}

/** Processes whose command line carries `marker`. */
export async function markedProcesses(marker: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const marked = await Promise.all(
    pids.map(async (pid) =>
      (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes(marker)
        ? pid
        : undefined,
    ),
  );
  return marked.filter((pid) => pid !== undefined);
}

/** The control group of a process in the cpu hierarchy (v1 `cpu`, else the v2 path). */
export async function cpuCgroupOf(pid: number): Promise<string | undefined> {
  try {
    const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).split("\n");
    const v1 = lines.find((line) => line.split(":")[1]?.split(",").includes("cpu"));
    const v2 = lines.find((line) => line.startsWith("0::"));
    return (v1 ?? v2)?.split(":").slice(2).join(":");
  } catch {
    return undefined;
  }
}
