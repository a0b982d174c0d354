// Parameter lists for the baseline models: one list of (PyTorch state_dict name, shape, init) per config, used to
// count parameters without allocating, to allocate seeded variables, and (later) to import PyTorch weights.
// The fields mirror nnFormer's ParamSpec (src/models/nnformer.ts) so one weights loader can serve every model.
import * as tf from "@tensorflow/tfjs";
import type { Triple } from "./ops";
import { makeRng, normal, seedFrom, type Rng } from "../runtime/random";

/** How a tensor maps between PyTorch and our layout. "embedding": torch [1, N, E] ↔ ours [N, E]. */
export type WeightKind = "linear" | "conv" | "convT" | "vector" | "rpb" | "embedding";

/**
 * Initial values:
 *   "uniform"      U(±1/√fanIn): PyTorch's default for Linear/Conv weights (kaiming_uniform a=√5) and biases.
 *   "he_normal"    N(0, 2/((1 + 0.01²)·fanIn)): nnU-Net's InitWeights_He(1e-2) for conv weights.
 *   "trunc_normal" N(0, 0.02²) cut at ±2 (timm / MONAI trunc_normal_).
 *   "ones", "zeros".
 */
export type WeightInit = "uniform" | "he_normal" | "trunc_normal" | "ones" | "zeros";

export interface WeightSpec {
  /** PyTorch state_dict name of the reference implementation. */
  name: string;
  /** Our (TF.js) shape. */
  shape: number[];
  /** PyTorch shape. */
  torchShape: number[];
  kind: WeightKind;
  init: WeightInit;
  fanIn: number;
  /** Component row of a parameter table, e.g. "vit.blocks" or "decoder". */
  group: string;
  /**
   * True when the gradient is zero by construction (a conv bias directly followed by InstanceNorm, which subtracts
   * the per-channel mean and so removes any constant). Such parameters still count, as in PyTorch.
   */
  zeroGrad?: boolean;
}

export const prod = (t: number[]) => t.reduce((a, b) => a * b, 1);

/** Collects specs in definition order; each call mirrors one PyTorch module. */
export class SpecList {
  readonly params: WeightSpec[] = [];
  group = "";

  private push(s: Omit<WeightSpec, "group">): void {
    if (this.params.some((p) => p.name === s.name)) throw new Error(`duplicate parameter name ${s.name}`);
    this.params.push({ ...s, group: this.group });
  }

  /** nn.Linear(cin, cout, bias). */
  linear(name: string, cin: number, cout: number, bias = true, init: WeightInit = "uniform"): void {
    this.push({
      name: `${name}.weight`,
      shape: [cin, cout],
      torchShape: [cout, cin],
      kind: "linear",
      init,
      fanIn: cin,
    });
    if (bias)
      this.push({
        name: `${name}.bias`,
        shape: [cout],
        torchShape: [cout],
        kind: "vector",
        init: init === "uniform" ? "uniform" : "zeros",
        fanIn: cin,
      });
  }

  /** nn.Conv3d(cin, cout, k, bias); zeroGrad marks a bias that a following InstanceNorm cancels. */
  conv(
    name: string,
    cin: number,
    cout: number,
    k: Triple,
    opts: { bias: boolean; init?: WeightInit; zeroGradBias?: boolean },
  ): void {
    const fanIn = cin * prod(k);
    const init = opts.init ?? "uniform";
    this.push({
      name: `${name}.weight`,
      shape: [...k, cin, cout],
      torchShape: [cout, cin, ...k],
      kind: "conv",
      init,
      fanIn,
    });
    if (opts.bias) {
      this.push({
        name: `${name}.bias`,
        shape: [cout],
        torchShape: [cout],
        kind: "vector",
        init: init === "uniform" ? "uniform" : "zeros",
        fanIn,
        ...(opts.zeroGradBias ? { zeroGrad: true } : {}),
      });
    }
  }

