#!/usr/bin/env bash
# Runs the block benches side by side: the Rust criterion bench (benches/blocks.rs) and its
# PyTorch-eager peer (benches/peers/blocks_torch.py), with the same intra-op thread count,
# and writes a table of images/s and the ratio Rust / PyTorch per case.
#
# Usage:
#   benches/run-peers.sh [FILTER]
#
#   FILTER   a substring of the bench ids, e.g. `cpu/mbconv` or `b1x` (default: every case).
#            The ids are `{cpu|cuda}/{block}/b{batch}x{size}/{eval|train}`. Both sides get it
#            (criterion reads it as a regex: use plain text).
#
# Environment:
#   DF_BENCH_THREADS  intra-op threads for both sides (default: `nproc`, the cores this
#                     process may run on).
#   DF_BENCH_CLOCK    `wall` (default) or `cpu`: time process CPU time on both sides instead,
#                     for a machine busy with other work (use with DF_BENCH_THREADS=1).
#   PYTHON            the Python with torch 2.11 (default: .venv-tools/bin/python, else python3).
#   DEVICES           the peer's devices, space-separated (default: `cpu`, plus `cuda` when the
#                     peer's torch sees a GPU; the Rust bench adds CUDA by itself likewise).
#   PEER_MIN_TIME     seconds the peer times each case for (default 2).
#   BENCH_BIN         a prebuilt bench binary to run instead of `cargo bench --bench blocks`.
#                     For a machine without cargo (a GPU box): build here with
#                     `cargo bench --bench blocks --no-run` (it prints the binary's path,
#                     target/release/deps/blocks-<hash>), copy the binary, this script and
#                     benches/peers/ over, and run from the copy's root:
#                       LD_LIBRARY_PATH=$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib \
#                       BENCH_BIN=./blocks-<hash> DF_BENCH_COMMIT=<commit> benches/run-peers.sh
#                     The caller sets LD_LIBRARY_PATH to a libtorch 2.11 (the binary's rpath
#                     points into this clone's .libtorch, which the copy may lack).
#   INTERLEAVE        1: run the cases one by one, Rust and peer in turn (alternating which
#                     goes first), so that drifting load on a shared machine hits both alike;
#                     the cases are those the Rust bench lists (CUDA ones only where it sees
#                     a GPU).
#   ROUNDS            run everything this many times (default 1) and report, per case, the
#                     median over rounds of the Rust / PyTorch ratio and its range. On a
#                     shared or virtual machine single runs of a cell move by ±20 %; use
#                     ROUNDS=3 or more there, with INTERLEAVE=1.
#   PEER_INPLACE      1: the peer writes ReLU and residual additions in place in training
#                     too (`blocks_torch.py --inplace`), as df-layers and torchvision's
#                     ResNet do. Default 0: the plain functional code (`F.relu(x)`, `x + y`).
#   DF_BENCH_LAYOUT   `contiguous` (default) or `channels_last`: the memory format of the
#                     Rust bench's inputs, as inside a network that converted its batch once
#                     (see benches/blocks.rs).
#   PEER_LAYOUT       the same for the peer (`blocks_torch.py --layout`); default: the Rust
#                     side's, like for like. PEER_LAYOUT=contiguous with
#                     DF_BENCH_LAYOUT=channels_last compares against plain eager code.
#   GLIBC_TUNABLES, LD_PRELOAD, THP_MEM_ALLOC_ENABLE
#                     allocator settings, inherited by both sides and recorded in the report.
#                     Where page faults are costly (VMs), large tensors dominate: e.g.
#                     GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296
#                     keeps freed memory for reuse instead of returning it to the kernel.
#   BENCH_ARGS        extra criterion arguments, e.g. `--measurement-time 5`.
#   DF_BENCH_COMMIT   the commit to report when there is no git checkout.
#   OUT_DIR           where the report goes (default: target/bench-report).
#
# Output: $OUT_DIR/blocks.md (Markdown table with machine, threads, date, commit) and
# $OUT_DIR/blocks.json (the same data, every round included), written by
# benches/peers/report.py from the raw lines of each round in $OUT_DIR/rust.jsonl and
# $OUT_DIR/peer.jsonl; criterion's own results are in $CRITERION_HOME (default
# target/criterion).
set -euo pipefail

cd "$(dirname "$0")/.."

filter="${1:-}"
threads="${DF_BENCH_THREADS:-$(nproc)}"
export DF_BENCH_THREADS="$threads"
clock="${DF_BENCH_CLOCK:-wall}"
export DF_BENCH_CLOCK="$clock"
out_dir="${OUT_DIR:-target/bench-report}"
export CRITERION_HOME="${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}"
mkdir -p "$out_dir" "$CRITERION_HOME"

# shellcheck source=benches/common/python.sh
source benches/common/python.sh
if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "error: $python cannot import torch; run \`make setup\` or set PYTHON" >&2
    exit 1
fi

