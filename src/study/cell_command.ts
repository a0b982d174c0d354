// `mae-nnformer cell --study DIR (--key KEY | --pretrain MODEL)`: runs one job of a study in this process, from the
// plan saved in the study folder. The study's worker pool starts it; a cluster job array can too (see cells.ts).
import { loadStudyPlan, runCellJob, CellJob } from "./cells";
import { openStudy } from "./lowlabel";
import { finetuneAt } from "./profiles";

export async function runCellCommand(out: string, job: CellJob, log: (s: string) => void = console.log): Promise<void> {
  const { profile, maeCheckpoint, dataParallel } = loadStudyPlan(out);
  const study = await openStudy(profile, { out, maeCheckpoint, dataParallel, progress: false, log }, log);
  await runCellJob(out, job, {
    cells: study.cells,
    runCell: (cell, onStep) =>
      study.runCell(cell, (r) => onStep(r.step, finetuneAt(profile, cell.labelFraction).steps)),
    pretrain: (model, seed, onStep) => study.pretrain(model, seed, (r) => onStep(r.step, profile.pretrain.steps)),
  });
}
