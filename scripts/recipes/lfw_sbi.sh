#!/usr/bin/env bash
# A detector trained on lfw-faceswap's real faces alone, with self-blended pseudo-fakes
# (Shiohara and Yamasaki, CVPR 2022; issue 24, points 6 and 7).
#
#   scripts/recipes/lfw_sbi.sh OUT
#
# The training folder is ../shared/data/lfw-faceswap/train/real only (linked into a
# private temporary folder): every fake the model sees is a pseudo-fake made from a real
# face. Validation is lfw-faceswap/val as shipped, real faces against real face swaps the
# model never saw (val_auc per epoch), with the held-out SBI AUC of the held-out real
# images beside it (val_sbi_auc). Writes OUT/best.safetensors (best val_sbi_loss: the
# swaps are never used to choose the model), then OUT/eval/report.md: the validation set
# clean and re-encoded at one JPEG quality for both classes (the set's leak), JPEG 50,
# a 0.5x resize. MTCNN finds the faces once (OUT/landmarks.json).
# MODEL=NAME, EPOCHS=N, SIZE=PX and LR=X change the model, budget, input size and
# learning rate (default efficientnet_b0, 8, 128, Adam's 1e-3: attempt B).
# Figures, machine and timing: docs/trust.md, "Recipes".
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${LFW_DIR:-$root/../shared/data/lfw-faceswap}
[ -d "$data/train/real" ] && [ -d "$data/val" ] || {
  echo "error: $data/train/real and $data/val not found (the shared lfw-faceswap set; set LFW_DIR)" >&2
  exit 1
}
data=$(cd "$data" && pwd)
cd "$root"
cargo build --release --example train --example evaluate
bin=target/release/examples
reals=$(mktemp -d)
trap 'rm -rf "$reals"' EXIT
ln -s "$data/train/real" "$reals/real"
model=${MODEL:-efficientnet_b0}
top=(--top pooled) batch=32
case $model in meso*) top=(--dropout 0.2) batch=16 ;; esac
"$bin/train" --model "$model" "${top[@]}" --data "$reals" --val "$data/val" \
  --val-split 0.2 --pseudo-fakes sbi --epochs "${EPOCHS:-8}" --batch-size "$batch" \
  --input-size "${SIZE:-128}" ${LR:+--lr "$LR"} --center-crop 0.6 \
  --resize bilinear --augment flip,jpeg:50-95 --seed 1 --out "$out"
"$bin/evaluate" --weights "$out/best.safetensors" --data "lfw-val=$data/val" \
  --perturb jpeg:90,50 resize:0.5+jpeg:90 --out "$out/eval"
