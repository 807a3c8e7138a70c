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
# $OUT_DIR/blocks.json (the same data), plus the raw peer lines in $OUT_DIR/peer.jsonl and
# the criterion results in $CRITERION_HOME (default target/criterion).
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

if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv-tools/bin/python ]]; then
    python=.venv-tools/bin/python
else
    python=python3
fi
if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "error: $python cannot import torch; run \`make setup\` or set PYTHON" >&2
    exit 1
fi

# Only results written from now on belong to this run.
marker="$out_dir/.started"
touch "$marker"
sleep 1

# The Rust bench with criterion arguments "$@" (plus BENCH_ARGS).
run_rust() {
    # shellcheck disable=SC2206 # BENCH_ARGS is a list of words on purpose.
    local extra=(${BENCH_ARGS:-})
    if [[ -n "${BENCH_BIN:-}" ]]; then
        "$BENCH_BIN" --bench "$@" "${extra[@]}"
    else
        cargo bench --quiet --bench blocks -- "$@" "${extra[@]}"
    fi
}

# The peer on one device, with its filter; appends its JSON lines to $peer_out.
run_peer() {
    "$python" benches/peers/blocks_torch.py --threads "$threads" --device "$1" \
        --filter "$2" --min-time "${PEER_MIN_TIME:-2}" --clock "$clock" | tee -a "$peer_out"
}

peer_out="$out_dir/peer.jsonl"
: >"$peer_out"
if [[ -z "${BENCH_BIN:-}" ]]; then
    cargo bench --bench blocks --no-run
fi

if [[ "${INTERLEAVE:-0}" == 1 ]]; then
    # One case at a time, alternating which side goes first, so that a machine whose load
    # drifts disturbs both sides alike.
    mapfile -t ids < <(run_rust --list | sed -n 's/: benchmark$//p' | grep -F -- "$filter")
    echo "== interleaved: ${#ids[@]} cases, $threads threads, $clock clock ==" >&2
    n=0
    for id in "${ids[@]}"; do
        if ((n++ % 2 == 0)); then
            run_rust "^${id}\$"
            run_peer "${id%%/*}" "$id"
        else
            run_peer "${id%%/*}" "$id"
            run_rust "^${id}\$"
        fi
    done
else
    echo "== Rust (criterion), $threads threads, $clock clock ==" >&2
    if [[ -n "$filter" ]]; then run_rust "$filter"; else run_rust; fi

    if [[ -n "${DEVICES:-}" ]]; then
        devices="$DEVICES"
    elif "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        devices="cpu cuda"
    else
        devices="cpu"
    fi
    echo "== PyTorch eager ($devices), $threads threads, $clock clock ==" >&2
    for device in $devices; do
        run_peer "$device" "$filter"
    done
fi

commit="${DF_BENCH_COMMIT:-}"
if [[ -z "$commit" ]] && git rev-parse --git-dir >/dev/null 2>&1; then
    commit="$(git rev-parse --short HEAD)"
    git diff --quiet HEAD -- 2>/dev/null || commit="$commit (with uncommitted changes)"
fi
cpu_model="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"

"$python" - "$CRITERION_HOME" "$marker" "$peer_out" "$out_dir" "$threads" "${commit:-unknown}" \
    "${cpu_model:-unknown}" "$(nproc --all)" "${PEER_MIN_TIME:-2}" "$clock" <<'PY'
import datetime
import json
import os
import re
import sys

crit_home, marker, peer_path, out_dir, threads, commit, cpu_model, cores, peer_min, clock = sys.argv[1:]
since = os.path.getmtime(marker)

BLOCK_ID = re.compile(r"^(cpu|cuda)/[a-z0-9_]+/b\d+x\d+/(eval|train)$")

