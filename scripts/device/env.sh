# Sourced by the device scripts, on the device machine: checks that `$1` (a carried
# binary) is there, puts that machine's torch lib/ on LD_LIBRARY_PATH, sets OUT (the
# device tool's output folder, or runs/device) and records the machine in $OUT/machine.txt.
DEV=target/device
[[ -x $DEV/$1 ]] || { echo "run scripts/device/study.sh --prepare here first and carry target/device" >&2; exit 1; }
PY=/opt/torch/.venv/bin/python
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
    lscpu | grep -E "Model name" || true
} | tee "$OUT/machine.txt"
