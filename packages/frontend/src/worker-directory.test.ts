import { createMemoryInfrastructure, type Infrastructure } from "@gust/bus";
import { encode, functionKey, type FunctionRecord, type WorkerHeartbeat } from "@gust/protocol";
import { createLogger } from "@gust/telemetry";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { rendezvousScore, WorkerDirectory } from "./worker-directory.js";

const fn = (name: string, memoryMb = 128, revisionId = "rev-1"): FunctionRecord => ({
  tenantId: "t",
  accountId: "111111111111",
  name,
  functionArn: `arn:aws:lambda:us-east-1:111111111111:function:${name}`,
  runtime: "nodejs20.x",
  handler: "index.handler",
  description: "",
  role: "",
  timeoutSec: 3,
  memoryMb,
  environment: {},
  codeSha256: "sha",
  codeSize: 1,
  revisionId,
  lastModified: "2026-01-01T00:00:00.000+0000",
});

let seq = 0;
function heartbeat(workerId: string, overrides: Partial<WorkerHeartbeat> = {}): Uint8Array {
  return encode({
    type: "worker.heartbeat",
    workerId,
    seq: ++seq,
    sentAt: Date.now() + seq,
    intervalMs: 1000,
    capacity: { sandboxes: 10, memoryMb: 10_240 },
    used: { sandboxes: 0, memoryMb: 0 },
    warm: [],
    draining: false,
    ...overrides,
  });
}

let infra: Infrastructure;
let clock: number;
let directory: WorkerDirectory;
beforeEach(() => {
  infra = createMemoryInfrastructure({ logger: createLogger("t", { level: "silent" }) });
  clock = 1_000_000;
  directory = new WorkerDirectory(infra.bus, createLogger("t", { level: "silent" }), {
    missedHeartbeatLimit: 3,
    frontendId: "fe-test",
    now: () => clock,
  });
});
afterEach(async () => {
  directory.stop();
  await infra.close();
});

