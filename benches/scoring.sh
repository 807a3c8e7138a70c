#!/usr/bin/env bash
# Scoring on the CPU with freed memory kept (what `evaluate` and `predict` do, as `train`
# does: deepfake::train::allocator) against glibc's own policy, on the LFW face-swap set:
# `evaluate` over the 2,400 training images (batch 32) and `predict` over the 600
# validation images (one at a time), with a MesoInception4 checkpoint trained here for one
# epoch (128 px, central crop 0.512). glibc's own policy is had by naming a malloc
# tunable at its default value (GLIBC_TUNABLES=glibc.malloc.perturb=0), which the
# programs leave alone. Wall time, minor page faults and peak resident memory per run
# (/usr/bin/time), rounds alternating the two.
#
# Usage: benches/scoring.sh          (ROUNDS=3 by default; DATA: the lfw-faceswap folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$root/../shared/data/lfw-faceswap}
rounds=${ROUNDS:-3}
[ -d "$data/train" ] || { echo "scoring.sh: no $data/train (the shared lfw-faceswap set)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "scoring.sh: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
cd "$root"
cargo build --release --example train --example evaluate --example predict >&2
bin=target/release/examples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/train" --model meso_inception4 --data "$data/train" --val "$data/val" --epochs 1 \
  --batch-size 16 --dropout 0.2 --input-size 128 --center-crop 0.512 --seed 1 --device cpu \
  --quiet --out "$tmp/run" > /dev/null
weights="$tmp/run/model.safetensors"
lscpu | grep -E "^Model name" >&2
for round in $(seq "$rounds"); do
  for policy in glibc kept; do
    if [ "$policy" = glibc ]; then tunables=(env GLIBC_TUNABLES=glibc.malloc.perturb=0); else tunables=(env -u GLIBC_TUNABLES); fi
    /usr/bin/time -f "round $round evaluate $policy %e s %R minor faults %M KB" "${tunables[@]}" \
      "$bin/evaluate" --weights "$weights" --data "$data/train" --batch-size 32 --device cpu \
      --out "$tmp/evaluate" > /dev/null 2> "$tmp/time" || { cat "$tmp/time" >&2; exit 1; }
    tail -1 "$tmp/time"
    /usr/bin/time -f "round $round predict $policy %e s %R minor faults %M KB" "${tunables[@]}" \
      "$bin/predict" --weights "$weights" --cpu "$data/val" > /dev/null 2> "$tmp/time" || { cat "$tmp/time" >&2; exit 1; }
    tail -1 "$tmp/time"
  done
done
