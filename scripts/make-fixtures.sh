#!/usr/bin/env bash
# Generates the test fixtures from the independent references (Keras, scikit-learn,
# PyTorch) with the Python tools that scripts/setup.sh installs:
#
#   scripts/fixtures/NAME.py OUT_DIR   writes fixtures/generated/NAME/
#
# First the model registry is written to fixtures/generated/models.json
# (`cargo run --example summary -- --list --json`) for the scripts that iterate it.
# A fixture set is regenerated when its script is newer than its `.done` stamp (or, for
# a script that reads the registry, when models.json is), so the command is cheap to repeat. Fixtures are never edited by hand.
#
# The small, stable sets with a directory under fixtures/reference/ are committed (each
# with a SOURCE.md naming the script and versions), so `cargo test` needs no Python for
# them: this skips them, and `scripts/make-fixtures.sh --refresh [NAME]` regenerates them
# in place (then review the diff and update SOURCE.md's versions).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv-tools/bin/python"
[ -x "$py" ] || { echo "[fixtures] error: run scripts/setup.sh --python-tools first" >&2; exit 1; }
export KERAS_BACKEND=torch PYTHONHASHSEED=0 CUDA_VISIBLE_DEVICES=""
refresh=0
if [ "${1:-}" = "--refresh" ]; then refresh=1; shift; fi
only=${1:-}

# The model registry as JSON (`summary --list --json`): the scripts that iterate the
# registry (scripts/registry_json.py) read it through DF_MODELS_JSON. Replaced only when
# its content changes, so that a registry change (a new model) regenerates those sets.
models="$root/fixtures/generated/models.json"
mkdir -p "$root/fixtures/generated"
models_new=$(mktemp "$root/fixtures/generated/.models.json.XXXXXX")
trap 'rm -f "$models_new"' EXIT
(cd "$root" && cargo run --quiet --example summary -- --list --json) > "$models_new"
if cmp -s "$models_new" "$models"; then rm -f "$models_new"; else mv "$models_new" "$models"; fi
export DF_MODELS_JSON="$models"
for script in "$root"/scripts/fixtures/*.py; do
  name=$(basename "$script" .py)
  [ -n "$only" ] && [ "$only" != "$name" ] && continue
  committed="$root/fixtures/reference/$name"
  if [ -d "$committed" ]; then
    if [ "$refresh" = 1 ]; then
      echo "[fixtures] $name: regenerating the committed set" >&2
      tmp=$(mktemp -d)
      "$py" "$script" "$tmp"
      find "$committed" -mindepth 1 ! -name SOURCE.md -exec rm -rf {} +
      cp -r "$tmp"/. "$committed"/
      rm -rf "$tmp"
    else
      echo "[fixtures] $name: committed (fixtures/reference/$name)" >&2
    fi
    continue
  fi
  [ "$refresh" = 1 ] && continue
  out="$root/fixtures/generated/$name"
  reads_registry=0
  grep -q registry_json "$script" && reads_registry=1
  if [ -f "$out/.done" ] && [ "$out/.done" -nt "$script" ] \
    && { [ "$reads_registry" = 0 ] || [ "$out/.done" -nt "$models" ]; }; then
    echo "[fixtures] $name: up to date" >&2
    continue
  fi
  echo "[fixtures] $name: generating" >&2
  rm -rf "$out"; mkdir -p "$out"
  start=$(date +%s)
  "$py" "$script" "$out"
  touch "$out/.done"
  echo "[fixtures] $name: done in $(( $(date +%s) - start ))s" >&2
done
