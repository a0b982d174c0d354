// Post-processing of predicted label maps, nnU-Net style: keep only the largest connected component of chosen classes
// (an organ is one piece; scattered islands of its label elsewhere are false positives), and decide which classes on
// VALIDATION predictions: a class is post-processed only when doing so raises its mean validation Dice.
// Removed voxels become background (0), as in nnU-Net.
import type { Vec3 } from "../runtime/math";

type Labels = Uint8Array | Uint16Array;

/** Voxel adjacency: 6 (faces) or 26 (faces, edges and corners; nnU-Net's scipy default is 6, 26 is more lenient). */
export type Connectivity = 6 | 26;

/** Neighbour offsets [dd, dh, dw] of a connectivity. */
function offsets(connectivity: Connectivity): Vec3[] {
  const out: Vec3[] = [];
  for (let a = -1; a <= 1; a++)
    for (let b = -1; b <= 1; b++)
      for (let c = -1; c <= 1; c++) {
        const n = Math.abs(a) + Math.abs(b) + Math.abs(c);
        if (n === 0 || (connectivity === 6 && n > 1)) continue;
        out.push([a, b, c]);
      }
  return out;
}

/**
 * A copy of `labels` ([D, H, W], flat in C order) in which each class of `classes` keeps only its largest connected
 * component (ties: the one met first in memory order); other voxels of that class become 0. Classes absent from the
 * map are ignored, other classes are untouched.
 */
export function keepLargestComponent(
  labels: Labels,
  shape: Vec3,
  classes: readonly number[],
  connectivity: Connectivity = 26,
): Labels {
  const [D, H, W] = shape;
  const n = D * H * W;
  if (labels.length !== n)
    throw new Error(`keepLargestComponent: labels have ${labels.length} voxels but shape ${shape.join("x")} has ${n}`);
  if (connectivity !== 6 && connectivity !== 26)
    throw new Error(`keepLargestComponent: connectivity must be 6 or 26, got ${connectivity}`);
  const out = labels.slice() as Labels;
  const wanted = new Set(classes);
  if (wanted.size === 0) return out;
  const nb = offsets(connectivity);
  const component = new Int32Array(n).fill(-1);
  const queue = new Int32Array(n);
  const sizes: number[] = [];
  const classOf: number[] = [];
  for (let start = 0; start < n; start++) {
    const c = labels[start];
    if (!wanted.has(c) || component[start] >= 0) continue;
    const id = sizes.length;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    component[start] = id;
    while (head < tail) {
      const v = queue[head++];
      const w = v % W;
      const h = ((v - w) / W) % H;
      const d = (v - w - h * W) / (W * H);
      for (const [a, b, e] of nb) {
        const dd = d + a;
        const hh = h + b;
        const ww = w + e;
        if (dd < 0 || dd >= D || hh < 0 || hh >= H || ww < 0 || ww >= W) continue;
        const u = (dd * H + hh) * W + ww;
        if (labels[u] === c && component[u] < 0) {
          component[u] = id;
          queue[tail++] = u;
        }
      }
    }
    sizes.push(tail);
    classOf.push(c);
  }
  const largest = new Map<number, number>();
  for (let id = 0; id < sizes.length; id++) {
    const best = largest.get(classOf[id]);
    if (best === undefined || sizes[id] > sizes[best]) largest.set(classOf[id], id);
  }
  for (let v = 0; v < n; v++) {
    const id = component[v];
    if (id >= 0 && largest.get(classOf[id]) !== id) out[v] = 0;
  }
  return out;
}

/** Mean validation Dice of each class without and with post-processing, and the classes where it helps. */
export interface PostprocessChoice {
  /** Classes whose largest-component post-processing raised the mean validation Dice (ascending). */
  classes: number[];
  connectivity: Connectivity;
  /** Per scored class (same order as `scored`): mean validation Dice as predicted, and after keeping the largest component. */
  scored: number[];
  before: number[];
  after: number[];
}

/**
 * nnU-Net's decision rule, per class: post-process a class only if that strictly raises its mean Dice over the
 * validation cases (NaN cases, where the class is absent from both maps, are skipped). `before[k][i]` and
 * `after[k][i]` are the Dice of scored class i on validation case k.
 */
export function choosePostprocessing(
  scored: readonly number[],
  before: readonly (readonly number[])[],
  after: readonly (readonly number[])[],
  connectivity: Connectivity = 26,
): PostprocessChoice {
  if (before.length === 0) throw new Error("choosePostprocessing: no validation cases to decide on");
  if (before.length !== after.length)
    throw new Error(`choosePostprocessing: ${before.length} cases scored before but ${after.length} after`);
  const mean = (rows: readonly (readonly number[])[], i: number): number => {
    let s = 0;
    let m = 0;
    for (const r of rows) {
      if (r.length !== scored.length)
        throw new Error(`choosePostprocessing: a case has ${r.length} Dice values for ${scored.length} classes`);
      if (Number.isFinite(r[i])) {
        s += r[i];
        m++;
      }
    }
    return m ? s / m : NaN;
  };
  const b = scored.map((_, i) => mean(before, i));
  const a = scored.map((_, i) => mean(after, i));
  const classes = scored.filter((_, i) => a[i] > b[i]).sort((x, y) => x - y);
  return { classes, connectivity, scored: [...scored], before: b, after: a };
}
