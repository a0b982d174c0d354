// The one parameter contract of every model in the kit (nnFormer, the MAE decoder, the four baselines): a list of
// named specs (PyTorch state_dict name, our shape, torch shape, init, fan-in, table group) and one store of seeded
// tf.Variables keyed by those names. The spec list counts parameters without allocating, allocates them, and drives
// the official-weights adapter and the kit's checkpoints, so one loader and one exporter serve every model.
import * as tf from "@tensorflow/tfjs";

import { makeRng, normal, seedFrom, type Rng } from "../runtime/random";
import type { Vec3 } from "../runtime/math";
import { prod } from "../runtime/math";

/** How a tensor maps between PyTorch and our layout. "embedding": torch [1, N, E] ↔ ours [N, E]. */
export type ParamKind = "linear" | "conv" | "convT" | "vector" | "rpb" | "embedding";

/**
 * Initial values:
 *   "uniform"        U(±1/√fanIn): PyTorch's default for Linear/Conv weights (kaiming_uniform a=√5) and biases.
 *   "he_normal"      N(0, 2/((1 + 0.01²)·fanIn)): nnU-Net's InitWeights_He(1e-2) for conv weights.
 *   "trunc_normal"   N(0, 0.02²) redrawn outside ±2 (timm / MONAI trunc_normal_).
 *   "clamped_normal" N(0, 0.02²) clamped to ±0.04 (the MAE mask tokens).
 *   "ones", "zeros".
 */
export type ParamInit = "uniform" | "he_normal" | "trunc_normal" | "clamped_normal" | "ones" | "zeros";

export interface ParamSpec {
  /** PyTorch state_dict name of the reference implementation (our own name for kit-only tensors). */
  name: string;
  /** Our (TF.js) shape. */
  shape: number[];
  /** PyTorch shape. */
  torchShape: number[];
  kind: ParamKind;
  init: ParamInit;
  fanIn: number;
  /** Component row of a parameter table, e.g. "enc0.blocks" or "vit.blocks". */
  group: string;
  /**
   * True when the gradient is zero by construction (a conv bias directly followed by InstanceNorm, which subtracts
   * the per-channel mean and so removes any constant). Such parameters still count, as in PyTorch.
   */
  zeroGrad?: boolean;
}

/** A model's parameters as the rest of the kit sees them: the spec list and the store holding the variables. */
export interface ParamHolder {
  readonly specs: readonly ParamSpec[];
  readonly params: ParamStore;
}

/** Permutation taking the PyTorch layout to ours (Linear (out,in)→(in,out); Conv3d (o,i,d,h,w)→(d,h,w,i,o); ConvT (i,o,d,h,w)→(d,h,w,o,i)). */
export function torchToTfPerm(kind: ParamKind): number[] | null {
  return kind === "linear" ? [1, 0] : kind === "conv" || kind === "convT" ? [2, 3, 4, 1, 0] : null;
}

/** Collects specs in definition order; each call mirrors one PyTorch module. Set `group` before a component. */
export class SpecList {
  readonly params: ParamSpec[] = [];
  group = "";

  /** Adds one spec as given (for tensors whose init does not follow a PyTorch module's rule). */
  add(s: Omit<ParamSpec, "group">): void {
    if (this.params.some((p) => p.name === s.name)) throw new Error(`duplicate parameter name ${s.name}`);
    this.params.push({ ...s, group: this.group });
  }

  /** nn.Linear(cin, cout, bias). */
  linear(name: string, cin: number, cout: number, bias = true, init: ParamInit = "uniform"): void {
    this.weightAndBias(name, cout, bias, {
      shape: [cin, cout],
      torchShape: [cout, cin],
      kind: "linear",
      init,
      fanIn: cin,
    });
  }

  /** nn.Conv3d(cin, cout, k, bias); zeroGrad marks a bias that a following InstanceNorm cancels. */
  conv(
    name: string,
    cin: number,
    cout: number,
    k: Vec3,
    opts: { bias: boolean; init?: ParamInit; zeroGradBias?: boolean },
  ): void {
    const init = opts.init ?? "uniform";
    const weight = { shape: [...k, cin, cout], torchShape: [cout, cin, ...k], kind: "conv" as const, init };
    this.weightAndBias(name, cout, opts.bias, { ...weight, fanIn: cin * prod(k) }, opts.zeroGradBias);
  }

  /** nn.ConvTranspose3d(cin, cout, k, stride=k, bias). Torch computes its fan_in from weight dim 1 (= cout). */
  convT(name: string, cin: number, cout: number, k: Vec3, opts: { bias: boolean; init?: ParamInit }): void {
    const init = opts.init ?? "uniform";
    const weight = { shape: [...k, cout, cin], torchShape: [cin, cout, ...k], kind: "convT" as const, init };
    this.weightAndBias(name, cout, opts.bias, { ...weight, fanIn: cout * prod(k) });
  }

