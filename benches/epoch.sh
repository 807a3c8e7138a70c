#!/usr/bin/env bash
# One training epoch of the LFW face-swap recipe (MesoInception4, central crop 0.512 ->
# 128 px, batch 16, Adam 1e-3, dropout 0.2; 2,400 training and 600 validation images),
# side by side on this machine: the `train` example in f32 and bf16, the plain PyTorch
# eager loop (benches/peers/torch_train_lfw.py: torchvision ImageFolder + DataLoader) in
# NCHW, channels-last and channels-last + bf16 autocast, and the Keras peer
# (benches/peers/keras_train_lfw.py, images decoded up front). Each epoch's wall time
# includes its validation pass on every side.
#
# Usage: benches/epoch.sh            (ROUNDS=3 benches/epoch.sh for the median of three)
#
# Environment:
#   ROUNDS            rounds, each running every configuration once, in an order that
#                     rotates from round to round (default 1).
#   EPOCHS            epochs per run (default 1; the first epoch includes warm-up on every
#                     side).
#   DF_BENCH_THREADS  intra-op threads for every side (default: `nproc`).
#   WORKERS           decoding workers for `train` and DataLoader processes (default 2).
#   DATA              the lfw-faceswap folder (default ../shared/data/lfw-faceswap).
#   SKIP_KERAS        1: leave the Keras peer out.
#   ONLY_RUST         1: leave every peer out (the Rust runs alone, e.g. with AUGMENT).
#   AUGMENT           an `--augment` spec: adds a run `rust-f32-augment` training with it,
#                     to measure what the augmentations cost an epoch against `rust-f32`.
#   SKIP_RETAIN       1: leave out the PyTorch channels-last runs with glibc told to keep
#                     freed memory (GLIBC_TUNABLES, the policy `train` applies itself on the
#                     CPU: df_sys::memory), run by default as information.
#   TRAIN_BIN         a prebuilt `train` example (default: built here, release).
#   OUT_DIR           where epoch.md/epoch.json go (default target/bench-report).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$root/../shared/data/lfw-faceswap}
[ -d "$data/train" ] || { echo "epoch.sh: no $data/train (the shared lfw-faceswap set)" >&2; exit 1; }
rounds=${ROUNDS:-1}
epochs=${EPOCHS:-1}
threads=${DF_BENCH_THREADS:-$(nproc)}
workers=${WORKERS:-2}
py=${PYTHON:-$root/.venv-tools/bin/python}
out=${OUT_DIR:-$root/target/bench-report}
mkdir -p "$out"
bin=${TRAIN_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --example train >&2)
  bin="$root/target/release/examples/train"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
raw="$out/epoch.jsonl"
: > "$raw"

rust() { # name precision [augment spec]
  local dir="$tmp/$1" aug=()
  [ -z "${3:-}" ] || aug=(--augment "$3")
  OMP_NUM_THREADS=$threads "$bin" --model meso_inception4 --data "$data/train" --val "$data/val" "${aug[@]}" \
    --epochs "$epochs" --batch-size 16 --dropout 0.2 --input-size 128 --center-crop 0.512 \
    --seed 1 --device cpu --workers "$workers" --precision "$2" --quiet --overwrite --profile \
    --out "$dir" > /dev/null
  "$py" - "$1" "$dir/history.json" >> "$raw" <<'EOF'
import json, sys
h = json.load(open(sys.argv[2]))
s = [e["metrics"]["seconds"] for e in h["epochs"]]
m = h["epochs"][-1]["metrics"]
first = h["epochs"][0]["metrics"]
phases = {k[5:]: first[k] for k in ("time_data", "time_forward", "time_backward", "time_step", "time_validation")}
print(json.dumps({"name": sys.argv[1], "epoch_seconds": s, "phases": phases,
                  "val_loss": m.get("val_loss"), "val_accuracy": m.get("val_accuracy")}))
EOF
}
torch_loop() { # name layout precision
  "$py" "$root/benches/peers/torch_train_lfw.py" --data "$data" --epochs "$epochs" \
    --threads "$threads" --workers "$workers" --layout "$2" --precision "$3" \
    | "$py" -c '
import json, sys
r = json.load(sys.stdin)
e = r["epochs"]
ph = dict(e[0]["phases"], validation=e[0]["val_seconds"])
print(json.dumps({"name": sys.argv[1], "epoch_seconds": [x["train_seconds"] + x["val_seconds"] for x in e],
                  "phases": ph, "val_loss": e[-1]["val_loss"], "val_accuracy": e[-1]["val_accuracy"]}))' "$1" >> "$raw"
}
keras() {
  KERAS_BACKEND=torch "$py" "$root/benches/peers/keras_train_lfw.py" --data "$data" \
    --epochs "$epochs" --threads "$threads" \
    | "$py" -c '
import json, sys
r = json.load(sys.stdin)
print(json.dumps({"name": "keras", "epoch_seconds": r["epoch_seconds"], "val_accuracy": r["accuracy"]}))' >> "$raw"
}
retain_tunables=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647
configs=("rust f32 rust-f32" "rust bf16 rust-bf16" "torch_loop contiguous f32 torch-nchw-f32"
         "torch_loop channels_last f32 torch-cl-f32" "torch_loop channels_last bf16 torch-cl-bf16")
