/**
 * The load balancer in front of the simulated frontends. It knows which
 * frontends are alive (a crashed one stops getting traffic at once: the
 * figures then isolate the admission layer's recovery from health-check
 * delay) and spreads each tenant's requests by its policy.
 */
import type { Random } from "./random.js";
import type { BalancerSpec } from "./scenarios.js";

export class LoadBalancer {
  private roundRobin = 0;
  /** Sticky clients: relative size and home frontend. */
  private readonly clientWeights: number[] = [];
  private readonly clientHomes: number[] = [];

  constructor(
    private readonly spec: BalancerSpec,
    private readonly frontends: number,
    private readonly random: Random,
  ) {
    if (spec.kind === "sticky") {
      for (let c = 0; c < spec.clients; c++) {
        this.clientWeights.push(1 / (c + 1));
        this.clientHomes.push(Math.floor(random.next() * frontends));
      }
    }
  }

  /** The frontend for the next request, or -1 when none is alive. */
  route(now: number, alive: readonly boolean[]): number {
    switch (this.spec.kind) {
      case "round-robin": {
        for (let k = 0; k < this.frontends; k++) {
          const f = this.roundRobin++ % this.frontends;
          if (alive[f]) return f;
        }
        return -1;
      }
      case "weighted": {
        const weights = this.phaseWeights(now).map((w, f) => (alive[f] ? w : 0));
        return weights.some((w) => w > 0) ? this.random.pick(weights) : -1;
      }
      case "sticky": {
        const client = this.random.pick(this.clientWeights);
        return this.home(this.clientHomes[client] ?? 0, alive);
      }
    }
  }

  /** The share of traffic each frontend gets at time t (what shares should converge to). */
  expectedSplit(now: number, alive: readonly boolean[]): number[] {
    let split: number[];
    switch (this.spec.kind) {
      case "round-robin":
        split = alive.map((a) => (a ? 1 : 0));
        break;
      case "weighted":
        split = this.phaseWeights(now).map((w, f) => (alive[f] ? w : 0));
        break;
      case "sticky":
        split = alive.map(() => 0);
        this.clientWeights.forEach((w, c) => {
          const f = this.home(this.clientHomes[c] ?? 0, alive);
          if (f >= 0) split[f] = (split[f] ?? 0) + w;
        });
        break;
    }
    const total = split.reduce((sum, w) => sum + w, 0);
    return split.map((w) => (total > 0 ? w / total : 0));
  }

  private phaseWeights(now: number): readonly number[] {
    if (this.spec.kind !== "weighted") return [];
    let weights: readonly number[] = this.spec.phases[0]?.weights ?? [];
    for (const phase of this.spec.phases) if (phase.fromMs <= now) weights = phase.weights;
    return weights;
  }

  /** A sticky client whose frontend died moves to the next live one. */
  private home(preferred: number, alive: readonly boolean[]): number {
    for (let k = 0; k < this.frontends; k++) {
      const f = (preferred + k) % this.frontends;
      if (alive[f]) return f;
    }
    return -1;
  }
}