  /**
   * A module's `.weight` and, when `bias`, its `.bias` of [cout]: U(±1/√fanIn) under the "uniform" rule (PyTorch's
   * default for both), zeros otherwise; zeroGradBias marks a bias that a following InstanceNorm cancels.
   */
  private weightAndBias(
    name: string,
    cout: number,
    bias: boolean,
    w: Omit<ParamSpec, "group" | "name">,
    zeroGradBias = false,
  ): void {
    this.add({ name: `${name}.weight`, ...w });
    if (!bias) return;
    this.add({
      name: `${name}.bias`,
      shape: [cout],
      torchShape: [cout],
      kind: "vector",
      init: w.init === "uniform" ? "uniform" : "zeros",
      fanIn: w.fanIn,
      ...(zeroGradBias ? { zeroGrad: true } : {}),
    });
  }

  /** nn.LayerNorm(C) or an affine InstanceNorm3d(C): weight 1, bias 0. */
  norm(name: string, C: number): void {
    this.add({ name: `${name}.weight`, shape: [C], torchShape: [C], kind: "vector", init: "ones", fanIn: C });
    this.add({ name: `${name}.bias`, shape: [C], torchShape: [C], kind: "vector", init: "zeros", fanIn: C });
  }

  /** A bare nn.Parameter (fan-in = first dimension). */
  tensor(name: string, shape: number[], torchShape: number[], kind: ParamKind, init: ParamInit): void {
    this.add({ name, shape, torchShape, kind, init, fanIn: shape[0] });
  }
}

/** Total parameter count of a spec list. */
export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, p) => n + prod(p.shape), 0);
}

/** Parameters per group, in first-seen order. */
export function paramTable(specs: readonly ParamSpec[]): Array<{ component: string; params: number }> {
  const rows = new Map<string, number>();
  for (const p of specs) rows.set(p.group, (rows.get(p.group) ?? 0) + prod(p.shape));
  return [...rows].map(([component, params]) => ({ component, params }));
}

/** Initial values for one parameter from its own seeded stream. */
export function initValues(s: ParamSpec, rng: Rng): Float32Array {
  const n = prod(s.shape);
  const out = new Float32Array(n);
  if (s.init === "ones") out.fill(1);
  else if (s.init === "uniform") {
    const bound = 1 / Math.sqrt(s.fanIn); // kaiming_uniform(a=√5) and the bias rule both give U(±1/√fan_in)
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
  } else if (s.init === "clamped_normal") {
    for (let i = 0; i < n; i++) out[i] = Math.max(-0.04, Math.min(0.04, normal(rng, 0, 0.02)));
  }
  return out;
}

let storeCounter = 0;

/** A store's variable name without its per-instance prefix: "nnformer3/model_down.norm0.weight" -> "model_down.norm0.weight". */
export function stableName(variableName: string): string {
  const i = variableName.indexOf("/");
  return i >= 0 ? variableName.slice(i + 1) : variableName;
}

/**
 * tf.Variables for a spec list, keyed by name. `ParamStore.create` draws each from seedFrom(namespace, seed, name) (or
 * zeros, for weights about to be loaded); `ParamStore.borrow` holds variables owned by another store (never freed here).
 * Iterates as [name, variable] in spec order, like a read-only Map.
 */
export class ParamStore implements Iterable<[string, tf.Variable]> {
  private readonly vars = new Map<string, tf.Variable>();
  private disposed = false;

  private constructor(
    readonly specs: readonly ParamSpec[],
    private readonly owns: boolean,
  ) {}

  /** Allocates every spec: `init: "pytorch"` (default) draws the spec's init from its own seeded stream. */
  static create(
    namespace: string,
    specs: readonly ParamSpec[],
    seed: number,
    init: "pytorch" | "zeros" = "pytorch",
  ): ParamStore {
    const store = new ParamStore(specs, true);
    const id = storeCounter++;
    for (const s of specs) {
      const values =
        init === "zeros" ? new Float32Array(prod(s.shape)) : initValues(s, makeRng(seedFrom(namespace, seed, s.name)));
      const t = tf.tensor(values, s.shape);
      store.vars.set(s.name, tf.variable(t, true, `${namespace}${id}/${s.name}`));
      t.dispose(); // the variable keeps its own copy
    }
    return store;
  }

  /** A view on variables owned elsewhere: each spec gets `lookup(spec)` when it returns one (others are absent). */
  static borrow(specs: readonly ParamSpec[], lookup: (s: ParamSpec) => tf.Variable | undefined): ParamStore {
    const store = new ParamStore(specs, false);
    for (const s of specs) {
      const v = lookup(s);
      if (v) store.vars.set(s.name, v);
    }
    return store;
  }

  /** The variable stored under a PyTorch name (throws on unknown names). */
  get(name: string): tf.Variable {
    if (this.disposed) throw new Error(`parameter ${name}: the model was disposed`);
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter named ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  get size(): number {
    return this.vars.size;
  }

  keys(): IterableIterator<string> {
    return this.vars.keys();
  }

  values(): IterableIterator<tf.Variable> {
    return this.vars.values();
  }

  [Symbol.iterator](): IterableIterator<[string, tf.Variable]> {
    return this.vars.entries();
  }

  variables(): tf.Variable[] {
    return [...this.vars.values()];
  }

  count(): number {
    return countParams(this.specs);
  }

  /** Frees the variables this store allocated (a borrowed view frees nothing). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.owns) tf.dispose([...this.vars.values()]);
    this.vars.clear();
  }
}
