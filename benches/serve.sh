#!/usr/bin/env bash
# The serve load bench: images per second and p50/p99 latency at concurrency 1, 8 and 32
# (benches/serve_load.rs, keep-alive HTTP/1.1 on the loopback, REQUESTS per level, each
# level bounded to 120 s) against `serve` (batching on its inference thread) and the
# Python peer (benches/peers/serve_torch.py: FastAPI + uvicorn, the same model exported to
# TorchScript by `export`, torch.jit.load), batch 1 per request and with its own batching;
# all with THREADS intra-op threads. The model: a randomly initialised meso4 at SIZE px
# (the speed does not depend on the weights). The photo: an lfw one when ../shared is
# there, else the committed fuzz/seeds/image_decode/rgb.jpg.
#
# Usage: benches/serve.sh        (THREADS=2 REQUESTS=400 SIZE=256 by default; PYTHON: the
#                                 set-up's .venv-tools/bin/python with fastapi and uvicorn)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
threads=${THREADS:-2}
requests=${REQUESTS:-400}
size=${SIZE:-256}
py=${PYTHON:-$root/.venv-tools/bin/python}
"$py" -c "import fastapi, uvicorn, torch" || { echo "serve.sh: $py lacks fastapi/uvicorn/torch" >&2; exit 1; }
photo=$(ls "$root"/../shared/data/lfw-faceswap/val/real/*.jpg 2>/dev/null | head -1 || true)
photo=${photo:-$root/fuzz/seeds/image_decode/rgb.jpg}
cargo build --release --example serve --example export >&2
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
client() { cargo bench -q --bench serve_load -- "$@"; }
client --checkpoint "$tmp/m.safetensors" --size "$size"
target/release/examples/export --weights "$tmp/m.safetensors" --format torchscript \
  --out "$tmp/m.pt" >&2
# Waits (at most 120 s) until the port answers /healthz.
ready() {
  for _ in $(seq 1200); do
    if "$py" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/healthz', timeout=1)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "serve.sh: nothing answers on port $1" >&2; return 1
}
run() { # label port command...
  local label=$1 port=$2; shift 2
  "$@" > "$tmp/$label.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  ready "$port" || { cat "$tmp/$label.log" >&2; exit 1; }
  client --url "127.0.0.1:$port" --image "$photo" --concurrency 1,8,32 \
    --requests "$requests" --label "$label"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}
lscpu | grep -E "^Model name" >&2
echo "photo: $photo, meso4 at ${size} px, $threads intra-op threads, $requests requests a level" >&2
run serve 18461 target/release/examples/serve --weights "$tmp/m.safetensors" --cpu \
  --addr 127.0.0.1:18461 --threads "$threads" --max-batch 8 --max-wait-ms 5 --queue 256
run torch-batch1 18462 env OMP_NUM_THREADS="$threads" "$py" benches/peers/serve_torch.py \
  --model "$tmp/m.pt" --port 18462 --threads "$threads" --size "$size"
run torch-batching 18463 env OMP_NUM_THREADS="$threads" "$py" benches/peers/serve_torch.py \
  --model "$tmp/m.pt" --port 18463 --threads "$threads" --size "$size" --batching 8 --wait-ms 5
