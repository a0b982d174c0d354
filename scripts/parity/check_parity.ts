// Parity of our nnFormer with the official PyTorch implementation, on files exported by the procedure in README.md.
// Usage: NNFORMER_PARITY_DIR=/path/to/export npx tsx scripts/parity/check_parity.ts [--ops plain|fast] [dir ...]
// Each folder holds config.json (our NnFormerConfig, plus _torch_params), state_dict.safetensors (official names and
// layouts) and io.safetensors (input and official outputs, channels-last: input, logits, aux.0, aux.1).
// Exits 1 when any output's relative error max|Δ|/max|ref| reaches the tolerance (default 1e-4), 2 on missing files.
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, describeBackend } from "../../src/runtime/backend";
import { readSafetensors } from "../../src/io/safetensors";
import { NnFormer, type NnFormerConfig } from "../../src/models/nnformer";
import { importOfficialWeights } from "../../src/models/official_weights";
import { plainOps } from "../../src/layers/plain_ops";
import { fastOps } from "../../src/layers/fast_ops";

const TOLERANCE = Number(process.env.NNFORMER_PARITY_TOL ?? 1e-4);

function relErr(ours: tf.Tensor, ref: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(ours, ref))).dataSync()[0] / tf.max(tf.abs(ref)).dataSync()[0]);
}

async function checkDir(dir: string, opsName: string): Promise<boolean> {
  for (const f of ["config.json", "state_dict.safetensors", "io.safetensors"]) {
    if (!fs.existsSync(path.join(dir, f))) {
      console.error(`${dir}: ${f} is missing; export it as described in scripts/parity/README.md`);
      process.exit(2);
    }
  }
  const raw = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  const config = Object.fromEntries(
    Object.entries(raw).filter(([k]) => !k.startsWith("_")),
  ) as unknown as NnFormerConfig;
  const model = new NnFormer(config, { init: "zeros" });
  if (raw._torch_params !== undefined && raw._torch_params !== model.numParams()) {
    console.error(`${dir}: parameter count ${model.numParams()} differs from PyTorch's ${raw._torch_params}`);
    return false;
  }
  const report = importOfficialWeights(model, path.join(dir, "state_dict.safetensors")); // strict: throws on any mismatch
  const io = readSafetensors(path.join(dir, "io.safetensors"));
  const t = (name: string) => {
    const s = io.tensors.get(name);
    if (!s) throw new Error(`${dir}/io.safetensors: no tensor '${name}'`);
    return tf.tensor(s.data as Float32Array, s.shape);
  };
  const x = t("input") as tf.Tensor5D;
  const ops = opsName === "fast" ? fastOps : plainOps;
  const t0 = Date.now();
  const out = model.forward(x, { ops, deepSupervision: io.tensors.has("aux.0") });
  const ms = Date.now() - t0;
  const outputs: Array<[string, tf.Tensor]> = [
    ["logits", out.logits],
    ...out.aux.map((a, i) => [`aux.${i}`, a] as [string, tf.Tensor]),
  ];
  let ok = true;
  const parts: string[] = [];
  for (const [name, ours] of outputs) {
    const ref = t(name);
    const e = relErr(ours, ref);
    parts.push(`${name} [${ours.shape}] rel.err ${e.toExponential(2)}`);
    if (!(e < TOLERANCE)) ok = false;
    ref.dispose();
  }
  console.log(
    `${ok ? "PASS" : "FAIL"} ${dir} (${opsName} ops, ${report.loaded} tensors, ${model.numParams()} params, forward ${ms} ms): ${parts.join("; ")}`,
  );
  tf.dispose([x, out.logits, ...out.aux]);
  model.dispose();
  return ok;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opsAt = args.indexOf("--ops");
  const opsName = opsAt >= 0 ? args.splice(opsAt, 2)[1] : "plain";
  if (opsName !== "plain" && opsName !== "fast") throw new Error(`--ops ${opsName}: use plain or fast`);
  const dirs = args.length ? args : (process.env.NNFORMER_PARITY_DIR ?? "").split(path.delimiter).filter(Boolean);
  if (!dirs.length) {
    console.error(
      "NNFORMER_PARITY_DIR is not set (nor a folder given): nothing was checked. See scripts/parity/README.md.",
    );
    process.exit(2);
  }
  console.log(describeBackend(await initBackend()));
  let ok = true;
  for (const d of dirs) ok = (await checkDir(d, opsName)) && ok;
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
