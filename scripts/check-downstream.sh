#!/usr/bin/env bash
# Builds downstream/ (a project using the crates as the README says) and starts its
# binary directly: copied to a temporary directory (so no rpath relative to this clone
# can help) and run without LD_LIBRARY_PATH. It must start and print its line.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd downstream && cargo build --profile test --locked 2>&1 | tail -3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp target/debug/deepfake-downstream "$tmp/"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH -u LIBTORCH ./deepfake-downstream)
echo "$out"
grep -q "deepfake-downstream: meso4 logits \[2, 1\]" <<<"$out"
