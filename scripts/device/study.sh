#!/usr/bin/env bash
# The study's set at the study's input sizes on a CUDA machine (H100/H200 with PyTorch
# 2.11.0 in /opt/torch/.venv, no cargo, no network), within 5–6 minutes.
#
# Here (the build machine):
#   scripts/device/study.sh --prepare
# builds the release `compare` and `final_model` examples and copies them with a subset of
# ../shared/data/lfw-faceswap (400 + 400 training, 100 + 100 validation images)
# into target/device/ (26 MiB in all, measured; the carry limit is 64 MiB). Then, through
# the device tool:
#   run(command="scripts/device/study.sh", carry=["target/device"], timeout_s=420)
# There it runs `compare --models study --recipe study --device cuda` at each model's own
# input size (the Keras default: Meso 256, VGG16-C/ResNet50/B0 224, B3 300, B5 456,
# B7 600, InceptionResNetV2 299), 3 epochs, the face crop, and writes the table row by row
# to $OUT/study/comparison.md (a row per model, as each ends), so a run cut short by the
# time limit still returns the rows it finished. The table goes into docs/study.md.
# scripts/device/final_model.sh runs the final-model story on the same carried files.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=target/device

if [[ "${1:-}" == "--prepare" ]]; then
    src=../shared/data/lfw-faceswap
    [[ -d $src/train && -d $src/val ]] || { echo "missing $src" >&2; exit 1; }
    cargo build --release --example compare --example final_model
    rm -rf "$DEV.tmp" && mkdir -p "$DEV.tmp/data"
    cp target/release/examples/compare target/release/examples/final_model "$DEV.tmp/"
    for split in train:400 val:100; do
        name=${split%%:*} n=${split##*:}
        for class in fake real; do
            mkdir -p "$DEV.tmp/data/$name/$class"
            find "$src/$name/$class" -type f | sort | head -n "$n" \
                | xargs -I{} cp {} "$DEV.tmp/data/$name/$class/"
        done
    done
    rm -rf "$DEV" && mv "$DEV.tmp" "$DEV"
    du -sh "$DEV"
    exit 0
fi

source scripts/device/env.sh compare
# 330 s for the whole set; rows already written survive the cut.
timeout 330 "$DEV/compare" --models study --recipe study \
    --data "$DEV/data/train" --val "$DEV/data/val" --center-crop 0.512 \
    --epochs 3 --batch-size 16 --device cuda --out "$OUT/study" || echo "compare ended with $?"
cat "$OUT/study/comparison.md" 2>/dev/null || echo "no row finished"