  /** nn.ConvTranspose3d(cin, cout, k, stride=k, bias). Torch computes its fan_in from weight dim 1 (= cout). */
  convT(name: string, cin: number, cout: number, k: Triple, opts: { bias: boolean; init?: WeightInit }): void {
    const fanIn = cout * prod(k);
    const init = opts.init ?? "uniform";
    this.push({
      name: `${name}.weight`,
      shape: [...k, cout, cin],
      torchShape: [cin, cout, ...k],
      kind: "convT",
      init,
      fanIn,
    });
    if (opts.bias)
      this.push({
        name: `${name}.bias`,
        shape: [cout],
        torchShape: [cout],
        kind: "vector",
        init: init === "uniform" ? "uniform" : "zeros",
        fanIn,
      });
  }

  /** nn.LayerNorm(C) or an affine InstanceNorm3d(C): weight 1, bias 0. */
  norm(name: string, C: number): void {
    this.push({ name: `${name}.weight`, shape: [C], torchShape: [C], kind: "vector", init: "ones", fanIn: C });
    this.push({ name: `${name}.bias`, shape: [C], torchShape: [C], kind: "vector", init: "zeros", fanIn: C });
  }

  /** A bare nn.Parameter. */
  tensor(name: string, shape: number[], torchShape: number[], kind: WeightKind, init: WeightInit): void {
    this.push({ name, shape, torchShape, kind, init, fanIn: shape[0] });
  }
}

/** Total parameter count of a spec list. */
export function countParams(specs: WeightSpec[]): number {
  return specs.reduce((n, p) => n + prod(p.shape), 0);
}

/** Parameters per group, in first-seen order. */
export function paramTable(specs: WeightSpec[]): Array<{ component: string; params: number }> {
  const rows = new Map<string, number>();
  for (const p of specs) rows.set(p.group, (rows.get(p.group) ?? 0) + prod(p.shape));
  return [...rows].map(([component, params]) => ({ component, params }));
}

/** Initial values for one parameter from its own seeded stream. */
export function initValues(s: WeightSpec, rng: Rng): Float32Array {
  const n = prod(s.shape);
  const out = new Float32Array(n);
  if (s.init === "ones") out.fill(1);
  else if (s.init === "uniform") {
    const bound = 1 / Math.sqrt(s.fanIn);
    for (let i = 0; i < n; i++) out[i] = (2 * rng() - 1) * bound;
  } else if (s.init === "he_normal") {
    const std = Math.sqrt(2 / ((1 + 0.01 * 0.01) * s.fanIn));
    for (let i = 0; i < n; i++) out[i] = normal(rng, 0, std);
  } else if (s.init === "trunc_normal") {
    for (let i = 0; i < n; i++) {
      let v = normal(rng, 0, 0.02);
      while (v < -2 || v > 2) v = normal(rng, 0, 0.02); // timm/MONAI cut at ±2 absolute (never hit at std 0.02)
      out[i] = v;
    }
  }
  return out;
}

let storeCounter = 0;

/** tf.Variables for a spec list, keyed by name; each drawn from seedFrom(model, seed, name). */
export class ParamStore {
  readonly specs: WeightSpec[];
  private readonly vars = new Map<string, tf.Variable>();
  private disposed = false;

  constructor(model: string, specs: WeightSpec[], seed: number) {
    this.specs = specs;
    const id = storeCounter++;
    for (const s of specs) {
      const t = tf.tensor(initValues(s, makeRng(seedFrom(model, seed, s.name))), s.shape);
      this.vars.set(s.name, tf.variable(t, true, `${model}${id}/${s.name}`));
      t.dispose(); // the variable keeps its own copy
    }
  }

  /** The variable stored under a PyTorch name (throws on unknown names, listing a near match). */
  get(name: string): tf.Variable {
    if (this.disposed) throw new Error(`parameter ${name}: the model was disposed`);
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter named ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  variables(): tf.Variable[] {
    return [...this.vars.values()];
  }

  count(): number {
    return countParams(this.specs);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([...this.vars.values()]);
    this.vars.clear();
  }
}
