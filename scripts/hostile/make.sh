#!/usr/bin/env bash
# Makes the hostile inputs of issue 22 into OUT_DIR (created; the parts listed below are
# replaced when there already), for checking by hand what the programs do with them.
#
#   scripts/hostile/make.sh OUT_DIR
#
#   images/            a flat folder of "photos" (`predict OUT_DIR/images`):
#     good.png, photo.jpg      two readable 32×24 pictures (no face)
#     z.jpg                    a link to /dev/zero: reading it never ends
#     p.jpg                    a FIFO: opening it blocks until a writer comes
#     self -> .  again -> .    two link loops: a naive walk never ends (2^40 paths)
#     "new<LF>line.png"        a name with a newline (a forged output line)
#     "<ESC>[31mred<ESC>[0m.png" a name with ANSI escape codes (drives the terminal)
#     bad-<0xff>.png, bad-<0xfe>.png
#                              two names that are not UTF-8 and differ only in the
#                              invalid byte (the same name once printed lossily)
#     truncated.jpg            photo.jpg cut in half (no end-of-image marker)
#   weights/           zero.safetensors, zero.h5 -> /dev/zero; w.safetensors a FIFO
#   run/.lock          a planted link to ../victim.txt (a run folder's lock file that
#                      points elsewhere: nothing may write through it)
#   victim.txt         the file that link points at, holding one line
#   videos/            scripts/hostile/videos.sh's videos, when that script is there
#
# Docs: docs/reliability.md lists what each program does with these.
set -euo pipefail

if [ $# -ne 1 ]; then
  sed -n '2,26p' "$0" >&2
  exit 2
fi
out=$1
here=$(cd -- "$(dirname -- "$0")" && pwd)
mkdir -p -- "$out"
rm -rf -- "$out/images" "$out/weights" "$out/run" "$out/victim.txt"

# Two small pictures, embedded so that no image tool is needed.
png='iVBORw0KGgoAAAANSUhEUgAAACAAAAAYCAIAAAAUMWhjAAAAKklEQVR4nO3NsQkAAAjAsAoO4tWe7hO6tXRPwBT8nTSvCQgICAgICAjctPPSArxCFa1sAAAAAElFTkSuQmCC'
jpg='/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAYACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDw600rp8tbVppXT5a6W00rp8tbNppXT5a+hr5j5nDlWbbanNWmldPlratNK6fLXS2mldPlratNK6fLXj18x8z9KyrNttSjaaV0+Wtm00rp8tFFeJXrz7n865ViammptWmldPlrZtNK6fLRRXjV68+5+k5Viammp//Z'

img=$out/images
mkdir -p -- "$img"
printf '%s' "$png" | base64 -d >"$img/good.png"
printf '%s' "$jpg" | base64 -d >"$img/photo.jpg"
ln -s /dev/zero "$img/z.jpg"
mkfifo -- "$img/p.jpg"
ln -s . "$img/self"
ln -s . "$img/again"
cp -- "$img/good.png" "$img/"$'new\nline.png'
cp -- "$img/good.png" "$img/"$'\e[31mred\e[0m.png'
cp -- "$img/good.png" "$img/"$'bad-\xff.png'
cp -- "$img/good.png" "$img/"$'bad-\xfe.png'
size=$(wc -c <"$img/photo.jpg")
head -c $((size / 2)) -- "$img/photo.jpg" >"$img/truncated.jpg"

w=$out/weights
mkdir -p -- "$w"
ln -s /dev/zero "$w/zero.safetensors"
ln -s /dev/zero "$w/zero.h5"
mkfifo -- "$w/w.safetensors"

printf 'victim: nothing may write here\n' >"$out/victim.txt"
mkdir -p -- "$out/run"
ln -s ../victim.txt "$out/run/.lock"

if [ -f "$here/videos.sh" ]; then
  bash "$here/videos.sh" "$out/videos"
fi
ls -lAb -- "$img" "$w" "$out/run"
