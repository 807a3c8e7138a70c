#!/usr/bin/env bash
# What the augmentations cost an epoch of the lfw recipe (MesoInception4, central crop
# 0.512 -> 128 px, batch 16, 2 decoding workers): `train` for one epoch with and without
# `--augment`, alternating, ROUNDS times, back to back on the same binary. Reports the
# epoch's own wall time (history.json: training and validation), the process's wall
# time, and its CPU time (user + system, every thread; start-up and the data audit
# included, the same on both sides): on a VM whose wall time moves by ±15 % from run to
# run, the extra CPU is the steadier figure of what the augmentations add.
#
#   ROUNDS=3 benches/augment_cost.sh [SPEC]
#
# SPEC defaults to the lfw_robust recipe's. TRAIN_BIN: a prebuilt `train` (default: built
# here, release). DATA: the lfw-faceswap folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-flip,jpeg:30-95,rescale:0.4-1@0.6,blur:0-1.5@0.3}
data=${DATA:-$root/../shared/data/lfw-faceswap}
[ -d "$data/train" ] || { echo "augment_cost.sh: no $data/train (the shared lfw-faceswap set)" >&2; exit 1; }
rounds=${ROUNDS:-3}
[ -x /usr/bin/time ] || { echo "augment_cost.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
py=${PYTHON:-$root/.venv-tools/bin/python}
bin=${TRAIN_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --example train >&2)
  bin=$root/target/release/examples/train
fi
export LD_LIBRARY_PATH=$root/.libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # name [spec]
  local aug=()
  [ -z "${2:-}" ] || aug=(--augment "$2")
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$bin" --model meso_inception4 --data "$data/train" \
    --val "$data/val" "${aug[@]}" --epochs 1 --batch-size 16 --dropout 0.2 --input-size 128 \
    --center-crop 0.512 --seed 1 --device cpu --workers 2 --quiet --overwrite --out "$tmp/$1" >/dev/null
  read -r wall user sys < "$tmp/time"
  # The epoch's own wall time (training and validation, without start-up and the audit).
  epoch=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["epochs"][0]["metrics"]["seconds"])' \
    "$tmp/$1/history.json")
  echo "$1 $epoch $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
}
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; spec $spec"
echo "# run epoch_s process_wall_s process_cpu_s"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then run plain; run augment "$spec"; else run augment "$spec"; run plain; fi
done | tee "$tmp/runs"
awk '
  { ep[$1] = ep[$1] " " $2; wall[$1] = wall[$1] " " $3; cpu[$1] = cpu[$1] " " $4 }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    pe = median(ep["plain"]); ae = median(ep["augment"])
    pw = median(wall["plain"]); aw = median(wall["augment"])
    pc = median(cpu["plain"]); ac = median(cpu["augment"])
    printf "median epoch:         plain %.1f s, augment %.1f s, ratio %.3f\n", pe, ae, ae / pe
    printf "median process wall:  plain %.1f s, augment %.1f s, ratio %.3f\n", pw, aw, aw / pw
    printf "median process CPU:   plain %.1f s, augment %.1f s, +%.1f s\n", pc, ac, ac - pc
  }' "$tmp/runs"
