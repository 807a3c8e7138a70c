#!/usr/bin/env bash
# The lfw-faceswap recipe (docs/runs/lfw-train-dev-vm-9ca0dfe.md: MesoInception4, central crop 0.512 ->
# 128 px, 6 epochs, batch 16, dropout 0.2) in f32 and bf16 (`--precision`) over seeds,
# one run after the other: each run's final validation AUC, accuracy and log loss, as a
# Markdown table. Not part of CI (about 90 s a run on two cores).
#
# Usage: scripts/lfw_precision_seeds.sh [SEEDS...]   (default: 1 2 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$root/../shared/data/lfw-faceswap}
[ -d "$data/train" ] || { echo "lfw_precision_seeds.sh: no $data/train" >&2; exit 1; }
py=${PYTHON:-$root/.venv-tools/bin/python}
seeds=${*:-1 2 3}
(cd "$root" && cargo build --release --example train >&2)
bin="$root/target/release/examples/train"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| seed | precision | val AUC | val accuracy | val log loss | s/epoch |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for seed in $seeds; do
  for precision in f32 bf16; do
    dir="$tmp/$seed-$precision"
    "$bin" --model meso_inception4 --data "$data/train" --val "$data/val" --epochs 6 \
      --batch-size 16 --dropout 0.2 --input-size 128 --center-crop 0.512 --seed "$seed" \
      --device cpu --precision "$precision" --quiet --out "$dir" > /dev/null
    "$py" - "$seed" "$precision" "$dir" <<'PY'
import json, sys
seed, precision, d = sys.argv[1:4]
m = json.load(open(f"{d}/metrics.json"))
h = json.load(open(f"{d}/history.json"))["epochs"]
s = sum(e["metrics"]["seconds"] for e in h) / len(h)
print(f"| {seed} | {precision} | {m['auc']:.4f} | {m['accuracy']:.4f} | {m['log_loss']:.4f} | {s:.1f} |")
PY
  done
done
