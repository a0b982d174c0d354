// nnFormer's parameters: one spec per tensor of the official state_dict, in official order (names, our and torch
// shapes, PyTorch-default init, table group as in the spec's §3 rows), plus the relative_position_index buffers.

import { SpecList, paramTable, type ParamSpec } from "../layers/param_specs";
import { rpbTableRows, type WindowGeometry } from "../layers/window_attention3d";
import { planNnFormer, type NnFormerConfig } from "./nnformer_config";
import type { Vec3 } from "../runtime/math";
import { cube } from "../runtime/math";

/** A non-trainable buffer in the official state_dict (relative_position_index, int64 [N, N]). */
export interface BufferSpec {
  name: string;
  shape: [number, number];
  window: Vec3;
}

const DECODER_NAMES = ["deep", "mid", "shallow"];

/** All parameters and buffers of a config in official order. Does not allocate. */
export function nnFormerParamSpecs(c: NnFormerConfig): { params: ParamSpec[]; buffers: BufferSpec[] } {
  const plan = planNnFormer(c);
  const L = new SpecList();
  const buffers: BufferSpec[] = [];
  const conv = (name: string, cin: number, cout: number, k: Vec3) => L.conv(name, cin, cout, k, { bias: true });
  const block = (prefix: string, C: number, heads: number, g: WindowGeometry, kv: boolean) => {
    L.norm(`${prefix}.norm1`, C);
    const T = rpbTableRows(g.window);
    // a 1-token window adds one constant to a one-entry softmax: its table gets no gradient (unit-test sizes)
    L.add({
      name: `${prefix}.attn.relative_position_bias_table`,
      shape: [T, heads],
      torchShape: [T, heads],
      kind: "rpb",
      init: "trunc_normal",
      fanIn: T,
      ...(g.tokens === 1 ? { zeroGrad: true } : {}),
    });
    buffers.push({ name: `${prefix}.attn.relative_position_index`, shape: [g.tokens, g.tokens], window: g.window });
    L.linear(kv ? `${prefix}.attn.kv` : `${prefix}.attn.qkv`, C, (kv ? 2 : 3) * C); // skip attention: no query proj
    L.linear(`${prefix}.attn.proj`, C, C);
    L.norm(`${prefix}.norm2`, C);
    const hidden = Math.floor(C * c.mlpRatio);
    L.linear(`${prefix}.mlp.fc1`, C, hidden);
    L.linear(`${prefix}.mlp.fc2`, hidden, C);
  };
  const E = c.embedDim,
    h = E / 2,
    pe = "model_down.patch_embed";
  L.group = "embedding";
  conv(`${pe}.proj1.conv1`, c.inChannels, h, cube(3));
  conv(`${pe}.proj1.conv2`, h, h, cube(3));
  L.norm(`${pe}.proj1.norm1`, h);
  L.norm(`${pe}.proj1.norm2`, h);
  conv(`${pe}.proj2.conv1`, h, E, cube(3));
  conv(`${pe}.proj2.conv2`, E, E, cube(3));
  L.norm(`${pe}.proj2.norm1`, E);
  L.norm(`${pe}.norm`, E);
  plan.encoder.forEach((s, i) => {
    L.group = `enc${i}.blocks`;
    s.blocks.forEach((g, j) => block(`model_down.layers.${i}.blocks.${j}`, s.dim, s.heads, g, false));
    if (i < 3) {
      L.group = `enc${i}.down`;
      conv(`model_down.layers.${i}.downsample.reduction`, s.dim, 2 * s.dim, c.downKernels[i]);
      L.norm(`model_down.layers.${i}.downsample.norm`, s.dim);
    }
  });
  plan.encoder.forEach((s, i) => {
    L.group = `enc${i}.norm`;
    L.norm(`model_down.norm${i}`, s.dim);
  });
  // torch builds decoder.layers shallow-first: decoder.layers.0 is the shallowest stage
  for (let t = 0; t < 3; t++) {
    const j = 2 - t,
      s = plan.decoder[j],
      name = DECODER_NAMES[j];
    L.group = `dec.${name}.blocks`;
    s.blocks.forEach((g, b) => block(`decoder.layers.${t}.blocks.${b}`, s.dim, s.heads, g, b === 0));
    L.group = `dec.${name}.up`;
    L.norm(`decoder.layers.${t}.Upsample.norm`, 2 * s.dim);
    L.convT(`decoder.layers.${t}.Upsample.up`, 2 * s.dim, s.dim, c.upKernels[j], { bias: true });
  }
  L.group = "heads";
  const nHeads = c.deepSupervision ? 3 : 1;
  for (let i = 0; i < nHeads; i++) L.convT(`final.${i}.up`, E * 2 ** i, c.numClasses, c.patchSize, { bias: true });
  return { params: L.params, buffers };
}

/** One row per component as in the spec's §3 table (embedding, encN.blocks/norm/down, dec.deep|mid|shallow.up/blocks, heads). */
export function nnFormerParamTable(c: NnFormerConfig): Array<{ component: string; params: number }> {
  return paramTable(nnFormerParamSpecs(c).params);
}
