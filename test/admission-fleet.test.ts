/**
 * Fleet-wide admission on a real nats-server: three frontends (two in this
 * process, each with its own NATS connection, and one `gust frontend`
 * process, the one the last test kills), one worker with real sandboxes, one
 * tenant with a small maximum concurrency.
 *
 * The handler reports when it started and ended (wall clock, the same on
 * every process of this machine) in its response, so the test can count how
 * many invocations ran at once across the whole fleet, whichever frontend
 * admitted them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectNatsInfrastructure, startNatsServer, type Infrastructure } from "@gust/bus";
import type { NatsServerHandle } from "@gust/bus";
import { zipFiles } from "@gust/bundle";
import {
  closeAll,
  fetchFleetStatus,
  spawnGust,
  formatFleetStatus,
  startCoordinatorService,
  startFrontendService,
  startWorkerService,
  type FrontendService,
  type Service,
} from "@gust/cli";
import type { ConcurrencyReport } from "@gust/frontend";
import { CreateFunctionCommand } from "@aws-sdk/client-lambda";
import { readTenantKeyFile, writeTenantKeyFile, type TenantKeyring } from "@gust/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lambdaFor } from "./support/lambda.js";
import { signedFetch } from "./support/signed-fetch.js";
import { testTenant } from "./support/tenants.js";

const M = 20;
const ADMIN_TOKEN = "fleet-admin-token-for-tests-only";
const tenant = testTenant("skewed", M);
/** 80/15/5 of the clients, over the three frontends. */
const SKEW = [24, 4, 2] as const;
const SLEEP_MS = 250;
/** The handler's sleep while a frontend is killed. */
const KILL_SLEEP_MS = 20;
/**
 * The frontends' gossip interval: the longest DESIGN.md allows (250 ms), so
 * that "within 3 intervals" is measured against timers that a loaded CI
 * machine may run tens of milliseconds late (at the 100 ms default the
 * same test measured 65–180 ms on a quiet machine).
 */
const GOSSIP_INTERVAL_MS = 250;

const HANDLER = `
exports.handler = async (event) => {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, event.sleepMs ?? 0));
  return { start, end: Date.now() };
};
`;

