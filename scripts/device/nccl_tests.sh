#!/usr/bin/env bash
# The `nccl` feature's tests (tests/nccl.rs) on a CUDA machine (PyTorch 2.11.0 in
# /opt/torch/.venv, no cargo), in about a minute: ProcessGroupNCCL with world size 1 on
# cuda:0 (NCCL refuses two ranks on one GPU).
#
# Here (the build machine, no GPU needed):
#   scripts/setup.sh --nccl && scripts/device/nccl_tests.sh --prepare
# builds the test binary (`cargo test --features nccl --test nccl --no-run`) and copies it
# to target/device/nccl_tests. Then, through the device tool:
#   run(command="scripts/device/nccl_tests.sh", carry=["target/device"], timeout_s=300)
# There it runs the binary with that machine's torch lib/ (and its nvidia/ libraries) on
# LD_LIBRARY_PATH and writes its output to $OUT/nccl_tests.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=target/device

if [[ "${1:-}" == "--prepare" ]]; then
    bin=$(cargo test --features nccl --test nccl --no-run --message-format=json \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/nccl-' | tail -1)
    [[ -x $bin ]] || { echo "the nccl test binary was not built" >&2; exit 1; }
    mkdir -p "$DEV" && cp "$bin" "$DEV/nccl_tests"
    du -sh "$DEV/nccl_tests"
    exit 0
fi

source scripts/device/env.sh nccl_tests
"$DEV/nccl_tests" --test-threads 1 --nocapture 2>&1 | tee "$OUT/nccl_tests.txt"
