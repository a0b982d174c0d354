// A fake training run for study tests: deterministic in the cell, so an interrupted and resumed study can be
// compared with an uninterrupted one. MAE is made a little better and faster than scratch, more so with few labels.
import { RunResult, StudyCell } from "../../src/study/grid";
import { makeRng, seedFrom } from "../../src/runtime/random";

const ORGANS = ["spleen", "kidney_r", "liver", "aorta"];

export function fakeResult(cell: StudyCell): RunResult {
  const rng = makeRng(seedFrom(cell.key));
  const boost = cell.init === "mae" ? 0.04 * (1.2 - cell.labelFraction) : 0;
  const base = 0.55 + 0.25 * cell.labelFraction + boost;
  const perClassDice: Record<string, number> = {};
  const perClassHd95: Record<string, number> = {};
  ORGANS.forEach((o, i) => {
    perClassDice[o] = Math.min(0.99, base + 0.05 * i - 0.05 + 0.02 * (rng() - 0.5));
    perClassHd95[o] = 30 * (1 - perClassDice[o]) + rng();
  });
  // An organ missed entirely in one run: HD95 undefined (NaN), written as null, read back as NaN.
  if (cell.seed === 2 && cell.init === "scratch") perClassHd95.aorta = NaN;
  const dices = ORGANS.map((o) => perClassDice[o]);
  const hds = ORGANS.map((o) => perClassHd95[o]).filter(Number.isFinite);
  const rate = cell.init === "mae" ? 1 / 300 : 1 / 600;
  const curve = Array.from({ length: 10 }, (_, k) => {
    const step = (k + 1) * 100;
    return { step, valDice: base * (1 - Math.exp(-step * rate)), trainLoss: 1.5 * Math.exp(-step * rate) };
  });
  return {
    key: cell.key,
    init: cell.init,
    model: cell.model,
    labelFraction: cell.labelFraction,
    seed: cell.seed,
    backend: "fake",
    wallTimeS: 10 + cell.seed,
    steps: 1000,
    curve,
    test: {
      perClassDice,
      perClassHd95,
      meanDice: dices.reduce((a, b) => a + b, 0) / dices.length,
      meanHd95: hds.reduce((a, b) => a + b, 0) / hds.length,
    },
  };
}
