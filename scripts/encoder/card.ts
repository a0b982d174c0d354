// Ships a pretraining run as the kit's pretrained encoder: a slim copy of its checkpoint (weights, plan and record; no
// optimizer moments) and a model card (card.json, MODEL_CARD.md) with the command, kit commit, data, steps, wall time,
// held-out masked-reconstruction loss against predicting the mean, the curve, the first training losses and the
// sha256 of the shipped file. Run by scripts/encoder/build.sh (npm run encoder), which times the pretraining.
//
//   npx tsx scripts/encoder/card.ts --run runs/encoder --into pretrained/nnformer-quick-mae --wall 3600 --commit abc
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Command } from "commander";
import { initBackend } from "../../src/runtime/backend";
import { loadMaeCheckpoint, saveMaeCheckpoint } from "../../src/mae/checkpoint";
import type { PretrainHistory } from "../../src/mae/pretrain";
import { getProfile } from "../../src/study/profiles";
import { writeFileAtomic } from "../../src/runtime/files";
import { ENCODER_CARD_FILE, ENCODER_FILE, type EncoderCard } from "./card_format";

async function main(): Promise<void> {
  const o = new Command()
    .requiredOption("--run <dir>", "output folder of `mae-nnformer pretrain --profile encoder`")
    .requiredOption("--into <dir>", "folder of the shipped encoder")
    .requiredOption("--wall <s>", "wall time of the pretraining, seconds")
    .requiredOption("--commit <sha>", "kit commit the pretraining ran on")
    .option("--profile <name>", "profile the run used", "encoder")
    .option("--command <text>", "the command that made the run", "npm run encoder")
    .option("--note <text>", "about the machine the run used", "")
    .parse()
    .opts();
  const backend = await initBackend();
  const profile = getProfile(o.profile);
  const model = profile.models[0];
  const source = path.join(o.run, "pretrain", model, "mae_latest.safetensors");
  if (!fs.existsSync(source)) throw new Error(`${source} is missing: run the pretraining first (${o.command})`);
  const info = loadMaeCheckpoint(fs.readFileSync(source));
  const history = (info.train?.history ?? null) as PretrainHistory | null;
  const step = info.fitState?.step ?? 0;
  if (!history || step < profile.pretrain.steps)
    throw new Error(`${source}: at step ${step} of ${profile.pretrain.steps}; let the pretraining finish first`);
  fs.mkdirSync(o.into, { recursive: true });
  const shipped = path.join(o.into, ENCODER_FILE);
  await saveMaeCheckpoint(shipped, info.model, {
    preprocessing: info.preprocessing,
    fitState: info.fitState ?? undefined,
    train: info.train ?? undefined, // the run's settings and history, as recorded
  });
  info.model.dispose();
  const bytes = fs.readFileSync(shipped);
  const last = history.evals[history.evals.length - 1];
  const d = profile.data;
  if (d.kind !== "phantom-memory")
    throw new Error(`profile ${o.profile}: the shipped encoder is pretrained on phantoms`);
  const card: EncoderCard = {
    format: "mae-nnformer-encoder-card-v1",
    model,
    profile: o.profile,
    command: o.command,
    commit: o.commit,
    backend: backend.name,
    data: {
      generator: "phantom",
      seed: d.seed,
      shape: d.shape,
      unlabeled: d.unlabeled,
      heldOut: d.val,
      note: `phantom cases 0..${d.unlabeled - 1} of seed ${d.seed} for training and ${d.unlabeled}..${d.unlabeled + d.val - 1} held out; every labelled, validation and test case of the kit's phantom manifest is seed 0`,
    },
    preprocessing: info.preprocessing,
    pretrain: profile.pretrain,
    steps: step,
    wallTimeS: Number(o.wall),
    machine: o.note,
    heldOut: { loss: last.loss, meanBaseline: last.meanBaseline, ratio: last.loss / last.meanBaseline },
    curve: history.evals,
    firstLosses: history.firstLosses,
    file: ENCODER_FILE,
    bytes: bytes.length,
    sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
  };
  writeFileAtomic(path.join(o.into, ENCODER_CARD_FILE), JSON.stringify(card, null, 2) + "\n");
  writeFileAtomic(path.join(o.into, "MODEL_CARD.md"), modelCardMarkdown(card));
  console.log(`shipped ${shipped} (${(card.bytes / 1e6).toFixed(1)} MB, sha256 ${card.sha256})`);
}

function modelCardMarkdown(c: EncoderCard): string {
  const p = c.pretrain;
  const rows = c.curve
    .map(
      (e) =>
        `| ${e.step} | ${e.loss.toFixed(4)} | ${e.meanBaseline.toFixed(4)} | ${(e.loss / e.meanBaseline).toFixed(3)} |`,
    )
    .join("\n");
  return `# Shipped encoder: ${c.model} MAE

The encoder the quick demo (\`npm run demo\`) starts its "mae" arm from. Written by \`${c.command}\` (scripts/encoder/build.sh);
the numbers below are read from the run, not typed.

- **Network**: ${c.model} (the nnFormer encoder of the quick profile), MAE with ${p.maskMode} masking, ratio ${p.maskRatio}${p.maskUnit ? `, mask units ${p.maskUnit.join("x")} voxels` : ""}.
- **Data**: ${c.data.unlabeled} unlabeled phantoms (generator seed ${c.data.seed}, grid ${c.data.shape.join("x")}), ${c.data.heldOut} more held out. ${c.data.note}.
- **Preprocessing**: spacing ${c.preprocessing.spacing ? c.preprocessing.spacing.join(" x ") + " mm" : "native"}, ${c.preprocessing.statsFrom}. Fine-tuning from this encoder uses this plan (it is stored in the checkpoint).
- **Schedule**: ${c.steps} steps of ${p.batchSize} crops, AdamW, peak learning rate ${p.lr}, cosine decay, 5 % warm-up.
- **Compute**: ${(c.wallTimeS / 3600).toFixed(2)} h wall time on ${c.backend} (one process, one CPU core${c.machine ? `; ${c.machine}` : ""}), kit commit \`${c.commit}\`.
- **Held-out masked-reconstruction loss**: ${c.heldOut.loss.toFixed(4)} against ${c.heldOut.meanBaseline.toFixed(4)} for predicting the mean (ratio ${c.heldOut.ratio.toFixed(3)}).
- **File**: \`${c.file}\`, ${(c.bytes / 1e6).toFixed(1)} MB, sha256 \`${c.sha256}\`.
- **Reproduction**: \`${c.command}\` reruns it; \`test/encoder/shipped.test.ts\` checks the checksum and that the first
  ${c.firstLosses.length > 3 ? 3 : c.firstLosses.length} steps of the recorded run give the recorded losses (${c.firstLosses
    .slice(0, 3)
    .map((l) => l.toFixed(6))
    .join(", ")}).

## Held-out curve

| step | masked loss | predict-the-mean | ratio |
| ---: | ---: | ---: | ---: |
${rows}
`;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
