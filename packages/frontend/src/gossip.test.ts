import { MemoryBus, type Bus, type BusStatus } from "@gust/bus";
import { encodeRecord, Subjects, type FunctionRecord } from "@gust/protocol";
import type { Tenant } from "@gust/registry";
import { createLogger } from "@gust/telemetry";
import { DEMAND_REPORT_TYPE, reportToWire, type DemandReport } from "@gust/admission";
import { afterEach, describe, expect, it, vi } from "vitest";
import { acquire, type Ticket } from "./admission.js";
import { FleetAdmission } from "./admission-fleet.js";
import { GossipTransport, type Census, type GossipEndpoint } from "./gossip.js";

/**
 * Three frontends' admission and gossip on one in-memory bus, on a clock the
 * test moves: each round advances it by one gossip interval, ticks every
 * live frontend and lets the bus deliver.
 */
const INTERVAL = 100;
const TENANT: Tenant = { id: "acme", accountId: "123456789012", maxConcurrency: 100 };
const FN = { tenantId: "acme", name: "work" } as FunctionRecord;

interface Node {
  admission: FleetAdmission;
  transport: GossipTransport;
  held: Ticket[];
  alive: boolean;
}

/** A bus whose connection state the test sets, as a NATS client's would change. */
class SwitchableBus implements Bus {
  private readonly listeners = new Set<(status: BusStatus) => void>();
  constructor(private readonly inner: MemoryBus) {}
  request: Bus["request"] = (...args) => this.inner.request(...args);
  publish: Bus["publish"] = (...args) => this.inner.publish(...args);
  subscribe: Bus["subscribe"] = (...args) => this.inner.subscribe(...args);
  flush: Bus["flush"] = () => this.inner.flush();
  close: Bus["close"] = () => Promise.resolve();
  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(status: BusStatus): void {
    for (const listener of this.listeners) listener(status);
  }
}

class Fleet {
  readonly bus = new MemoryBus();
  readonly buses: SwitchableBus[] = [];
  readonly nodes: Node[] = [];
  readonly logLines: string[] = [];
  now = 1_000_000;

  /**
   * With `census`, the transports count a gone frontend's invocations as
   * workers would: the tickets it still holds (its invocations run on until
   * the test releases them).
   */
  async start(size: number, options: { census?: boolean } = {}): Promise<this> {
    const logger = createLogger("frontend", {
      level: "debug",
      write: (line) => void this.logLines.push(line),
    });
    for (let i = 0; i < size; i++) {
      const bus = new SwitchableBus(this.bus);
      const admission = new FleetAdmission(
        {
          registry: {
            onChange: () => () => true,
            list: () => Promise.resolve({ functions: [] }),
            reservedTotal: () => 0,
          },
          tenants: { list: () => [TENANT] },
          logger,
          now: () => this.now,
        },
        {
          instanceId: `fe-${i}`,
          standalone: false,
          fleetSizeHint: size,
          policy: { gossipIntervalMs: INTERVAL },
          sendLoanMessage: (message) => transport.sendLoanMessage(message),
        },
      );
      // The test ticks by hand: the timer is set far beyond the test.
      const transport = new GossipTransport(bus, admission, logger, {
        intervalMs: 3_600_000,
        standalone: false,
        now: () => this.now,
        ...(options.census ? { census: (ids: string[]) => Promise.resolve(this.census(ids)) } : {}),
      });
      await admission.start();
      transport.start();
      this.buses.push(bus);
      this.nodes.push({ admission, transport, held: [], alive: true });
    }
    await this.deliver();
    return this;
  }

  census(frontendIds: string[]): Census {
    const census = new Map<string, Map<string, number>>();
    for (const id of frontendIds) census.set(id, new Map());
    for (const node of this.nodes) {
      for (const ticket of node.held) {
        const pools = ticket.slot && census.get(ticket.slot.frontendId);
        if (pools && ticket.slot)
          pools.set(ticket.slot.pool, (pools.get(ticket.slot.pool) ?? 0) + 1);
      }
    }
    return census;
  }

