#!/usr/bin/env bash
# The demo's recipe across seeds and memory formats: runs the release `demo` for seeds
# 1..N (default 5) and 42 (its default) in both memory formats and prints one line per run (seed, format,
# validation accuracy, AUC, epochs, seconds), then the range. Extra arguments go to the
# demo (e.g. --epochs 20). Records the machine first (lscpu's model and flags).
#   scripts/demo_seeds.sh [N] [demo args...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}; shift || true
cargo build --release --example demo >&2
lscpu | grep -E "Model name" >&2
lscpu | grep -oE "avx512_bf16|amx_bf16|avx512f|avx2" | sort -u | tr '\n' ' ' >&2; echo >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for seed in $(seq 1 "$n") 42; do
  for format in channels_last contiguous; do
    start=$(date +%s)
    line=$(target/release/examples/demo --seed "$seed" --memory-format "$format" \
      --out "$tmp/demo-$seed-$format" "$@" 2>/dev/null | grep "report.md")
    acc=$(sed -n 's/.*validation accuracy \([0-9.]*\).*/\1/p' <<<"$line")
    auc=$(sed -n 's/.*AUC \([0-9.]*\).*/\1/p' <<<"$line")
    epochs=$(sed -n 's/.*Meso4, \([0-9]*\) epochs.*/\1/p' <<<"$line")
    echo "seed $seed $format accuracy $acc auc $auc epochs $epochs seconds $(( $(date +%s) - start ))"
  done
done
