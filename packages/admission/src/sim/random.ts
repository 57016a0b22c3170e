/**
 * Seeded randomness for the simulator, so a run is reproducible from its
 * seed. Marsaglia's xorshift128 ("Xorshift RNGs", Journal of Statistical
 * Software 8(14), 2003): plenty for arrival processes, and tiny.
 */

export class Random {
  private x: number;
  private y: number;
  private z: number;
  private w: number;

  constructor(seed: number) {
    // Spread the seed over the four words; xorshift must not start all-zero.
    let s = (Math.floor(seed) ^ 0x5bd1e995) >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let v = s;
      v = Math.imul(v ^ (v >>> 16), 0x85ebca6b) >>> 0;
      v = Math.imul(v ^ (v >>> 13), 0xc2b2ae35) >>> 0;
      return (v ^ (v >>> 16)) >>> 0;
    };
    this.x = mix();
    this.y = mix();
    this.z = mix();
    this.w = mix() || 1;
  }

  /** Uniform on [0, 1). */
  next(): number {
    const t = (this.x ^ (this.x << 11)) >>> 0;
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    return this.w / 4294967296;
  }

  /** Exponentially distributed with the given rate (mean 1 / rate). */
  exponential(rate: number): number {
    return -Math.log(1 - this.next()) / rate;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An index drawn with probability proportional to its weight. */
  pick(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += Math.max(0, w);
    let u = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= Math.max(0, weights[i] ?? 0);
      if (u < 0) return i;
    }
    return weights.length - 1;
  }

  /** A new generator whose stream does not overlap this one's in practice. */
  fork(label: number): Random {
    return new Random(Math.floor(this.next() * 4294967296) ^ Math.imul(label + 1, 0x27d4eb2d));
  }
}
