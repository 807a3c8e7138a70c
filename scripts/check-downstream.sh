#!/usr/bin/env bash
# Checks that the crates work from another project, as the README says:
#
# 1. downstream/ (a project using the crates by path, with the README's build.rs) is built
#    and its binary started directly: copied to a temporary directory (so no rpath
#    relative to this clone can help) and run without LD_LIBRARY_PATH. It must start and
#    print its line; it also writes an untrained checkpoint and a few photos.
# 2. The README's "First program" (its Cargo.toml and src/main.rs, taken from README.md
#    between the `<!-- first-program: ... -->` markers, exactly as written there, the
#    `path` of the `deepfake` dependency pointed at this clone) is built as a fresh crate
#    and run on that checkpoint and those photos: it must print one verdict line a photo.
#
# The fresh crate lives in a private temporary folder under downstream/, so that this
# clone's .cargo/config.toml (libtorch's path, the rpath) applies to it as the README's
# .cargo/config.toml would, and it builds into the workspace's target/ (libtorch's
# bindings are not rebuilt). Writing the README's own .cargo/config.toml there would name
# libtorch by another path and make cargo rebuild them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

(cd downstream && cargo build --profile test --locked 2>&1 | tail -3)
tmp=$(mktemp -d)
crate=$(mktemp -d "$repo/downstream/first-program.XXXXXX")
trap 'rm -rf "$tmp" "$crate"' EXIT
cp target/debug/deepfake-downstream "$tmp/"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH -u LIBTORCH ./deepfake-downstream model.safetensors photos)
echo "$out"
grep -q "deepfake-downstream: meso4 logits \[2, 1\]" <<<"$out"

# The fenced block after `<!-- first-program: NAME -->` in README.md.
block() {
  awk -v marker="<!-- first-program: $1 -->" '
    $0 == marker { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }
  ' README.md
}
mkdir -p "$crate/src"
block Cargo.toml >"$crate/Cargo.toml"
block src/main.rs >"$crate/src/main.rs"
for f in Cargo.toml src/main.rs; do
  [ -s "$crate/$f" ] || { echo "check-downstream: no $f block in README.md" >&2; exit 1; }
done
grep -q '^deepfake = { path = "../deepfake" }$' "$crate/Cargo.toml" \
  || { echo "check-downstream: README's Cargo.toml lost its deepfake = { path = \"../deepfake\" } line" >&2; exit 1; }
sed -i "s|^deepfake = { path = \"../deepfake\" }\$|deepfake = { path = \"$repo\" }|" "$crate/Cargo.toml"
# Its lock file starts from the workspace's, so the versions are those the tests ran with.
# The test profile is the dev profile the README's Cargo.toml sets (it inherits it), the
# one downstream/ builds with: the two share their dependencies' build.
cp Cargo.lock "$crate/Cargo.lock"
(cd "$crate" && cargo build --profile test 2>&1 | tail -3)
name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$crate/Cargo.toml" | head -1)
lines=$(cd "$tmp" && "$repo/target/debug/$name" model.safetensors photos)
echo "$lines"
n=$(grep -c '^{"path":".*","p_fake":[0-9.e-]*,"label":"\(fake\|real\)"}$' <<<"$lines" || true)
[ "$n" = 4 ] || { echo "check-downstream: the first program printed $n verdict lines, not 4" >&2; exit 1; }
echo "check-downstream: the README's first program built and scored $n photos"
