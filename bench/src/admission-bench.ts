/**
 * `npm run bench:admission`: the cost of one admission decision (tryAdmit +
 * release on AdmissionController) with 10,000 tenants, next to a baseline
 * measured in the same run: the least any per-tenant counter costs (a Map
 * increment and decrement). Reports nanoseconds per decision and the ratio.
 */
import { AdmissionController, isTicket } from "@gust/admission";

const TENANTS = 10_000;
const DECISIONS = Number(process.env["BENCH_DECISIONS"] ?? 1_000_000);
const ROUNDS = 5;

function timeNs(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const tenantIds = Array.from({ length: TENANTS }, (_, i) => `tenant${i}`);
const controller = new AdmissionController({ frontendId: "bench", standalone: true });
for (const id of tenantIds) controller.setTenant(id, { maxConcurrency: 1000 });
let now = Date.now();

function admissions(): void {
  for (let i = 0; i < DECISIONS; i++) {
    const tenantId = tenantIds[i % TENANTS]!;
    if ((i & 1023) === 0) now += 1;
    const decision = controller.tryAdmit(tenantId, "", now);
    if (isTicket(decision)) controller.release(decision, now);
  }
}

const counts = new Map<string, number>();
function baseline(): void {
  for (let i = 0; i < DECISIONS; i++) {
    const tenantId = tenantIds[i % TENANTS]!;
    counts.set(tenantId, (counts.get(tenantId) ?? 0) + 1);
    counts.set(tenantId, (counts.get(tenantId) ?? 0) - 1);
  }
}

// Warm both up so the JIT has compiled them before anything is timed.
admissions();
baseline();
const admission: number[] = [];
const base: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  admission.push(timeNs(admissions) / DECISIONS);
  base.push(timeNs(baseline) / DECISIONS);
}
const a = median(admission);
const b = median(base);
process.stdout.write(
  [
    `admission decisions (tryAdmit + release), ${TENANTS} tenants, ${DECISIONS} per round, median of ${ROUNDS} interleaved rounds`,
    `| what | ns per decision | × baseline |`,
    `|---|---:|---:|`,
    `| Map increment + decrement (baseline) | ${b.toFixed(0)} | 1.0 |`,
    `| AdmissionController tryAdmit + release | ${a.toFixed(0)} | ${(a / b).toFixed(1)} |`,
    "",
  ].join("\n"),
);
