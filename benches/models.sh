#!/usr/bin/env bash
# The whole-model benches side by side on this machine: benches/models.rs, then its peers
# benches/peers/models_torch.py (--impl user, channels-last input: PyTorch's fastest eager
# layout on a CPU; --impl port, the exact MesoNet and ResNet definitions in plain PyTorch,
# both layouts; --impl keras, the exact definitions), same threads, same cases; then
# benches/peers/models_report.py. CUDA: scripts/device/models.sh.
#
# Usage: benches/models.sh [extra options for both sides, e.g. --filter efficientnet_b0/]
# Environment: OUT_DIR (default target/bench-report/models), DF_BENCH_THREADS (default:
# the cores this process may run on), PRECISION (default f32,bf16; the Rust side also
# runs bf16-cast for eval), MIN_TIME (seconds per case, default 1), PYTHON.
# The default CPU matrix (16 models at 128 px, batch 1 and 8, f32 and bf16) takes about
# 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT_DIR:-target/bench-report/models}
PYTHON=${PYTHON:-.venv-tools/bin/python}
PRECISION=${PRECISION:-f32,bf16}
MIN_TIME=${MIN_TIME:-1}
THREADS=${DF_BENCH_THREADS:-$(nproc)}
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/*.jsonl
{
    date -u +%FT%TZ
    git rev-parse --short HEAD 2>/dev/null || true
    lscpu | grep -E "Model name|Flags"
    echo "threads $THREADS"
} | tee "$OUT_DIR/machine.txt"
common=(--threads "$THREADS" --min-time "$MIN_TIME" "$@")
cargo bench --bench models -- "${common[@]}" --precision "$PRECISION" --out "$OUT_DIR/rust.jsonl"
cargo bench --bench models -- "${common[@]}" --precision bf16-cast --modes eval1,eval \
    --out "$OUT_DIR/rust.jsonl"
"$PYTHON" benches/peers/models_torch.py --impl user --layout channels_last "${common[@]}" \
    --precision "$PRECISION" --out "$OUT_DIR/peers.jsonl"
# The exact definitions in plain PyTorch (MesoNet, ResNet v1), both layouts.
for layout in contiguous channels_last; do
    "$PYTHON" benches/peers/models_torch.py --impl port --layout "$layout" "${common[@]}" \
        --precision "$PRECISION" --out "$OUT_DIR/peers.jsonl"
done
KERAS_BACKEND=torch "$PYTHON" benches/peers/models_torch.py --impl keras "${common[@]}" \
    --precision "$PRECISION" --out "$OUT_DIR/peers.jsonl"
"$PYTHON" benches/peers/models_report.py "$OUT_DIR/models.md" "$OUT_DIR/rust.jsonl" \
    "$OUT_DIR/peers.jsonl"
