#!/usr/bin/env bash
# The study's final-model story at full size on a CUDA machine: EfficientNet-B7 at 600 px
# with the study head, without dropout, with dropout 0.5 and with dropout 0.5 + L2 1e-4
# (the `final_model` example), on the subset `scripts/device/study.sh --prepare` carries.
#   run(command="scripts/device/final_model.sh", carry=["target/device"], timeout_s=420)
# Each variant's folder and the table (final_model.md/json) come back under $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=target/device
[[ -x $DEV/final_model ]] || { echo "run scripts/device/study.sh --prepare here first and carry target/device" >&2; exit 1; }
PY=/opt/torch/.venv/bin/python
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/machine.txt" || true
timeout 360 "$DEV/final_model" --data "$DEV/data/train" --val "$DEV/data/val" \
    --center-crop 0.512 --input-size 600 --epochs 4 --batch-size 16 --device cuda \
    --out "$OUT/final_model" || echo "final_model ended with $?"
cat "$OUT/final_model/final_model.md" 2>/dev/null || echo "the table was not written"