describe("WorkerDirectory", () => {
  it("ranks a function's home the same way on every frontend and moves few functions when a worker joins", () => {
    const ids = ["w1", "w2", "w3", "w4", "w5"];
    for (const id of ids) directory.onHeartbeat(heartbeat(id));
    const homes = new Map<string, string>();
    for (let i = 0; i < 200; i++) homes.set(`f${i}`, directory.candidates(fn(`f${i}`), 1)[0]!);
    // Spread: every worker is home to some functions.
    expect(new Set(homes.values()).size).toBe(5);

    const other = new WorkerDirectory(infra.bus, createLogger("t", { level: "silent" }), {
      missedHeartbeatLimit: 3,
      frontendId: "fe-test",
      now: () => clock,
    });
    for (const id of [...ids].reverse()) other.onHeartbeat(heartbeat(id));
    other.onHeartbeat(heartbeat("w6"));
    let moved = 0;
    for (const [name, home] of homes) {
      const now = other.candidates(fn(name), 1)[0];
      if (now !== home) {
        moved++;
        expect(now).toBe("w6");
      }
    }
    // About 1/6 of functions move to the newcomer; none move between old workers.
    expect(moved).toBeGreaterThan(10);
    expect(moved).toBeLessThan(70);
  });

  it("puts workers with an idle warm sandbox of the revision first", () => {
    const target = fn("hot");
    for (const id of ["w1", "w2", "w3"]) directory.onHeartbeat(heartbeat(id));
    const [home] = directory.candidates(target, 3);
    const warm = ["w1", "w2", "w3"].find((id) => id !== home)!;
    directory.onHeartbeat(
      heartbeat(warm, {
        warm: [{ functionKey: functionKey("t", "hot"), revisionId: "rev-1", idle: 1, total: 1 }],
      }),
    );
    expect(directory.candidates(target, 3)[0]).toBe(warm);
    expect(directory.candidates(fn("hot", 128, "rev-2"), 3)[0]).toBe(home);
    // Once claimed, the warm sandbox is no longer idle as far as this frontend knows.
    const claim = directory.claim(warm, target);
    expect(directory.candidates(target, 3)[0]).toBe(home);
    directory.release(claim);
    expect(directory.candidates(target, 3)[0]).toBe(warm);
  });

  it("spreads a burst between heartbeats by counting what it sent", () => {
    directory.onHeartbeat(heartbeat("w1", { capacity: { sandboxes: 2, memoryMb: 10_240 } }));
    directory.onHeartbeat(heartbeat("w2", { capacity: { sandboxes: 2, memoryMb: 10_240 } }));
    const target = fn("burst");
    const chosen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const [first] = directory.candidates(target, 1);
      chosen.push(first!);
      directory.claim(first!, target);
    }
    expect(chosen.filter((id) => id === "w1")).toHaveLength(2);
    expect(chosen.filter((id) => id === "w2")).toHaveLength(2);
    // Everything looks full: only the home worker is offered, to have the final word.
    expect(directory.candidates(target, 3)).toHaveLength(1);
    // A heartbeat is the worker's own account and replaces the local counts.
    directory.onHeartbeat(heartbeat("w1", { capacity: { sandboxes: 2, memoryMb: 10_240 } }));
    expect(directory.candidates(target, 3)).toContain("w1");
  });

  it("respects memory as well as sandbox slots", () => {
    directory.onHeartbeat(
      heartbeat("small", {
        capacity: { sandboxes: 10, memoryMb: 1024 },
        used: { sandboxes: 1, memoryMb: 900 },
      }),
    );
    directory.onHeartbeat(heartbeat("large", { capacity: { sandboxes: 10, memoryMb: 8192 } }));
    expect(directory.candidates(fn("needs-512", 512), 3)).toEqual(["large"]);
  });

  it("counts idle warm sandboxes, which a worker stops to make room, as room", () => {
    const full = {
      capacity: { sandboxes: 2, memoryMb: 1024 },
      used: { sandboxes: 2, memoryMb: 1024 },
    };
    directory.onHeartbeat(heartbeat("busy", full));
    directory.onHeartbeat(
      heartbeat("idle", {
        ...full,
        warm: [{ functionKey: functionKey("t", "other"), revisionId: "r", idle: 2, total: 2 }],
      }),
    );
    directory.onHeartbeat(heartbeat("fresh", { capacity: { sandboxes: 2, memoryMb: 1024 } }));
    const target = fn("newcomer", 512);
    expect(directory.candidates(target, 3).sort()).toEqual(["fresh", "idle"]);
  });

  it("drops workers that are silent, draining or gone, and ignores stale heartbeats", async () => {
    directory.start();
    infra.bus.publish("gust.v1.worker.heartbeat", heartbeat("a", { intervalMs: 100 }));
    infra.bus.publish("gust.v1.worker.heartbeat", heartbeat("b"));
    infra.bus.publish("gust.v1.worker.heartbeat", heartbeat("c"));
    await infra.bus.flush();
    expect(directory.workerIds()).toEqual(["a", "b", "c"]);

    clock += 301;
    expect(directory.workerIds()).toEqual(["b", "c"]);

    infra.bus.publish("gust.v1.worker.gone", encode({ type: "worker.gone", workerId: "b" }));
    infra.bus.publish("gust.v1.worker.heartbeat", heartbeat("c", { draining: true }));
    await infra.bus.flush();
    expect(directory.workerIds()).toEqual(["c"]);
    expect(directory.liveCount()).toBe(0);
    expect(directory.candidates(fn("x"), 3)).toEqual([]);

    // A heartbeat older than the one held changes nothing.
    directory.onHeartbeat(
      encode({
        type: "worker.heartbeat",
        workerId: "c",
        seq: 0,
        sentAt: 0,
        intervalMs: 1000,
        capacity: { sandboxes: 1, memoryMb: 1024 },
        used: { sandboxes: 0, memoryMb: 0 },
        warm: [],
        draining: false,
      }),
    );
    expect(directory.liveCount()).toBe(0);
  });

  it("does not take its own stalled event loop for silent workers", async () => {
    directory.start();
    infra.bus.publish("gust.v1.worker.heartbeat", heartbeat("a", { intervalMs: 100 }));
    await infra.bus.flush();
    // This process is held up for 2 s (e.g. spawning 200 sandboxes at once):
    // the worker's heartbeats are waiting unread, and nothing is judged on
    // demand while the timer is overdue...
    clock += 2_000;
    expect(directory.workerIds()).toEqual(["a"]);
    // ...nor by the timer, which fires first once the loop runs again.
    directory.pruneTick();
    expect(directory.workerIds()).toEqual(["a"]);
    // A worker that then stays silent is still dropped.
    clock += 250;
    directory.pruneTick();
    clock += 250;
    directory.pruneTick();
    expect(directory.workerIds()).toEqual([]);
  });

  it("scores deterministically", () => {
    expect(rendezvousScore("w1", "t/f")).toBe(rendezvousScore("w1", "t/f"));
    expect(rendezvousScore("w1", "t/f")).not.toBe(rendezvousScore("w2", "t/f"));
  });
});