  node(i: number): Node {
    const node = this.nodes[i];
    if (!node) throw new RangeError(`no frontend ${i}`);
    return node;
  }

  async deliver(): Promise<void> {
    // A delivery may cause another (a loan request's grant): flush a few times.
    for (let k = 0; k < 4; k++) await this.bus.flush();
  }

  /** One gossip interval: every live frontend ticks, then the bus delivers. */
  async round(): Promise<void> {
    this.now += INTERVAL;
    for (const node of this.nodes) if (node.alive) node.transport.tick();
    await this.deliver();
  }

  /** `rounds` intervals in which frontend i runs perRound[i] invocations, each lasting one interval. */
  async load(perRound: readonly number[], rounds: number): Promise<void> {
    for (let r = 0; r < rounds; r++) {
      this.nodes.forEach((node, i) => {
        if (!node.alive) return;
        for (const ticket of node.held.splice(0)) node.admission.release(ticket);
        for (let k = 0; k < (perRound[i] ?? 0); k++) {
          const decision = node.admission.tryAcquire(TENANT, FN);
          if (decision.kind === "ticket") node.held.push(decision);
        }
      });
      await this.round();
    }
  }

  shares(): number[] {
    return this.nodes.map((node) => node.admission.controller.localPool("acme")?.share ?? 0);
  }

  stop(): void {
    for (const node of this.nodes) node.transport.stop();
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

let fleet: Fleet | undefined;
afterEach(async () => {
  fleet?.stop();
  await fleet?.bus.close();
  fleet = undefined;
});

describe("gossip between frontends on one bus", () => {
  it("splits the tenant's limit by the traffic each frontend sees, and follows a shift", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([58, 11, 3], 25);
    let shares = fleet.shares();
    expect(sum(shares)).toBeLessThanOrEqual(100);
    expect(shares[0]).toBeGreaterThanOrEqual(65);
    expect(shares[2]).toBeLessThanOrEqual(12);
    expect(fleet.node(0).admission.controller.peerCount).toBe(2);

    await fleet.load([3, 11, 58], 15);
    shares = fleet.shares();
    expect(sum(shares)).toBeLessThanOrEqual(100);
    expect(shares[2]).toBeGreaterThanOrEqual(65);
    expect(shares[0]).toBeLessThanOrEqual(12);
  });

  it("hands a silent frontend's share back to the others once it expires", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([30, 30, 30], 20);
    expect(fleet.shares()[0]).toBeLessThan(40);
    const silent = fleet.node(2);
    silent.transport.stop();
    silent.alive = false;
    // Expiry after 5 silent intervals, then the shares settle within a few more.
    await fleet.load([30, 30, 0], 10);
    expect(fleet.node(0).admission.controller.peerCount).toBe(1);
    const [first, second] = fleet.shares();
    expect(first! + second!).toBe(100);
  });

  it("drops a frontend that is gone within two intervals, long before it would expire", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([30, 30, 30], 20);
    const gone = fleet.node(2);
    gone.transport.stop(); // its connection closed: nobody answers on its subjects
    gone.alive = false;
    await fleet.load([30, 30, 0], 3);
    // Expiry alone would take more than 5 intervals.
    expect(fleet.node(0).admission.controller.peerCount).toBe(1);
    expect(fleet.node(1).admission.controller.peerCount).toBe(1);
    expect(fleet.logLines.some((line) => line.includes("a peer frontend is gone"))).toBe(true);
  });

