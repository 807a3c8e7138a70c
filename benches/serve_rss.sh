#!/usr/bin/env bash
# Resident memory of `serve` over 10,000 requests: a randomly initialised meso4 (SIZE px),
# 500 requests to warm up, its RSS (VmRSS) read, then N (10,000) requests at concurrency 8
# (a tenth of them a truncated JPEG: 422), its RSS read again. Loopback only, bounded.
#
# Usage: benches/serve_rss.sh     (N=10000 SIZE=256 THREADS=2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${N:-10000}
size=${SIZE:-256}
threads=${THREADS:-2}
photo=$(ls "$root"/../shared/data/lfw-faceswap/val/real/*.jpg 2>/dev/null | head -1 || true)
photo=${photo:-$root/fuzz/seeds/image_decode/rgb.jpg}
cargo build --release --example serve >&2
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
client() { cargo bench -q --bench serve_load -- "$@"; }
client --checkpoint "$tmp/m.safetensors" --size "$size"
head -c "$(( $(wc -c < "$photo") / 2 ))" "$photo" > "$tmp/truncated.jpg"
target/release/examples/serve --weights "$tmp/m.safetensors" --cpu --addr 127.0.0.1:18471 \
  --threads "$threads" > "$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q listening "$tmp/log" && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
client --url 127.0.0.1:18471 --image "$photo" --concurrency 8 --requests 500 --label warmup
before=$(rss)
client --url 127.0.0.1:18471 --image "$photo" --concurrency 8 --requests $((n * 9 / 10)) --label photos
client --url 127.0.0.1:18471 --image "$tmp/truncated.jpg" --concurrency 8 --requests $((n / 10)) --warmup 0 --label truncated
after=$(rss)
lscpu | grep -E "^Model name"
echo "serve RSS after 500 warm-up requests: $before kB; after $n more: $after kB (change $((after - before)) kB)"
