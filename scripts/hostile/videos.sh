#!/usr/bin/env bash
# Makes the hostile videos of issue 22 into OUT_DIR (created), with the ffmpeg the library
# runs: $DF_FFMPEG, else `ffmpeg` on PATH, else the set-up's copy in the cache
# (${DEEPFAKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deepfake}/ffmpeg/ffmpeg).
#
#   scripts/hostile/videos.sh OUT_DIR
#
#   huge-4000.mp4    4000×4000, 2 s at 2 fps (about 250 KB): `predict --fps 1000
#                    --max-frames 60` on it once drove ffmpeg to 19 GB
#   big-1000.mp4     1000×1000, 2 s at 2 fps: memory against --fps 1/100/1000
#   short-0.4s.mp4   0.4 s at 25 fps: "found no video frame" before
#   one-frame.mp4    a single frame: `--evenly` reported 32 frames before
#   audio-only.mp4   a sine tone and no picture: must say "no video stream in it"
#   b.mp4            a text file, and `concat:b.mp4` (a real video) beside it: ffmpeg read
#                    the name `concat:b.mp4` as its concat protocol and decoded b.mp4
#   rotated.mp4      320×240 stored, shown turned by 90° (display matrix): frames are
#                    240×320
#
# Called by scripts/hostile/make.sh; each file is small and made in a few seconds.
set -euo pipefail

if [ $# -ne 1 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
out=$1
mkdir -p -- "$out"

if [ -n "${DF_FFMPEG:-}" ]; then
  ffmpeg=$DF_FFMPEG
elif command -v ffmpeg >/dev/null 2>&1; then
  ffmpeg=$(command -v ffmpeg)
else
  ffmpeg=${DEEPFAKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deepfake}/ffmpeg/ffmpeg
fi
if [ ! -x "$ffmpeg" ]; then
  echo "videos.sh: no ffmpeg ($ffmpeg): run scripts/setup.sh or set DF_FFMPEG" >&2
  exit 1
fi

ff() { "$ffmpeg" -nostdin -hide_banner -v error -y "$@"; }
# The output names are passed as file: URLs so that none is read as a protocol.
abs() { printf 'file:%s/%s' "$(cd -- "$out" && pwd)" "$1"; }

ff -f lavfi -i testsrc=size=4000x4000:rate=2:duration=2 -c:v libx264 -preset ultrafast \
  -pix_fmt yuv420p "$(abs huge-4000.mp4)"
ff -f lavfi -i testsrc=size=1000x1000:rate=2:duration=2 -c:v libx264 -preset ultrafast \
  -pix_fmt yuv420p "$(abs big-1000.mp4)"
ff -f lavfi -i testsrc=size=160x120:rate=25:duration=0.4 -c:v mpeg4 "$(abs short-0.4s.mp4)"
ff -f lavfi -i testsrc=size=160x120:rate=25 -frames:v 1 -c:v mpeg4 "$(abs one-frame.mp4)"
ff -f lavfi -i sine=frequency=440:duration=1 -c:a aac "$(abs audio-only.mp4)"
printf 'this is a text file named b.mp4, not a video\n' >"$out/b.mp4"
ff -f lavfi -i testsrc=size=160x120:rate=5:duration=1 -c:v mpeg4 "$(abs 'concat:b.mp4')"
ff -f lavfi -i testsrc=size=320x240:rate=5:duration=1 -c:v mpeg4 "$(abs plain-320x240.mp4)"
ff -display_rotation:v:0 90 -i "$(abs plain-320x240.mp4)" -c copy "$(abs rotated.mp4)"
rm -f -- "$out/plain-320x240.mp4"
ls -l -- "$out"
