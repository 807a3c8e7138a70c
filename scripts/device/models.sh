#!/usr/bin/env bash
# The CUDA benches of the models (benches/models.rs) beside their peers
# (benches/peers/models_torch.py), and the NCCL and CUDA test binaries, on a CUDA machine
# (H100/H200, PyTorch 2.11.0 in /opt/torch/.venv, no cargo, no network), within a deadline.
#
# Here (the build machine, no GPU needed):
#   scripts/setup.sh --nccl && scripts/device/models.sh --prepare
# builds the release models bench, the `nccl` and `cuda` test binaries into target/device/
# and downloads the Keras 3 wheels the exact-definition peer needs into .whl/ (the device's
# image has timm and torchvision, not Keras). Then, through the device tool:
#   run(command="scripts/device/models.sh", carry=["target/device", ".whl"], timeout_s=570)
# There, in order of priority, each part under what is left of DEADLINE seconds (default
# 520), every result line written to $OUT as it is measured:
#   1. tests/nccl.rs (ProcessGroupNCCL, world size 1)             -> nccl_tests.txt
#   2. every model at its study size, eval batch 1 / training batch and the training step,
#      f32 and bf16, Rust then timm/torchvision, NCHW input       -> models.jsonl
#   3. EfficientNet-B7 at 600 in f16 (GradScaler), both sides      -> models.jsonl
#   4. the same with channels-last input (cuDNN NHWC), both sides   -> models.jsonl
#   5. tests/cuda.rs                                               -> cuda_tests.txt
#   6. the study's models in Keras 3 (exact definitions)          -> models.jsonl
# and benches/peers/models_report.py makes models.md of whatever finished. TRAIN_ONLY=1
# runs part 1, the training steps (f32, bf16) of both sides, then part 5; LARGE_ONLY=1
# part 1, B7 in f16 (both sides) and both layouts of B3-B7 and InceptionResNetV2 (Rust).
# LAYOUT_ONLY=1: part 1, then both layouts (NCHW, channels-last) of every model, Rust only,
# eval at the training batch and the training step, f32 and bf16, model after model, the
# three never measured channels-last after the multi-tensor step first (B6, B7,
# InceptionResNetV2): what choosing the CUDA default layout from measurement needs
# (docs/runs/h200-models-train-c3e571e.md, "Channels-last on CUDA").
set -uo pipefail
cd "$(dirname "$0")/../.."
DEV=target/device

