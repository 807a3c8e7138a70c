#!/usr/bin/env bash
# The gradient all-reduce per step of data-parallel training over loopback Gloo, side by
# side: df-dist's GradientAverager (benches/allreduce.rs) and torch.distributed on the same
# buckets (benches/peers/torch_allreduce.py), for ResNet50 and EfficientNet-B7 with the
# pooled binary top, 2 ranks on this machine. Prints a Markdown table.
#
# Usage: benches/allreduce.sh   (MODELS, RANKS, REPS as in benches/allreduce.rs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv-tools/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && cargo bench --bench allreduce --no-run >&2)
bin=$(ls -t "$root"/target/release/deps/allreduce-* | grep -v '\.d$' | head -n 1)
"$bin" > "$tmp/rust.jsonl"
"$py" "$root/benches/peers/torch_allreduce.py" "$tmp/rust.jsonl" --ranks "${RANKS:-2}" \
  --reps "${REPS:-10}" > "$tmp/torch.jsonl"
"$py" - "$tmp/rust.jsonl" "$tmp/torch.jsonl" <<'PY'
import json, sys
rust = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
torch = {r["model"]: r for r in (json.loads(l) for l in open(sys.argv[2]) if l.startswith("{"))}
print("| model | parameters | buckets | df-dist ms (median, range) | torch.distributed, reduce only | torch.distributed + DDP's copies | ratio (copies) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r in rust:
    t = torch[r["model"]]
    f = lambda k: f"{t[k + '_ms_median']:.1f} ({t[k + '_ms_min']:.1f}-{t[k + '_ms_max']:.1f})"
    print(f"| {r['model']} | {r['params']:,} | {len(r['buckets'])} | {r['ms_median']:.1f} ({r['ms_min']:.1f}-{r['ms_max']:.1f}) "
          f"| {f('torch')} | {f('torch_copy')} | {t['torch_copy_ms_median'] / r['ms_median']:.2f} |")
PY
