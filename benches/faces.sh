#!/usr/bin/env bash
# Face detection side by side: benches/faces.rs (df-face) and benches/peers/faces_facenet.py
# (facenet-pytorch 2.6.0), same files, same threads, two rounds in turn, on
#   - lfw: the first 100 real photos of ../shared/data/lfw-faceswap/val (250×250);
#   - 1080p: four 1920×1080 frames made from lfw photos (faces pasted at 1×, 2× and 3×
#     on a grey background; made once into $OUT_DIR/frames_1080p).
# Usage: benches/faces.sh   (OUT_DIR default target/bench-report/faces; DF_BENCH_THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT_DIR:-target/bench-report/faces}
PY=.venv-tools/bin/python
LFW=../shared/data/lfw-faceswap/val/real
[[ -d $LFW ]] || { echo "missing $LFW" >&2; exit 1; }
mkdir -p "$OUT_DIR/frames_1080p"
"$PY" - "$LFW" "$OUT_DIR/frames_1080p" <<'PY'
import os, sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(src))[:12]
for f in range(4):
    frame = Image.new("RGB", (1920, 1080), (100, 100, 100))
    x = 40
    for k, scale in enumerate((1.0, 2.0, 3.0)):
        im = Image.open(os.path.join(src, names[3 * f + k])).convert("RGB")
        im = im.resize((int(im.size[0] * scale), int(im.size[1] * scale)), Image.BILINEAR)
        frame.paste(im, (x, 40))
        x += im.size[0] + 40
    frame.save(os.path.join(out, f"frame_{f}.png"))
PY
THREADS=${DF_BENCH_THREADS:-$(nproc)}
{ lscpu | grep -E "Model name|Flags"; echo "threads $THREADS"; git rev-parse --short HEAD; } > "$OUT_DIR/machine.txt"
: > "$OUT_DIR/faces.jsonl"
cargo bench --bench faces --no-run >/dev/null 2>&1
for round in 1 2; do
    for set in lfw 1080p; do
        if [[ $set == lfw ]]; then dirs=("$LFW" --limit 100); else dirs=("$OUT_DIR/frames_1080p"); fi
        cargo bench --bench faces -- --name "$set" --threads "$THREADS" "${dirs[@]}" 2>/dev/null | tee -a "$OUT_DIR/faces.jsonl"
        "$PY" benches/peers/faces_facenet.py --name "$set" --threads "$THREADS" "${dirs[@]}" | tee -a "$OUT_DIR/faces.jsonl"
    done
done
