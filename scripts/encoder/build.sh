#!/usr/bin/env bash
# Rebuilds the shipped encoder (pretrained/nnformer-quick-mae): the kit's own `pretrain` command on the "encoder"
# profile (the quick network's MAE on unlabeled phantoms of seed 1), timed, then shipped with its model card.
# Hours on one CPU core; resumable (rerun the same command after an interruption).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${ENCODER_RUN:-runs/encoder}"
into=pretrained/nnformer-quick-mae
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
start=$(date +%s)
npx tsx src/cli/main.ts pretrain --profile encoder --out "$out"
wall=$(($(date +%s) - start))
npx tsx scripts/encoder/card.ts --run "$out" --into "$into" --wall "$wall" --commit "$commit" --command "npm run encoder"
