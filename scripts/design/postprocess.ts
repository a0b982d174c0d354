// Demo design probe for post-processing: predicts the VALIDATION cases (never test) with trained checkpoints, on each
// case's own grid as the study scores test, and prints the mean validation Dice per organ as predicted and after
// keeping each organ's largest connected component (6- and 26-connected), with the classes nnU-Net's rule would
// choose. One JSON line per checkpoint. --mirror predicts with mirror test-time augmentation (8 flips) instead.
//
//   npx tsx scripts/design/postprocess.ts runs/quick/runs/*frac_1_seed_0/best.safetensors
//   npx tsx scripts/design/postprocess.ts --mirror runs/quick/runs/*frac_1_seed_0/best.safetensors
import * as tf from "@tensorflow/tfjs";
import { initBackendWithThreads } from "../../src/runtime/threads";
import { loadStudyData } from "../../src/study/lowlabel";
import { getProfile } from "../../src/study/profiles";
import { Predictor } from "../../src/infer/predict";
import { diceScores } from "../../src/metrics/dice";
import { choosePostprocessing, keepLargestComponent, type Connectivity } from "../../src/infer/postprocess";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const mirror = args.includes("--mirror");
  const files = args.filter((a) => a !== "--mirror");
  if (files.length === 0) throw new Error("usage: postprocess.ts [--mirror] CHECKPOINT...");
  await initBackendWithThreads(1);
  const profile = getProfile("quick");
  const data = await loadStudyData(profile);
  const classes = data.evalClasses;
  for (const file of files) {
    const p = Predictor.load(file);
    const before: number[][] = [];
    const after = new Map<Connectivity, number[][]>([
      [6, []],
      [26, []],
    ]);
    for (const c of data.val) {
      if (!c.label) throw new Error(`validation case ${c.id} has no label map`);
      const pred = await p.predict(c.image, { overlap: profile.eval.overlap, mirror, batchSize: 4 });
      before.push(diceScores(pred, c.label.data, classes));
      for (const [conn, rows] of after)
        rows.push(diceScores(keepLargestComponent(pred, c.label.shape, classes, conn), c.label.data, classes));
    }
    p.dispose();
    const round = (xs: number[]) => xs.map((x) => Number(x.toFixed(3)));
    const mean = (xs: number[]) => Number((xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(4));
    const line: Record<string, unknown> = { checkpoint: file, mirror, valCases: data.val.map((c) => c.id) };
    for (const [conn, rows] of after) {
      const ch = choosePostprocessing(classes, before, rows, conn);
      const chosen = ch.before.map((b, i) => (ch.classes.includes(classes[i]) ? ch.after[i] : b));
      line.before = { mean: mean(ch.before), perOrgan: round(ch.before) };
      line[`after${conn}`] = {
        mean: mean(ch.after),
        perOrgan: round(ch.after),
        chosen: ch.classes,
        chosenMean: mean(chosen),
      };
    }
    console.log(JSON.stringify(line));
  }
  console.error(`tensors left: ${tf.memory().numTensors}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
