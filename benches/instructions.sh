#!/usr/bin/env bash
# Work per step, Rust vs its PyTorch-eager peer, as callgrind counts it: instructions
# executed (Ir), which is the same from run to run whatever else the machine is doing,
# unlike time on a shared or virtual machine. It says how much work each side does, not how
# long it takes (cache misses, page faults and memory bandwidth are not in it).
#
# Usage:
#   benches/instructions.sh ID [ID ...]      e.g. cpu/mbconv_40_80/b32x28/train
#
# For each id, each side runs under `valgrind --tool=callgrind` twice: two warm-up steps
# then N1 steps, and then N2 steps (the Rust bench with DF_BENCH_STEPS, the peer with
# --steps). The difference of the two totals over N2 - N1 is the work of one step, with
# start-up, imports and warm-up cancelled out. Both sides use one intra-op thread, so that
# no thread spins waiting for another.
#
# Environment:
#   PYTHON      the Python with torch 2.11 (default: .venv-tools/bin/python, else python3)
#   BENCH_BIN   a prebuilt blocks bench binary (default: built with cargo)
#   STEPS       "N1 N2" (default "1 3")
#   OUT_DIR     where the report goes (default: target/bench-report): instructions.md and
#               instructions.json
set -euo pipefail

cd "$(dirname "$0")/.."

if (($# == 0)); then
    echo "usage: benches/instructions.sh ID [ID ...]   (ids as in benches/run-peers.sh)" >&2
    exit 2
fi
if ! command -v valgrind >/dev/null; then
    echo "error: valgrind not found (Debian: apt-get install valgrind)" >&2
    exit 1
fi
# shellcheck source=benches/common/python.sh
source benches/common/python.sh
read -r n1 n2 <<<"${STEPS:-1 3}"
if ! ((n2 > n1)); then
    echo "error: STEPS must be two step counts, the second larger, got ${STEPS:-}" >&2
    exit 2
fi
out_dir="${OUT_DIR:-target/bench-report}"
mkdir -p "$out_dir"
bin="${BENCH_BIN:-}"
if [[ -z "$bin" ]]; then
    bin="$(cargo bench --bench blocks --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*blocks-[^"]*\)".*/\1/p' | tail -n1)"
fi
if [[ ! -x "$bin" ]]; then
    echo "error: no blocks bench binary (BENCH_BIN=${BENCH_BIN:-unset})" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DF_BENCH_THREADS=1 PYTHONHASHSEED=0

# Instructions executed by the whole command "$@".
count() {
    local out="$work/callgrind.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$work/stdout" 2>"$work/stderr" || {
        echo "error: under callgrind, $* failed:" >&2
        tail -n 20 "$work/stderr" >&2
        exit 1
    }
    sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out"
}

results="$out_dir/instructions.jsonl"
: >"$results"
for id in "$@"; do
    device="${id%%/*}"
    echo "== $id: Rust, $n1 and $n2 steps" >&2
    r1="$(DF_BENCH_STEPS=$n1 count "$bin" --bench "$id")"
    r2="$(DF_BENCH_STEPS=$n2 count "$bin" --bench "$id")"
    echo "== $id: PyTorch, $n1 and $n2 steps" >&2
    p1="$(count "$python" benches/peers/blocks_torch.py --threads 1 --device "$device" --filter "$id" --steps "$n1")"
    p2="$(count "$python" benches/peers/blocks_torch.py --threads 1 --device "$device" --filter "$id" --steps "$n2")"
    echo "{\"id\": \"$id\", \"steps\": [$n1, $n2], \"rust\": [$r1, $r2], \"pytorch\": [$p1, $p2]}" | tee -a "$results"
done

"$python" - "$results" "$out_dir" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import datetime
import json
import os
import sys

path, out_dir, commit = sys.argv[1:]
rows = []
for line in open(path):
    r = json.loads(line)
    span = r["steps"][1] - r["steps"][0]
    rust = (r["rust"][1] - r["rust"][0]) / span
    peer = (r["pytorch"][1] - r["pytorch"][0]) / span
    rows.append({"id": r["id"], "rust_instructions_per_step": rust,
                 "pytorch_instructions_per_step": peer, "pytorch_over_rust": peer / rust})
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
json.dump({"date": date, "commit": commit, "rows": rows},
          open(os.path.join(out_dir, "instructions.json"), "w"), indent=2)
lines = [
    "# Instructions per step (callgrind), Rust vs PyTorch eager",
    "",
    f"- date: {date}; commit: {commit}; one intra-op thread on both sides",
    "- PyTorch / Rust above 1: Rust executes fewer instructions per step",
    "",
    "| case | Rust instructions/step | PyTorch instructions/step | PyTorch / Rust |",
    "| --- | ---: | ---: | ---: |",
]
for x in rows:
    lines.append(f"| {x['id']} | {x['rust_instructions_per_step']:,.0f} | "
                 f"{x['pytorch_instructions_per_step']:,.0f} | {x['pytorch_over_rust']:.4f} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out_dir, "instructions.md"), "w").write(text)
print(text)
PY
