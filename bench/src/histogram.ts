/**
 * Latency distributions that can be merged across rounds and processes:
 * counts in logarithmic buckets 1% wide (1 µs to minutes in about 2,000
 * buckets, sparse), so a percentile read from a merged histogram is within
 * 1% of the exact one. Exact percentiles of one run come from its sorted
 * samples (`percentile`); the histogram is for pooling rounds and drawing.
 */

const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);

/** The bucket whose upper edge is the first at or above `ms`. */
function bucketOf(ms: number): number {
  const us = Math.max(1, ms * 1000);
  return Math.max(0, Math.ceil(Math.log(us) / LOG_GROWTH - 1e-9));
}

/** A bucket's upper edge, in ms. */
function edgeMs(bucket: number): number {
  return GROWTH ** bucket / 1000;
}

export type HistogramPairs = Array<[bucket: number, count: number]>;

export class LatencyHistogram {
  readonly #counts = new Map<number, number>();
  #total = 0;

  get total(): number {
    return this.#total;
  }

  record(ms: number): void {
    const bucket = bucketOf(ms);
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + 1);
    this.#total++;
  }

  merge(other: LatencyHistogram): this {
    for (const [bucket, count] of other.#counts) {
      this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + count);
    }
    this.#total += other.#total;
    return this;
  }

  /** The latency at or below which `fraction` of the samples lie (bucket upper edge). */
  quantile(fraction: number): number {
    if (this.#total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(fraction * this.#total));
    let seen = 0;
    for (const bucket of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(bucket) ?? 0;
      if (seen >= rank) return edgeMs(bucket);
    }
    return edgeMs(Math.max(...this.#counts.keys()));
  }

  toPairs(): HistogramPairs {
    return [...this.#counts.entries()].sort((a, b) => a[0] - b[0]);
  }

  static fromPairs(pairs: HistogramPairs): LatencyHistogram {
    const histogram = new LatencyHistogram();
    for (const [bucket, count] of pairs) {
      histogram.#counts.set(bucket, (histogram.#counts.get(bucket) ?? 0) + count);
      histogram.#total += count;
    }
    return histogram;
  }
}

/** Nearest-rank percentile of sorted samples. */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

export function median(values: number[]): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const middle = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
}
