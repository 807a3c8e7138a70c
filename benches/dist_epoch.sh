#!/usr/bin/env bash
# Data-parallel on one machine: one training epoch of the LFW face-swap recipe
# (MesoInception4, central crop 0.512 -> 128 px, batch 16 per process, Adam 1e-3; 2,400
# training and 600 validation images) as 1 process x all cores against `--nproc 2`
# (2 processes x cores/2 intra-op threads, loopback Gloo), the decoding workers shared
# the same way. Prints seconds per epoch and training images per second (the epoch
# without its validation pass).
#
# Usage: benches/dist_epoch.sh   (ROUNDS=2; DATA, TRAIN_BIN as in benches/epoch.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$root/../shared/data/lfw-faceswap}
[ -d "$data/train" ] || { echo "dist_epoch.sh: no $data/train" >&2; exit 1; }
rounds=${ROUNDS:-2}
py=${PYTHON:-$root/.venv-tools/bin/python}
bin=${TRAIN_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --example train >&2)
  bin="$root/target/release/examples/train"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # name nproc workers
  local dir="$tmp/$1"
  "$bin" --model meso_inception4 --data "$data/train" --val "$data/val" --epochs 1 \
    --batch-size 16 --dropout 0.2 --input-size 128 --center-crop 0.512 --seed 1 \
    --device cpu --workers "$3" --quiet --overwrite --profile --nproc "$2" --out "$dir" > /dev/null
  "$py" - "$1" "$dir/history.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[2]))["epochs"][0]["metrics"]
train = m["seconds"] - m.get("time_validation", 0.0)
print(f"{sys.argv[1]}: {m['seconds']:.1f} s/epoch, {2400 / train:.0f} training images/s, "
      f"val_loss {m['val_loss']:.4f}")
PY
}
for r in $(seq "$rounds"); do
  run "1 process x $(nproc) threads" 1 2
  run "2 processes x $(( $(nproc) / 2 )) thread(s)" 2 1
done