  it("counts what a gone frontend left running with a worker census, and frees it as it ends", async () => {
    fleet = await new Fleet().start(3, { census: true });
    await fleet.load([30, 30, 30], 20);
    const gone = fleet.node(2);
    const leftRunning = gone.held.length;
    expect(leftRunning).toBeGreaterThan(20);
    gone.transport.stop();
    gone.alive = false;
    // Its invocations run on for many intervals: the survivors keep exactly
    // them counted, long past any estimate from the mean execution.
    await fleet.load([30, 30, 0], 10);
    expect(fleet.node(0).admission.controller.peerCount).toBe(1);
    expect(fleet.node(0).admission.controller.ghostHolders()).toEqual(["fe-2"]);
    expect(fleet.shares()[0]! + fleet.shares()[1]! + leftRunning).toBeLessThanOrEqual(100);
    // They end: the next census frees their slots.
    gone.held.splice(0);
    await fleet.load([30, 30, 0], 3);
    expect(fleet.node(0).admission.controller.ghostHolders()).toEqual([]);
    expect(fleet.shares()[0]! + fleet.shares()[1]!).toBe(100);
  });

  it("keeps a live frontend whose reports are lost: it answers the probe", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([30, 30, 30], 20);
    const quiet = fleet.node(2);
    quiet.alive = false; // no reports for three intervals, but still listening
    await fleet.load([30, 30, 0], 3);
    expect(fleet.node(0).admission.controller.peerCount).toBe(2);
    quiet.alive = true;
    await fleet.load([30, 30, 30], 3);
    expect(fleet.node(0).admission.controller.peerCount).toBe(2);
    expect(sum(fleet.shares())).toBeLessThanOrEqual(100);
  });

  it("ignores garbage on the gossip subjects, logging each sender at most once a minute", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([58, 11, 3], 20);
    const before = fleet.shares();
    const junk: Uint8Array[] = [
      new Uint8Array([0xc1, 0xff, 0x00]),
      encodeRecord({ hello: "world" }),
      encodeRecord({ type: "admission.demand", frontendId: "mallory", seq: "one", pools: 7 }),
      encodeRecord({ type: "admission.demand", frontendId: "fe-1", seq: 1e9, pools: "x" }),
    ];
    for (let twice = 0; twice < 2; twice++) {
      for (const data of junk) fleet.bus.publish(Subjects.gossipDemand, data);
      fleet.bus.publish(Subjects.gossipLoan("fe-0"), new Uint8Array([0x93, 0x01]));
      fleet.bus.publish(
        Subjects.gossipLoan("fe-0"),
        encodeRecord({ type: "admission.loan.grant", from: "ghost", to: "fe-0" }),
      );
    }
    await fleet.load([58, 11, 3], 5);
    const after = fleet.shares();
    expect(sum(after)).toBeLessThanOrEqual(100);
    after.forEach((share, i) => expect(Math.abs(share - (before[i] ?? 0))).toBeLessThanOrEqual(5));
    expect(fleet.node(0).admission.controller.peerCount).toBe(2);
    const ignored = fleet.logLines.filter((line) => line.includes('"message":"ignoring'));
    const fromMallory = ignored.filter((line) => line.includes('"sender":"mallory"'));
    // Three frontends heard mallory twice each: one line per frontend.
    expect(fromMallory).toHaveLength(3);
    expect(ignored.some((line) => line.includes("does not decode"))).toBe(true);
    expect(fleet.logLines.some((line) => line.includes('"level":"error"'))).toBe(false);
  });

  it("falls back to the conservative share while cut off, publishes nothing, and recovers", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([58, 11, 3], 20);
    expect(fleet.shares()[0]).toBeGreaterThanOrEqual(65);
    let published = 0;
    fleet.bus.subscribe(Subjects.gossipDemand, () => void published++);
    for (const bus of fleet.buses) bus.emit("disconnected");
    for (const node of fleet.nodes) {
      expect(node.admission.controller.mode(fleet.now)).toBe("disconnected");
    }
    // Never the whole limit: T / the last known fleet size.
    expect(fleet.shares()).toEqual([33, 33, 33]);
    await fleet.load([58, 11, 3], 5);
    expect(published).toBe(0);
    expect(fleet.shares()).toEqual([33, 33, 33]);

    for (const bus of fleet.buses) bus.emit("reconnected");
    expect(fleet.node(0).admission.controller.mode(fleet.now)).toBe("rejoining");
    expect(fleet.shares()[0]).toBeLessThanOrEqual(33);
    await fleet.load([58, 11, 3], 15);
    expect(published).toBeGreaterThan(0);
    expect(fleet.node(0).admission.controller.mode(fleet.now)).toBe("gossip");
    expect(fleet.shares()[0]).toBeGreaterThanOrEqual(65);
    expect(sum(fleet.shares())).toBeLessThanOrEqual(100);
  });

  it("borrows a slot from an idle peer over the bus when its own share is used up", async () => {
    fleet = await new Fleet().start(3);
    await fleet.load([70, 0, 0], 25);
    const busy = fleet.node(0);
    const share = busy.admission.controller.localPool("acme")!.share;
    expect(share).toBeLessThan(100);
    // Fill the share, then one more: the controller asks a peer for a loan.
    while (busy.held.length < share) {
      const decision = busy.admission.tryAcquire(TENANT, FN);
      if (decision.kind !== "ticket") throw new Error("admitted fewer than the share");
      busy.held.push(decision);
    }
    const decision = await acquire(busy.admission, TENANT, FN);
    expect(decision.kind).toBe("ticket");
    expect(busy.transport.sent.loanMessages).toBeGreaterThan(0);
    const lenders = fleet.nodes.slice(1).map((node) => node.admission.snapshot("acme")!);
    expect(lenders.some((snapshot) => snapshot.unreserved.lent > 0)).toBe(true);
  });

  it("answers reports with a report at the next check for two intervals after a peer is found gone", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });
    const bus = new MemoryBus();
    let clock = 1_000_000;
    const published: number[] = [];
    let late = ["fe-gone"];
    const report = (frontendId: string, seq: number): DemandReport => ({
      type: DEMAND_REPORT_TYPE,
      frontendId,
      seq,
      intervalMs: 400,
      acks: [],
      loansSettledThrough: 0,
      pools: [],
    });
    const endpoint: GossipEndpoint = {
      instanceId: "fe-0",
      demandReport: (now) => {
        published.push(now);
        return report("fe-0", published.length);
      },
      receiveReport: () => true,
      receiveLoanMessage: () => undefined,
      connectivity: () => undefined,
      latePeers: () => late,
      peerGone: () => {
        late = [];
        return true;
      },
      releaseGhosts: () => false,
      ghostHolders: () => [],
      knownFrontends: () => ["fe-0"],
      applyCensus: () => false,
    };
    const transport = new GossipTransport(
      bus,
      endpoint,
      createLogger("test", { level: "silent" }),
      {
        intervalMs: 400,
        standalone: false,
        now: () => clock,
      },
    );
    const advance = async (ms: number) => {
      clock += ms;
      await vi.advanceTimersByTimeAsync(ms);
      for (let k = 0; k < 3; k++) await bus.flush();
    };
    const hear = async (seq: number) => {
      bus.publish(Subjects.gossipDemand, encodeRecord(reportToWire(report("fe-1", seq))));
      await bus.flush();
    };
    try {
      transport.start();
      // The first check probes the late peer; nobody answers: it is gone, and
      // the transport reports at once.
      await advance(100);
      expect(published).toHaveLength(1);
      // A peer's report is answered at the next check, not at the next tick.
      await hear(1);
      await advance(100);
      expect(published).toHaveLength(2);
      // Nothing heard, nothing answered; the tick (at 400 ms) reports as always.
      await advance(100);
      expect(published).toHaveLength(2);
      await advance(100);
      expect(published).toHaveLength(3);
      await hear(2);
      await advance(100);
      expect(published).toHaveLength(4);
      // Two intervals after the peer was found gone, reports go out at the ticks only.
      await advance(500);
      const before = published.length;
      await hear(3);
      await advance(100);
      expect(published).toHaveLength(before);
    } finally {
      transport.stop();
      await bus.close();
      vi.useRealTimers();
    }
  });
});