[ "${SKIP_RETAIN:-0}" = 1 ] || configs+=("torch_retain channels_last f32 torch-cl-f32-retain"
                                         "torch_retain channels_last bf16 torch-cl-bf16-retain")
[ "${SKIP_KERAS:-0}" = 1 ] || configs+=("keras keras")
[ "${ONLY_RUST:-0}" = 1 ] && configs=("rust f32 rust-f32")
[ -z "${AUGMENT:-}" ] || configs+=("rust_aug f32 rust-f32-augment")
n=${#configs[@]}
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < n; i++)); do
    c=(${configs[$(((i + r) % n))]})
    name=${c[-1]}
    echo "[epoch] round $((r + 1))/$rounds: $name" >&2
    case ${c[0]} in
      rust) rust "$name" "${c[1]}" ;;
      rust_aug) rust "$name" "${c[1]}" "$AUGMENT" ;;
      torch_loop) torch_loop "$name" "${c[1]}" "${c[2]}" ;;
      torch_retain) GLIBC_TUNABLES=$retain_tunables torch_loop "$name" "${c[1]}" "${c[2]}" ;;
      keras) keras ;;
    esac
  done
done

cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
flags="$(lscpu | sed -n 's/^Flags:[[:space:]]*//p' | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_fp16|amx_bf16|amx_tile)$' | tr '\n' ' ')"
commit="$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$py" - "$raw" "$out/epoch.md" "$cpu_model" "$flags" "$threads" "$commit" "$rounds" <<'EOF'
import json, statistics, sys, datetime
raw, md, cpu, flags, threads, commit, rounds = sys.argv[1:]
runs = {}
for line in open(raw):
    r = json.loads(line)
    runs.setdefault(r["name"], []).append(r)
med = {k: statistics.median(x["epoch_seconds"][0] for x in v) for k, v in runs.items()}
best_torch = {"f32": med.get("torch-cl-f32"), "bf16": med.get("torch-cl-bf16")}
retain_torch = {"f32": med.get("torch-cl-f32-retain"), "bf16": med.get("torch-cl-bf16-retain")}
rows = ["| run | s/epoch (median) | range | torch-cl same precision / this | torch-cl retaining memory / this | keras / this | val acc (last round) |",
        "|---|---|---|---|---|---|---|"]
for k, v in runs.items():
    s = [x["epoch_seconds"][0] for x in v]
    prec = "bf16" if "bf16" in k else "f32"
    vs_torch = f"{best_torch[prec] / med[k]:.2f}" if best_torch.get(prec) else "-"
    vs_retain = f"{retain_torch[prec] / med[k]:.2f}" if retain_torch.get(prec) else "-"
    vs_keras = f"{med['keras'] / med[k]:.2f}" if "keras" in med else "-"
    acc = v[-1].get("val_accuracy")
    rows.append(f"| {k} | {med[k]:.1f} | {min(s):.1f}-{max(s):.1f} | {vs_torch} | {vs_retain} | {vs_keras} | {acc if acc is None else round(acc, 3)} |")
phases = [f"- {k}: " + ", ".join(f"{p} {t:.1f} s" for p, t in v[-1]["phases"].items())
          for k, v in runs.items() if v[-1].get("phases")]
text = "\n".join([
    f"Machine: {cpu} ({flags.strip()}), {threads} threads; commit {commit}; {rounds} round(s); "
    f"{datetime.date.today()}.", "", *rows, "",
    *([f"Augmentations (`rust-f32-augment` / `rust-f32`): {med['rust-f32-augment'] / med['rust-f32']:.3f}", ""]
      if "rust-f32-augment" in med and "rust-f32" in med else []),
    "Time per phase of the first epoch, last round (data: waiting for the batch; forward: "
    "forward pass and loss; step: optimizer, loss read, metrics):", *phases, ""])
open(md, "w").write(text)
print(text)
EOF