interface Member {
  id: string;
  url: string;
  alive: boolean;
  /** Gone at once, as a crash would take it: no drain, no goodbye. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

let nats: NatsServerHandle;
/** The fleet's tenant key: for the coordinator and every frontend, in process or not. */
let keyDir: string | undefined;
let tenantKeyFile: string;
let tenantKeyring: TenantKeyring;
const infras: Infrastructure[] = [];
const services: Service[] = [];
const frontends: Member[] = [];

async function connect(name: string): Promise<Infrastructure> {
  const infra = await connectNatsInfrastructure({ servers: nats.url, name });
  infras.push(infra);
  return infra;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function admin(member: Member): Promise<ConcurrencyReport> {
  const response = await fetch(`${member.url}/gust/admin/concurrency?tenant=skewed`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (response.status !== 200)
    throw new Error(`admin: ${response.status} ${await response.text()}`);
  return (await response.json()) as ConcurrencyReport;
}

/** The unreserved pool of the tenant, as one frontend sees it. */
async function pool(member: Member) {
  const report = await admin(member);
  const snapshot = report.tenants[0];
  if (!snapshot) throw new Error(`${member.id} does not know the tenant`);
  return { mode: report.mode, instanceId: report.instanceId, ...snapshot.unreserved };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  pollMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

interface LoadResult {
  intervals: Array<[number, number]>;
  admitted: number[];
  throttled: number;
  errors: string[];
  retryAfterSeen: boolean;
}

/** Closed-loop clients per frontend, each invoking the sleeper; a throttled client waits a little. */
async function runLoad(
  clients: readonly number[],
  durationMs: number,
  sleepMs = SLEEP_MS,
): Promise<LoadResult> {
  const result: LoadResult = {
    intervals: [],
    admitted: clients.map(() => 0),
    throttled: 0,
    errors: [],
    retryAfterSeen: false,
  };
  const deadline = Date.now() + durationMs;
  const body = JSON.stringify({ sleepMs });
  const client = async (index: number) => {
    const member = frontends[index]!;
    while (Date.now() < deadline && member.alive) {
      const response = await signedFetch(
        member.url,
        tenant,
        "POST",
        "/2015-03-31/functions/sleeper/invocations",
        body,
      ).catch((error: unknown) => ({ status: 0, body: String(error), headers: new Headers() }));
      if (response.status === 200) {
        const { start, end } = JSON.parse(response.body) as { start: number; end: number };
        result.intervals.push([start, end]);
        result.admitted[index]!++;
      } else if (response.status === 429) {
        result.throttled++;
        if (response.headers.get("retry-after") !== null) result.retryAfterSeen = true;
        await sleep(40 + Math.random() * 40);
      } else {
        if (member.alive) result.errors.push(`${response.status} ${response.body}`);
        await sleep(50);
      }
    }
  };
  await Promise.all(
    clients.flatMap((count, index) => Array.from({ length: count }, () => client(index))),
  );
  return result;
}

/**
 * The most invocations running at once. Each interval is trimmed by 2 ms at
 * both ends so that clock granularity (ms) between processes cannot make
 * one invocation's end and the next one's start in the same slot overlap.
 */
function maxOverlap(intervals: Array<[number, number]>, trimMs = 2): number {
  const events: Array<[number, number]> = [];
  for (const [start, end] of intervals) {
    if (end - start <= 2 * trimMs) continue;
    events.push([start + trimMs, 1], [end - trimMs, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let peak = 0;
  for (const [, delta] of events) {
    running += delta;
    peak = Math.max(peak, running);
  }
  return peak;
}

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
  keyDir = await mkdtemp(join(tmpdir(), "gust-admission-fleet-"));
  tenantKeyFile = join(keyDir, "tenant.key");
  await writeTenantKeyFile(tenantKeyFile);
  tenantKeyring = await readTenantKeyFile(tenantKeyFile);
  services.push(
    await startCoordinatorService(await connect("coordinator"), {
      tenants: [tenant],
      tenantKeyring,
    }),
  );
  services.push(
    await startWorkerService(await connect("worker"), {
      maxSandboxes: 40,
      preinitializedPoolSize: 4,
      // What is measured here is admission; this worker shares the test's event loop, where a
      // jail's per-slot network set-up (a few `ip` runs each) would delay the census it answers.
      // Jails are tested in test/hostile-tenant.test.ts.
      jail: false,
      trustTenants: true,
    }),
  );
  for (const id of ["fe1", "fe2", "fe3"]) {
    if (id === "fe2") {
      const process = spawnGust(
        [
          "frontend",
          "--nats",
          nats.url,
          "--id",
          id,
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--gossip-interval",
          String(GOSSIP_INTERVAL_MS),
        ],
        { GUST_ADMIN_TOKEN: ADMIN_TOKEN, GUST_TENANT_KEY_FILE: tenantKeyFile },
      );
      const listening = await process.waitForLog("frontend listening", 60_000);
      frontends.push({
        id,
        url: String(listening["url"]),
        alive: true,
        kill: () => process.stop("SIGKILL"),
        close: () => process.stop(),
      });
      continue;
    }
    const service: FrontendService = await startFrontendService(await connect(id), {
      host: "127.0.0.1",
      port: 0,
      tenantKeyring,
      frontend: {
        frontendId: id,
        adminToken: ADMIN_TOKEN,
        fleetSizeHint: 3,
        admissionPolicy: { gossipIntervalMs: GOSSIP_INTERVAL_MS },
      },
    });
    frontends.push({
      id,
      url: service.url,
      alive: true,
      kill: () => service.close(),
      close: () => service.close(),
    });
  }
  const lambda = lambdaFor(frontends[0]!.url, tenant);
  try {
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: "sleeper",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/test",
        Code: { ZipFile: await zipFiles([{ path: "index.js", data: HANDLER }]) },
      }),
    );
  } finally {
    lambda.destroy();
  }
  // Every frontend hears the other two.
  for (const member of frontends) {
    await until(`${member.id} to hear its peers`, async () => {
      const report = await admin(member);
      return report.mode === "gossip" && report.peers === 2 ? true : undefined;
    });
  }
}, 120_000);

afterAll(async () => {
  for (const member of frontends) if (member.alive) await member.close();
  await closeAll(services);
  for (const infra of infras) await infra.close().catch(() => undefined);
  await nats?.stop();
  if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
}, 60_000);

describe("fleet-wide admission on NATS", () => {
  it("never runs more than M at once across three frontends under an 80/15/5 skew", async () => {
    const load = await runLoad(SKEW, 6_000);
    const peak = maxOverlap(load.intervals);
    console.log(
      `skew ${SKEW.join("/")}: ${load.intervals.length} ran, ${load.throttled} throttled, ` +
        `admitted per frontend ${load.admitted.join("/")}, peak ${peak} of M=${M}`,
    );
    expect(load.errors).toEqual([]);
    expect(peak).toBeLessThanOrEqual(M);
    // The test can fail the other way too: the fleet did fill up, and turned the rest away.
    expect(peak).toBeGreaterThanOrEqual(M - 4);
    expect(load.throttled).toBeGreaterThan(0);
    expect(load.retryAfterSeen).toBe(true);
    expect(load.admitted.every((count) => count > 0)).toBe(true);

    // gust fleet's view of it, from the busiest frontend.
    const report = await fetchFleetStatus({
      endpoint: frontends[0]!.url,
      adminToken: ADMIN_TOKEN,
    });
    const text = formatFleetStatus(report);
    console.log(text);
    expect(text).toContain(`tenant skewed: M ${M}, T ${M}`);
    for (const member of frontends) expect(text).toContain(`${member.id}-`);

    // The command itself, signing with the tenant's own credentials (no admin token).
    const cli = spawnGust(["fleet", "--endpoint", frontends[0]!.url], {
      AWS_ACCESS_KEY_ID: tenant.credentials[0]!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: tenant.credentials[0]!.secretAccessKey,
      GUST_ADMIN_TOKEN: "",
    });
    const code = await new Promise((resolve) => cli.child.once("exit", resolve));
    expect(cli.output()).toContain(`tenant skewed: M ${M}`);
    expect(code).toBe(0);
  });

  it("falls back to the conservative share while NATS restarts, and recovers", async () => {
    const modes = new Map<string, Set<string>>();
    const outageShares: number[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        await Promise.all(
          frontends.map(async (member) => {
            const seen = await pool(member).catch(() => undefined);
            if (!seen) return;
            const set = modes.get(member.id) ?? new Set<string>();
            set.add(seen.mode);
            modes.set(member.id, set);
            if (seen.mode === "disconnected") outageShares.push(seen.share);
          }),
        );
        await sleep(10);
      }
    })();
    await nats.restart();
    // Back on the bus, every frontend rejoins and gossips again.
    for (const member of frontends) {
      await until(`${member.id} to gossip again`, async () => {
        const report = await admin(member);
        return report.mode === "gossip" && report.peers === 2 ? true : undefined;
      });
    }
    watching = false;
    await watch;
    for (const member of frontends) expect(modes.get(member.id)).toContain("disconnected");
    expect(outageShares.length).toBeGreaterThan(0);
    // Never the whole limit while cut off: M / the last known fleet size.
    for (const share of outageShares) expect(share).toBe(Math.floor(M / 3));

    // Shares follow the traffic again.
    const load = runLoad(SKEW, 2_500);
    const busiest = await until("the busiest frontend's share to grow again", async () => {
      const seen = await pool(frontends[0]!);
      return seen.mode === "gossip" && seen.share > Math.floor(M / 3) ? seen.share : undefined;
    });
    const result = await load;
    expect(busiest).toBeGreaterThan(Math.floor(M / 3));
    expect(maxOverlap(result.intervals)).toBeLessThanOrEqual(M);
    expect(result.intervals.length).toBeGreaterThan(0);
  });

  it("returns a SIGKILLed frontend's share to the others within 3 gossip intervals, under load, within M", async () => {
    const victim = frontends[1]!;
    const survivors = [frontends[0]!, frontends[2]!];
    const victimView = await pool(victim);
    await until("the survivors to count the victim", async () => {
      const seen = await Promise.all(survivors.map((member) => pool(member)));
      return seen.every((view) =>
        view.frontends.some((f) => f.frontendId === victimView.instanceId),
      )
        ? true
        : undefined;
    });
    // Short executions: a killed frontend's invocations run on after it, and
    // its slots stay counted until the workers say they have ended.
    const load = runLoad(SKEW, 5_000, KILL_SLEEP_MS);
    await sleep(2_000);
    // SIGKILL: no drain, no goodbye; its reports just stop.
    victim.alive = false;
    const killedAt = Date.now();
    await victim.kill();
    // Taken back means enforced: each survivor's own part of the split (its
    // share without loans), as it admits by it, summing to the limit.
    const { gone, whole } = await until(
      "the victim's share to return to the others",
      async () => {
        const seen = await Promise.all(survivors.map((member) => pool(member)));
        const known = seen.some((view) =>
          view.frontends.some((f) => f.frontendId === victimView.instanceId),
        );
        if (known) return undefined;
        const enforced = seen.reduce(
          (sum, view) => sum + view.share + view.lent - view.borrowed,
          0,
        );
        return enforced === seen[0]!.limit
          ? { gone: true, whole: Date.now() - killedAt }
          : undefined;
      },
      10_000,
      5,
    );
    const result = await load;
    const peak = maxOverlap(result.intervals);
    console.log(
      `killed frontend's share back with the others after ${whole} ms ` +
        `(gossip interval ${GOSSIP_INTERVAL_MS} ms, expiry ${5 * GOSSIP_INTERVAL_MS} ms); peak ${peak} of M=${M}`,
    );
    expect(gone).toBe(true);
    // The survivors look for late peers four times an interval and probe one
    // whose report is 1.25 intervals late; on "no responders" they keep what
    // it may have held counted and ask every worker what of its invocations
    // still runs (a worker census), take their equal parts of what no longer
    // runs at once, and announce it; the rest follows when they hear each
    // other. Measured 295–457 ms alone, 222–469 ms with both cores busy.
    expect(whole, `share back after ${whole} ms`).toBeLessThanOrEqual(3 * GOSSIP_INTERVAL_MS + 60);
    // Only the victim's own requests failed (the load ignores those), and
    // the tenant's limit held fleet-wide throughout.
    expect(result.errors).toEqual([]);
    expect(peak, `peak ${peak}`).toBeLessThanOrEqual(M);
    expect(result.admitted[0]! + result.admitted[2]!).toBeGreaterThan(0);
  });
});