rust_out="$out_dir/rust.jsonl"
peer_out="$out_dir/peer.jsonl"
: >"$rust_out"
: >"$peer_out"
rounds="${ROUNDS:-1}"
layout="${DF_BENCH_LAYOUT:-contiguous}"
export DF_BENCH_LAYOUT="$layout"
peer_layout="${PEER_LAYOUT:-$layout}"
peer_flags=(--layout "$peer_layout")
[[ "${PEER_INPLACE:-0}" == 1 ]] && peer_flags+=(--inplace)

# The blocks bench binary ($BENCH_BIN, else through cargo) with criterion arguments "$@".
rust_bench() {
    if [[ -n "${BENCH_BIN:-}" ]]; then
        "$BENCH_BIN" --bench "$@"
    else
        cargo bench --quiet --bench blocks -- "$@"
    fi
}

# The Rust bench with criterion arguments "$@" (plus BENCH_ARGS); appends what it measured
# (the cases criterion wrote from now on, or only the id in $RUST_ID) to $rust_out.
run_rust() {
    local since="$out_dir/.since"
    touch "$since"
    sleep 1 # criterion's files must be newer than the marker by the filesystem's clock
    # shellcheck disable=SC2206 # BENCH_ARGS is a list of words on purpose.
    local extra=(${BENCH_ARGS:-})
    rust_bench "$@" "${extra[@]}"
    "$python" benches/peers/report.py collect "$CRITERION_HOME" "$since" ${RUST_ID:+"$RUST_ID"} \
        >>"$rust_out"
}

# The peer on one device, with its filter; appends its JSON lines to $peer_out.
run_peer() {
    "$python" benches/peers/blocks_torch.py --threads "$threads" --device "$1" \
        --filter "$2" --min-time "${PEER_MIN_TIME:-2}" --clock "$clock" "${peer_flags[@]}" |
        tee -a "$peer_out"
}

if [[ -z "${BENCH_BIN:-}" ]]; then
    cargo bench --bench blocks --no-run
fi

if [[ "${INTERLEAVE:-0}" == 1 ]]; then
    # One case at a time, alternating which side goes first, so that a machine whose load
    # drifts disturbs both sides alike.
    mapfile -t ids < <(rust_bench --list | sed -n 's/: benchmark$//p' | grep -F -- "$filter")
    echo "== interleaved: ${#ids[@]} cases, $rounds round(s), $threads threads, $clock clock ==" >&2
    n=0
    for ((round = 1; round <= rounds; round++)); do
        for id in "${ids[@]}"; do
            # Flip the order in alternate rounds too (with an even number of cases, the
            # running count alone would give each case the same order in every round).
            if (((n++ + round) % 2 == 0)); then
                RUST_ID="$id" run_rust "^${id}\$"
                run_peer "${id%%/*}" "$id"
            else
                run_peer "${id%%/*}" "$id"
                RUST_ID="$id" run_rust "^${id}\$"
            fi
        done
    done
else
    if [[ -n "${DEVICES:-}" ]]; then
        devices="$DEVICES"
    elif "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        devices="cpu cuda"
    else
        devices="cpu"
    fi
    for ((round = 1; round <= rounds; round++)); do
        echo "== round $round/$rounds: Rust (criterion), $threads threads, $clock clock ==" >&2
        if [[ -n "$filter" ]]; then run_rust "$filter"; else run_rust; fi
        echo "== round $round/$rounds: PyTorch eager ($devices), $threads threads, $clock clock ==" >&2
        for device in $devices; do
            run_peer "$device" "$filter"
        done
    done
fi

commit="${DF_BENCH_COMMIT:-}"
if [[ -z "$commit" ]] && git rev-parse --git-dir >/dev/null 2>&1; then
    commit="$(git rev-parse --short HEAD)"
    git diff --quiet HEAD -- 2>/dev/null || commit="$commit (with uncommitted changes)"
fi
cpu_model="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"

# What the report says of the run; the versions and the GPU come from the peer's torch.
meta="$out_dir/.meta.json"
"$python" - "$meta" "$threads" "${commit:-unknown}" "${cpu_model:-unknown}" "$(nproc --all)" \
    "${PEER_MIN_TIME:-2}" "$clock" "$rounds" "${INTERLEAVE:-0}" "${PEER_INPLACE:-0}" \
    "$layout" "$peer_layout" <<'PY'
import json, os, sys
import torch
(path, threads, commit, cpu, cores, peer_min, clock, rounds, interleave, inplace, layout,
 peer_layout) = sys.argv[1:]
json.dump({
    "commit": commit, "cpu": cpu, "cores": int(cores), "threads": int(threads),
    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    "torch": torch.__version__, "peer_min_time_s": float(peer_min), "clock": clock,
    "rounds": int(rounds), "interleave": interleave == "1", "peer_inplace": inplace == "1",
    "layout": layout, "peer_layout": peer_layout,
    # Allocator settings change the results a lot on machines with costly page faults
    # (both sides inherit them); recorded so that runs compare like with like.
    "env": {k: os.environ[k] for k in ("GLIBC_TUNABLES", "LD_PRELOAD", "THP_MEM_ALLOC_ENABLE")
            if os.environ.get(k)},
}, open(path, "w"))
PY
"$python" benches/peers/report.py report "$rust_out" "$peer_out" "$out_dir" "$meta"
