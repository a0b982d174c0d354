// The Dice ceiling of the demo's plan: each test phantom's label map taken to the plan's grid (nearest neighbour, as
// training labels are) and brought back to the case's own grid as a one-hot prediction (linear per class, then argmax,
// as the study scores predictions). A network that predicted the planned labels perfectly would score this; no
// network is involved, and nothing is chosen with it: it bounds what any model can score on a split at that plan.
//
//   npx tsx scripts/design/ceiling.ts [--profile quick] [--split val|test]
import { Command } from "commander";
import { predictionToSource, preprocessLabel } from "../../src/data/preprocess";
import { diceScores } from "../../src/metrics/dice";
import { loadStudyData, studyPlan } from "../../src/study/lowlabel";
import { getProfile, shippedEncoder } from "../../src/study/profiles";

async function main(): Promise<void> {
  const o = new Command()
    .option("--profile <name>", "study profile whose plan is measured", "quick")
    .option("--split <name>", "val or test", "val")
    .parse()
    .opts();
  if (o.split !== "val" && o.split !== "test")
    throw new Error(`--split must be val or test, got ${JSON.stringify(o.split)}`);
  const profile = getProfile(o.profile);
  const data = await loadStudyData(profile);
  const plan = studyPlan(profile, data, shippedEncoder(profile));
  const K = data.labelNames.length;
  const organs = data.labelNames.slice(1);
  const sums = new Array<number>(organs.length).fill(0);
  const cases = o.split === "val" ? data.val : data.test;
  for (const c of cases) {
    if (!c.label) throw new Error(`${o.split} case ${c.id} has no label map`);
    const planned = preprocessLabel(c.label, plan);
    const oneHot = new Float32Array(planned.data.length * K);
    planned.data.forEach((v, i) => (oneHot[i * K + v] = 1));
    const back = predictionToSource(oneHot, K, planned, c.label);
    diceScores(back, c.label.data, data.evalClasses).forEach((d, i) => (sums[i] += d));
  }
  const perOrgan = sums.map((s) => s / cases.length);
  const mean = perOrgan.reduce((a, b) => a + b, 0) / perOrgan.length;
  console.log(
    JSON.stringify({
      profile: profile.name,
      spacing: plan.spacing,
      split: o.split,
      cases: cases.length,
      meanDice: Number(mean.toFixed(3)),
      perOrgan: Object.fromEntries(organs.map((n, i) => [n, Number(perOrgan[i].toFixed(3))])),
    }),
  );
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
