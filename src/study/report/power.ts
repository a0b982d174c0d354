// What a paired design can detect: the minimum detectable difference (MDE) of a paired t design from the observed
// spread of the paired differences, and the smallest p an exact sign-flip test can reach with n pairs.
import { std, studentTQuantile } from "../stats";

export interface MdeOptions {
  /** Two-sided significance level; default 0.05. */
  alpha?: number;
  /** Power; default 0.8. */
  power?: number;
}

/**
 * Minimum detectable difference of a paired design with n pairs whose differences have standard deviation `sd`:
 * (t_{1 − α/2, n−1} + t_{power, n−1}) · sd / √n. NaN when it cannot be estimated (n < 2, or sd not finite or 0:
 * with identical differences the observed spread says nothing about the next study's).
 */
export function minimumDetectableDifference(sd: number, n: number, options: MdeOptions = {}): number {
  const alpha = options.alpha ?? 0.05,
    power = options.power ?? 0.8;
  if (!(alpha > 0 && alpha < 1)) throw new Error(`minimumDetectableDifference: alpha must be in (0, 1), got ${alpha}`);
  if (!(power > 0 && power < 1)) throw new Error(`minimumDetectableDifference: power must be in (0, 1), got ${power}`);
  if (!Number.isInteger(n) || n < 2 || !Number.isFinite(sd) || sd <= 0) return NaN;
  const df = n - 1;
  return ((studentTQuantile(1 - alpha / 2, df) + studentTQuantile(power, df)) * sd) / Math.sqrt(n);
}

/** The MDE of paired differences (see minimumDetectableDifference), from the differences themselves. */
export function pairedMde(differences: readonly number[], options: MdeOptions = {}): number {
  const d = differences.filter((v) => Number.isFinite(v));
  return d.length < 2 ? NaN : minimumDetectableDifference(std(d), d.length, options);
}

/** The fields of a comparison row (compare.ts) a power sentence needs. */
export interface PowerRow {
  model: string;
  labelFraction: number;
  n: number;
  mde: number;
  minP: number;
}

/**
 * One sentence on the power of the paired comparisons: the unit, the detectable difference per (model, fraction) and
 * the smallest p the exact sign-flip test can reach with its pairs, saying when that floor is not below alpha.
 */
export function powerNote(
  rows: readonly PowerRow[],
  options: { a: string; b: string; names?: Record<string, string>; alpha?: number; unit?: string; models?: boolean },
): string | undefined {
  const alpha = options.alpha ?? 0.05;
  const na = options.names?.[options.a] ?? options.a,
    nb = options.names?.[options.b] ?? options.b;
  const withPairs = rows.filter((r) => r.n > 0);
  if (withPairs.length === 0) return undefined;
  const pct = (f: number) => `${Number((f * 100).toPrecision(3))}%`;
  const where = (r: PowerRow) => `${options.models ? `${r.model} at ` : ""}${pct(r.labelFraction)} labels`;
  const parts = withPairs.map((r) => {
    const floor = `smallest exact p ${Number(r.minP.toPrecision(3))}${r.minP >= alpha ? ` (cannot go below ${alpha})` : ""}`;
    const mde = Number.isFinite(r.mde)
      ? `detects ${r.mde.toFixed(3)} ${options.unit ?? "Dice"}`
      : `no detectable difference can be estimated (${r.n < 2 ? "fewer than 2 pairs" : "the differences have no spread"})`;
    return `${where(r)}: ${r.n} ${r.n === 1 ? "pair" : "pairs"}, ${mde}, ${floor}`;
  });
  const blind = withPairs.filter((r) => r.minP >= alpha);
  return (
    `Power: the unit of each paired test of ${na} vs ${nb} is the seed (one pair = the two runs with the same model, ` +
    `label fraction and seed). The detectable difference is the smallest true mean difference a paired t test at ` +
    `alpha ${alpha} (two-sided) finds with 80 % power given the observed SD of the paired differences, ` +
    `(t(${1 - alpha / 2}, n−1) + t(0.8, n−1)) · SD / √n; the exact sign-flip test cannot give p below 2 / 2^n with n pairs. ` +
    `${parts.join("; ")}.` +
    (blind.length
      ? ` ${blind.length === withPairs.length ? "No" : "Not every"} comparison can reach p < ${alpha} with these ` +
        `pairs whatever the data (at least ${Math.floor(1 - Math.log2(alpha)) + 1} pairs are needed), so ` +
        `${blind.length === withPairs.length ? "every" : "their"} verdict can only be 'no significant difference'.`
      : "")
  );
}