test_binary() { # feature, test name: the path of the built test binary
    cargo test --features "$1" --test "$2" --no-run --message-format=json \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep "/$2-" | tail -1
}

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    mkdir -p "$DEV"
    bench=$(cargo bench --bench models --no-run --message-format=json \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/models-' | tail -1)
    cp "$bench" "$DEV/models_bench"
    # The registry (the peer and the lists below read the models from it).
    cargo run --quiet --example summary -- --list --json >"$DEV/models.json"
    cp "$(test_binary nccl nccl)" "$DEV/nccl_tests"
    cp "$(test_binary cuda cuda)" "$DEV/cuda_tests"
    strip --strip-debug "$DEV"/models_bench "$DEV"/nccl_tests "$DEV"/cuda_tests
    grep -qx '/.whl/' "$(git rev-parse --git-common-dir)/info/exclude" 2>/dev/null \
        || echo '/.whl/' >>"$(git rev-parse --git-common-dir)/info/exclude"
    .venv-tools/bin/python -m pip download -q --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
        keras==3.15.1 namex==0.1.0 optree==0.20.0
    du -sh "$DEV" .whl
    exit 0
fi

source scripts/device/env.sh models_bench
# The model registry, `summary --list --json` as --prepare wrote it: the peer's models and
# the lists below come from it.
export DF_MODELS_JSON=$DEV/models.json
[[ -f $DF_MODELS_JSON ]] || { echo "error: $DF_MODELS_JSON is missing: run scripts/device/models.sh --prepare first" >&2; exit 1; }
registry_filter() { # `study`: the study's compared models; `except F`: those not in filter F
    "$PY" - "$@" <<'PY'
import json, os, sys
rows = json.load(open(os.environ["DF_MODELS_JSON"]))
if sys.argv[1] == "study":
    names = [r["name"] for r in rows if (r["study_recipe"] or {}).get("in_comparison")]
else:
    seen = set(sys.argv[2].replace("/", "").split(","))
    names = [r["name"] for r in rows if r["name"] not in seen]
print(",".join(n + "/" for n in names))
PY
}
START=$(date +%s)
DEADLINE=${DEADLINE:-520}
left() { echo $((DEADLINE - ($(date +%s) - START))); }
part() { # seconds wanted at most, then the command: runs it under what is left
    local want=$1
    shift
    local t
    t=$(left)
    ((t > want)) && t=$want
    if ((t < 15)); then
        echo "skipped (deadline): $*" | tee -a "$OUT/skipped.txt"
        return
    fi
    echo "== $* (at most ${t} s)"
    timeout "$t" "$@" || echo "ended with $?: $*" | tee -a "$OUT/skipped.txt"
}
JSONL=$OUT/models.jsonl
RUST=("$DEV/models_bench" --device cuda --threads 16 --min-time 0.3 --out "$JSONL")
PEER=("$PY" benches/peers/models_torch.py --device cuda --threads 16 --min-time 0.3 --out "$JSONL")
"$PY" -c 'import timm, torchvision; print("timm", timm.__version__, "torchvision", torchvision.__version__)' \
    | tee -a "$OUT/machine.txt"
export PYTHONUNBUFFERED=1

part 60 bash -c "$DEV/nccl_tests --test-threads 1 --nocapture > $OUT/nccl_tests.txt 2>&1"
tail -3 "$OUT/nccl_tests.txt"
if [[ ${LARGE_ONLY:-0} == 1 ]]; then
    # The large models' layouts and B7 in f16 (LARGE_ONLY=1): both layouts in one run.
    large=efficientnet_b3/,efficientnet_b4/,efficientnet_b5/,efficientnet_b6/,efficientnet_b7/,inception_resnet_v2/
    part 30 "${RUST[@]}" --precision f16 --filter efficientnet_b7/
    part 30 "${PEER[@]}" --impl user --precision f16 --filter efficientnet_b7/
    part 60 "${RUST[@]}" --precision f32,bf16 --modes eval,train --filter "$large"
    part 60 "${RUST[@]}" --precision f32,bf16 --modes eval,train --layout channels_last --filter "$large"
    "$PY" benches/peers/models_report.py "$OUT/models.md" "$JSONL" >/dev/null
    echo "done in $(($(date +%s) - START)) s"
    exit 0
fi
if [[ ${LAYOUT_ONLY:-0} == 1 ]]; then
    groups=(efficientnet_b6/ efficientnet_b7/ inception_resnet_v2/
        efficientnet_b0/,efficientnet_b1/,efficientnet_b2/ resnet50/,resnet101/,resnet152/
        vgg16/,vgg16_c/ meso4/,meso_inception4/ efficientnet_b3/,efficientnet_b4/,efficientnet_b5/)
    # Then the registered models of no group above (xception ...).
    rest=$(registry_filter except "$(IFS=,; echo "${groups[*]}")")
    [[ -n $rest ]] && groups+=("$rest")
    for f in "${groups[@]}"; do
        for layout in contiguous channels_last; do
            part 45 "${RUST[@]}" --precision f32,bf16 --modes eval,train --layout "$layout" --filter "$f"
        done
    done
    "$PY" benches/peers/models_report.py "$OUT/models.md" "$JSONL" >/dev/null
    echo "done in $(($(date +%s) - START)) s"
    exit 0
fi
if [[ ${TRAIN_ONLY:-0} == 1 ]]; then
    # A shorter pass: the training steps only, both sides (TRAIN_ONLY=1).
    part 150 "${RUST[@]}" --precision f32,bf16 --modes train
    part 150 "${PEER[@]}" --impl user --precision f32,bf16 --modes train
    part 40 bash -c "$DEV/cuda_tests --test-threads 1 > $OUT/cuda_tests.txt 2>&1"
    tail -3 "$OUT/cuda_tests.txt"
    "$PY" benches/peers/models_report.py "$OUT/models.md" "$JSONL" >/dev/null
    echo "done in $(($(date +%s) - START)) s"
    exit 0
fi
part 110 "${RUST[@]}" --precision f32,bf16
part 110 "${PEER[@]}" --impl user --precision f32,bf16
part 30 "${RUST[@]}" --precision f16 --filter efficientnet_b7/
part 30 "${PEER[@]}" --impl user --precision f16 --filter efficientnet_b7/
part 60 "${RUST[@]}" --precision f32,bf16 --modes eval,train --layout channels_last
part 60 "${PEER[@]}" --impl user --precision f32,bf16 --modes eval,train --layout channels_last
part 60 bash -c "$DEV/cuda_tests --test-threads 1 > $OUT/cuda_tests.txt 2>&1"
tail -3 "$OUT/cuda_tests.txt"
if ls .whl/keras-*.whl >/dev/null 2>&1; then
    site=$(mktemp -d)  # private, not a shared /tmp/site another user could plant
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
    export PYTHONPATH=$site
    part 90 "${PEER[@]}" --impl keras --precision f32,bf16 --filter "$(registry_filter study)"
fi
"$PY" benches/peers/models_report.py "$OUT/models.md" "$JSONL" >/dev/null
echo "done in $(($(date +%s) - START)) s"
