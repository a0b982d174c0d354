// Small numeric helpers shared across the kit, and its one 3-vector type. Plain numbers only: no tensors, no
// imports, so every layer may use them. Each helper keeps the exact arithmetic of the copies it replaced (same
// operations in the same order), so results stay bit-identical.

/** A 3-vector: a [D, H, W] shape, spacing, window, stride or padding, or an (x, y, z) point in mm. */
export type Vec3 = [number, number, number];

/** [n, n, n]. */
export function cube(n: number): Vec3 {
  return [n, n, n];
}

/** Product of the entries, left to right (1 for an empty list): the element count of a shape. */
export function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Median: the middle value, or the mean of the two middle values (unless equal); NaN when empty. Infinity is fine. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const xs = [...values].sort((a, b) => a - b);
  const h = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[h] : xs[h - 1] === xs[h] ? xs[h] : (xs[h - 1] + xs[h]) / 2;
}

/** Lower median: the middle value, the lower of the two for an even count (a value that was measured: timings). */
export function lowerMedian(values: readonly number[]): number {
  const xs = [...values].sort((a, b) => a - b);
  return xs[(xs.length - 1) >> 1];
}

/**
 * Percentile q in [0, 100] of values sorted ascending, interpolating linearly between order statistics (numpy's
 * default, R's type 7); NaN when empty.
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The q-quantile, q in [0, 1] (clamped), of values sorted ascending: the same rule as percentileSorted with q as a
 * fraction. The position is computed as (n - 1) * q, which can differ from percentileSorted(sorted, 100 * q) in the
 * last bit; keep whichever one a result was produced with.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Box-Muller radius sqrt(-2 ln u) from one uniform draw u (redrawn while u <= 1e-12, so the log stays finite). With
 * an angle a = 2 pi * (next uniform), r cos a and r sin a are two independent standard normals.
 */
export function gaussianRadius(rng: () => number): number {
  let u = rng();
  while (u <= 1e-12) u = rng();
  return Math.sqrt(-2 * Math.log(u));
}

/** Adds N(0, std^2) noise to x in place, two normals per pair of uniform draws (Box-Muller, both outputs used). */
export function addGaussianNoise(x: Float32Array, rng: () => number, std: number): void {
  const n = x.length;
  for (let i = 0; i < n; i += 2) {
    const r = std * gaussianRadius(rng);
    const a = 2 * Math.PI * rng();
    x[i] += r * Math.cos(a);
    if (i + 1 < n) x[i + 1] += r * Math.sin(a);
  }
}

/** Product of two row-major 3x3 matrices. */
export function matMul3(x: readonly number[], y: readonly number[]): number[] {
  const r = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) r[i * 3 + j] += x[i * 3 + k] * y[k * 3 + j];
  return r;
}

/**
 * Row-major rotation by `angle` radians about axis 0, 1 or 2 (right-handed: about axis 0 it turns axis 1 towards
 * axis 2). Compose with matMul3: matMul3(matMul3(R0, R1), R2) applies R2 first.
 */
export function axisRotation(axis: 0 | 1 | 2, angle: number): number[] {
  const c = Math.cos(angle),
    s = Math.sin(angle);
  if (axis === 0) return [1, 0, 0, 0, c, -s, 0, s, c];
  if (axis === 1) return [c, 0, s, 0, 1, 0, -s, 0, c];
  return [c, -s, 0, s, c, 0, 0, 0, 1];
}
