#!/usr/bin/env bash
# The `cuda` feature's tests (tests/cuda.rs) on a CUDA machine (PyTorch 2.11.0 in
# /opt/torch/.venv, no cargo), in about a minute.
#
# Here (the build machine):
#   scripts/device/cuda_tests.sh --prepare
# builds the test binary (`cargo test --features cuda --test cuda --no-run`, release
# profile not needed) and copies it to target/device/cuda_tests. Then, through the device
# tool:
#   run(command="scripts/device/cuda_tests.sh", carry=["target/device"], timeout_s=300)
# There it runs the binary with that machine's torch lib/ on LD_LIBRARY_PATH and writes
# its output to $OUT/cuda_tests.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=target/device

if [[ "${1:-}" == "--prepare" ]]; then
    bin=$(cargo test --features cuda --test cuda --no-run --message-format=json \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/cuda-' | tail -1)
    [[ -x $bin ]] || { echo "the cuda test binary was not built" >&2; exit 1; }
    mkdir -p "$DEV" && cp "$bin" "$DEV/cuda_tests"
    du -sh "$DEV/cuda_tests"
    exit 0
fi

source scripts/device/env.sh cuda_tests
"$DEV/cuda_tests" --test-threads 1 2>&1 | tee "$OUT/cuda_tests.txt"
