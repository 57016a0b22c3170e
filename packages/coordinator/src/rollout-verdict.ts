/**
 * The rule that judges one function in a runtime rollout, from its outcome
 * counts on the old and the new version.
 *
 * A failure is anything but success: a handled or unhandled function error,
 * a timeout, a crash, an init error. The question is whether the new
 * version's failure rate is higher than the old one's for the same function,
 * which a one-sided two-proportion z-test answers (pooled standard error):
 *
 *   p = (f_old + f_new) / (n_old + n_new)
 *   z = (f_new/n_new − f_old/n_old) / sqrt(p (1 − p) (1/n_old + 1/n_new))
 *
 * *incompatible* when z > zCritical (default 2.326: a 1% chance of judging a
 * function incompatible when the new version is no worse) and the rate rose
 * by at least minRateIncrease (default 0.05, so that a tiny but real rise on
 * huge traffic is not reported as breakage); *compatible* otherwise. Neither
 * until both versions ran the function minSamples times: a function with
 * too little traffic stays pending.
 *
 * A function whose every new-version invocation failed while the old version
 * succeeded at least once is judged as soon as the new side has minSamples,
 * even with few old samples: no plausible old failure rate explains that.
 */
import { failuresOf, totalOf, Verdicts, type FunctionProgress, type Verdict } from "@gust/registry";

export interface VerdictRuleOptions {
  /** @default DEFAULT_Z_CRITICAL */
  zCritical?: number;
  /** @default DEFAULT_MIN_RATE_INCREASE */
  minRateIncrease?: number;
}

/** One-sided, α = 0.01. */
export const DEFAULT_Z_CRITICAL = 2.326;
export const DEFAULT_MIN_RATE_INCREASE = 0.05;

export interface VerdictRule {
  zCritical: number;
  minRateIncrease: number;
}

export function resolveVerdictRule(options: VerdictRuleOptions = {}): VerdictRule {
  return {
    zCritical: options.zCritical ?? DEFAULT_Z_CRITICAL,
    minRateIncrease: options.minRateIncrease ?? DEFAULT_MIN_RATE_INCREASE,
  };
}

export interface Judgement {
  verdict: Verdict;
  z: number;
  reason: string;
}

/** The one-sided two-proportion z statistic; 0 when there is no variance to speak of. */
export function twoProportionZ(fOld: number, nOld: number, fNew: number, nNew: number): number {
  if (nOld === 0 || nNew === 0) return 0;
  const pooled = (fOld + fNew) / (nOld + nNew);
  const variance = pooled * (1 - pooled) * (1 / nOld + 1 / nNew);
  if (variance <= 0) return 0;
  return (fNew / nNew - fOld / nOld) / Math.sqrt(variance);
}

const percent = (rate: number): string => `${(rate * 100).toFixed(1)}%`;

/** The verdict on one function, or undefined while it lacks samples. */
export function judge(
  progress: FunctionProgress,
  minSamples: number,
  rule: VerdictRule,
): Judgement | undefined {
  const nOld = totalOf(progress.old.counts);
  const nNew = totalOf(progress.new.counts);
  const fOld = failuresOf(progress.old.counts);
  const fNew = failuresOf(progress.new.counts);
  if (nNew < minSamples) return undefined;
  const allNewFailed = fNew === nNew && fOld < nOld;
  if (nOld < minSamples && !allNewFailed) return undefined;
  const z = twoProportionZ(fOld, nOld, fNew, nNew);
  const rateOld = nOld === 0 ? 0 : fOld / nOld;
  const rateNew = fNew / nNew;
  const rates = `failure rate ${percent(rateNew)} on the new version (${fNew}/${nNew}) against ${percent(rateOld)} on the old (${fOld}/${nOld})`;
  const worse = rateNew - rateOld >= rule.minRateIncrease && (z > rule.zCritical || allNewFailed);
  if (worse) {
    const types = Object.entries(progress.new.errorTypes)
      .sort(([, a], [, b]) => b - a)
      .map(([type, count]) => `${type} ×${count}`)
      .join(", ");
    return {
      verdict: Verdicts.incompatible,
      z,
      reason: `${rates}, z = ${z.toFixed(2)}${types === "" ? "" : `; errors: ${types}`}`,
    };
  }
  return { verdict: Verdicts.compatible, z, reason: `${rates}, z = ${z.toFixed(2)}` };
}
