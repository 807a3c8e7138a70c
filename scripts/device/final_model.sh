#!/usr/bin/env bash
# The study's final-model story at full size on a CUDA machine: EfficientNet-B7 at 600 px
# with the study head, without dropout, with dropout 0.5 and with dropout 0.5 + L2 1e-4
# (the `final_model` example), on the subset `scripts/device/study.sh --prepare` carries.
#   run(command="scripts/device/final_model.sh", carry=["target/device"], timeout_s=420)
# Each variant's folder and the table (final_model.md/json) come back under $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/env.sh final_model
timeout 360 "$DEV/final_model" --data "$DEV/data/train" --val "$DEV/data/val" \
    --center-crop 0.512 --input-size 600 --epochs 4 --batch-size 16 --device cuda \
    --out "$OUT/final_model" || echo "final_model ended with $?"
cat "$OUT/final_model/final_model.md" 2>/dev/null || echo "the table was not written"
