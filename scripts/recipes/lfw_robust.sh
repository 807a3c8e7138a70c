#!/usr/bin/env bash
# A detector for lfw-faceswap that does not lean on the set's JPEG leak (issue 24, point 7).
#
#   scripts/recipes/lfw_robust.sh OUT
#
# Trains MesoInception4 on ../shared/data/lfw-faceswap/train with augmentations that give
# both classes the same compression, scale and blur (random JPEG quality 30-95 on every
# image, a downscale-upscale on 60 % of them, a light blur on 30 %), writes
# OUT/best.safetensors, then evaluates it on the validation set re-encoded so that both
# classes share one JPEG quality (the set as shipped carries the leak: real images are
# quality 90, fake 95) and under JPEG quality 50 and a 0.5x resize: OUT/eval/report.md.
# About 15-30 minutes on 2 cores (docs/trust.md, "Recipes": figures, machine, timing).
# MODEL=NAME, DROPOUT=P, EPOCHS=N, SIZE=PX and AUGMENT=SPEC change the model, the head's
# dropout, the budget, input size and augmentations (default meso_inception4, 0.2, 30, 128
# and the spec below: attempt 5).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${LFW_DIR:-$root/../shared/data/lfw-faceswap}
[ -d "$data/train" ] && [ -d "$data/val" ] || {
  echo "error: $data/train and $data/val not found (the shared lfw-faceswap set; set LFW_DIR)" >&2
  exit 1
}
cd "$root"
cargo build --release --example train --example evaluate
bin=target/release/examples
"$bin/train" --model "${MODEL:-meso_inception4}" --data "$data/train" --val "$data/val" \
  --epochs "${EPOCHS:-30}" --reduce-lr val_loss --reduce-lr-patience 3 --batch-size 16 --dropout "${DROPOUT:-0.2}" \
  --input-size "${SIZE:-128}" --center-crop 0.512 --resize bilinear \
  --augment "${AUGMENT:-flip,jpeg:30-95,rescale:0.4-1@0.6,blur:0-1.5@0.3}" --seed 1 --out "$out"
# jpeg:90 re-saves both classes at quality 90: the "clean" row without the leak.
"$bin/evaluate" --weights "$out/best.safetensors" --data "lfw-val=$data/val" \
  --perturb jpeg:90,50 resize:0.5+jpeg:90 --out "$out/eval"