# Criterion: <home>/<group>/<function>/new/{benchmark,estimates}.json, written this run.
rust = {}
for root, _dirs, files in os.walk(crit_home):
    if os.path.basename(root) != "new" or "estimates.json" not in files:
        continue
    est_path = os.path.join(root, "estimates.json")
    if os.path.getmtime(est_path) < since:
        continue
    with open(os.path.join(root, "benchmark.json")) as f:
        bench = json.load(f)
    # Other benches (models, loader) share the criterion directory.
    if not BLOCK_ID.match(bench["full_id"]):
        continue
    with open(est_path) as f:
        est = json.load(f)
    batch = (bench.get("throughput") or {}).get("Elements")
    mean_s = est["mean"]["point_estimate"] * 1e-9
    rust[bench["full_id"]] = {"seconds_per_iter": mean_s, "images_per_second": batch / mean_s}

peer = {}
with open(peer_path) as f:
    for line in f:
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            peer[r["id"]] = r

import torch  # noqa: E402  (only for the versions and the GPU name)

gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
rows = []
for bid in set(rust) | set(peer):
    device, block, shape, mode = bid.split("/")
    batch = int(shape[1:].split("x")[0])
    r = rust.get(bid, {}).get("images_per_second")
    p = peer.get(bid, {}).get("images_per_second")
    rows.append({
        "id": bid, "device": device, "block": block, "batch": batch, "input": shape,
        "mode": mode, "rust_images_per_second": r, "pytorch_images_per_second": p,
        "ratio_rust_over_pytorch": (r / p) if r and p else None,
    })
order = {"eval": 0, "train": 1}
rows.sort(key=lambda x: (x["device"] != "cpu", x["block"], x["batch"], order.get(x["mode"], 2)))

meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": commit,
    "cpu": cpu_model,
    "cores": int(cores),
    "threads": int(threads),
    "gpu": gpu,
    "torch": torch.__version__,
    "peer_min_time_s": float(peer_min),
    "clock": clock,
    # Allocator settings change the results a lot on machines with costly page faults
    # (both sides inherit them); recorded so that runs compare like with like.
    "env": {k: os.environ[k] for k in ("GLIBC_TUNABLES", "LD_PRELOAD", "THP_MEM_ALLOC_ENABLE")
            if os.environ.get(k)},
}
with open(os.path.join(out_dir, "blocks.json"), "w") as f:
    json.dump({"meta": meta, "rows": rows}, f, indent=2)


def fmt(v):
    return "—" if v is None else (f"{v:,.1f}" if v < 100 else f"{v:,.0f}")


lines = [
    "# Block throughput: Rust (tch) vs PyTorch eager",
    "",
    f"- date: {meta['date']}",
    f"- commit: {commit}",
    f"- CPU: {cpu_model}, {cores} cores; {threads} intra-op threads on both sides",
]
if gpu:
    lines.append(f"- GPU: {gpu}")
for k, v in meta["env"].items():
    lines.append(f"- {k}={v} (both sides)")
lines += [
    f"- libtorch / PyTorch: {torch.__version__} (the same wheel on both sides)",
    f"- Rust: criterion mean; PyTorch: mean over ≥ {peer_min} s"
    + (" of process CPU time (DF_BENCH_CLOCK=cpu)" if clock == "cpu" else " (wall clock)")
    + ". Images per second, higher is better.",
    "",
    "| device | block | batch | mode | Rust img/s | PyTorch img/s | Rust / PyTorch |",
    "| --- | --- | ---: | --- | ---: | ---: | ---: |",
]
for x in rows:
    ratio = x["ratio_rust_over_pytorch"]
    lines.append(
        f"| {x['device']} | {x['block']} | {x['batch']} | {x['mode']} | "
        f"{fmt(x['rust_images_per_second'])} | {fmt(x['pytorch_images_per_second'])} | "
        f"{'—' if ratio is None else f'{ratio:.2f}'} |"
    )
text = "\n".join(lines) + "\n"
with open(os.path.join(out_dir, "blocks.md"), "w") as f:
    f.write(text)
print(text)
PY
rm -f "$marker"
echo "report: $out_dir/blocks.md, $out_dir/blocks.json" >&2
