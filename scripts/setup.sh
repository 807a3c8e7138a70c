#!/usr/bin/env bash
# Provisions libtorch 2.11.0 (and, with --python-tools, the Python peers used to make test
# fixtures and run side-by-side benchmarks) into a versioned cache outside the clone, then
# links it into the clone as `.libtorch`, where `.cargo/config.toml` finds it.
#
#   scripts/setup.sh                 libtorch (what `cargo build` needs), the MTCNN face
#                                    detector's weights (from facenet-pytorch 2.6.0, MIT) and,
#                                    without one on PATH, ffmpeg (the static build the PyPI
#                                    package imageio-ffmpeg ships) for reading videos
#   scripts/setup.sh --python-tools  also Keras 3, h5py, scikit-learn, torchvision, Pillow,
#                                    timm (bench peers), requests, onnx and onnxruntime (the
#                                    ONNX export), fastapi and uvicorn (the serve bench's peer)
#                                    and facenet-pytorch (the face detector's reference,
#                                    installed --no-deps)
#   scripts/setup.sh --nccl          also the CUDA headers the `nccl` feature compiles
#                                    against (nvidia-cuda-crt, nvidia-cuda-cccl; no GPU needed)
#
# Idempotent: a second run with everything in place only checks and returns.
# The cache is shared by every clone on the machine: ${DEEPFAKE_CACHE:-~/.cache/deepfake}.
set -euo pipefail

TORCH_VERSION=2.11.0
TORCHVISION_VERSION=0.26.0
# onnx and onnxruntime: the `export` program's ONNX conversion and its test; fastapi and
# uvicorn: the Python peer of the `serve` load bench.
PY_TOOLS=("keras==3.15.*" "h5py>=3.10" "scikit-learn>=1.5" "pillow==12.*" "numpy>=2" "torchvision==${TORCHVISION_VERSION}" "timm==1.0.*" "requests>=2" "safetensors>=0.4" "onnx==1.23.2" "onnxruntime==1.32.0" "fastapi==0.165.0" "uvicorn==0.55.0")
# facenet-pytorch declares torch<2.3 and other old pins: installed without its
# dependencies, its MTCNN runs on the torch above (checked after).
FACENET_VERSION=2.6.0
IMAGEIO_FFMPEG_VERSION=0.8.1

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DEEPFAKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deepfake}
venv="$cache/torch-$TORCH_VERSION"
# The CUDA 13.0 headers the wheel lacks for compiling against ProcessGroupNCCL.hpp (crt/,
# nv/, CCCL), matching its nvidia-cuda-runtime 13.0.
CUDA_HEADERS=("nvidia-cuda-crt==13.0.88" "nvidia-cuda-cccl==13.0.85")
want_tools=0
want_nccl=0
for arg in "$@"; do
  case "$arg" in
    --python-tools) want_tools=1 ;;
    --nccl) want_nccl=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

py=$(command -v python3 || true)
[ -n "$py" ] || die "python3 not found on PATH; install Python 3.9+ (e.g. 'apt-get install python3 python3-venv python3-pip')"

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment $venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv" 2>/dev/null || die "'python3 -m venv' failed; install the venv module (e.g. 'apt-get install python3-venv')"
fi
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || die "pip is missing in $venv; install python3-pip / ensurepip"

have() { "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
for spec in sys.argv[1:]:
    name, _, ver = spec.partition("==")
    try:
        got = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if ver and not (got == ver or got.startswith(ver.rstrip("*").rstrip(".") + ".") or got.split("+")[0] == ver):
        sys.exit(1)
PY
}

pip_install() {
  say "pip install $* (progress below; the torch wheel and its CUDA libraries are several GB the first time)"
  "$venv/bin/python" -m pip install --progress-bar on "$@" \
    || die "pip could not install $* — is the PyPI registry reachable (proxy, pip.conf)?"
}

if have "torch==$TORCH_VERSION"; then
  say "torch $TORCH_VERSION already in $venv"
else
  pip_install "torch==$TORCH_VERSION"
fi

if [ "$want_tools" = 1 ]; then
  if have "keras==3.15.*" h5py scikit-learn "pillow==12.*" numpy "torchvision==$TORCHVISION_VERSION" "timm==1.0.*" requests "safetensors>=0.4" "onnx==1.23.2" "onnxruntime==1.32.0" "fastapi==0.165.0" "uvicorn==0.55.0"; then
    say "Python tools already in $venv"
  else
    pip_install "torch==$TORCH_VERSION" "${PY_TOOLS[@]}"
  fi
  if ! have "facenet-pytorch==$FACENET_VERSION"; then
    pip_install --no-deps "facenet-pytorch==$FACENET_VERSION"
  fi
  have "torch==$TORCH_VERSION" || die "torch is no longer $TORCH_VERSION in $venv after the Python tools"
fi

# The face detector's weights: facenet-pytorch's pnet/rnet/onet.pt, converted once.
weights="$cache/faces/mtcnn-facenet-pytorch-$FACENET_VERSION.safetensors"
if [ -f "$weights" ]; then
  say "MTCNN weights already in $weights"
else
  say "converting the MTCNN weights of facenet-pytorch $FACENET_VERSION to $weights"
  mkdir -p "$cache/faces"
  wheel_dir=$(mktemp -d)
  "$venv/bin/python" -m pip download --quiet --no-deps "facenet-pytorch==$FACENET_VERSION" -d "$wheel_dir" \
    || die "pip could not download facenet-pytorch $FACENET_VERSION — is the PyPI registry reachable?"
  "$venv/bin/python" "$root/scripts/face_weights.py" "$wheel_dir"/facenet_pytorch-*.whl "$weights" \
    || die "could not convert the MTCNN weights"
  rm -rf "$wheel_dir"
fi

if [ "$want_nccl" = 1 ]; then
  if have "${CUDA_HEADERS[@]}"; then
    say "CUDA headers for the nccl feature already in $venv"
  else
    # --no-deps: headers only, beside the wheel's own nvidia packages.
    pip_install --no-deps "${CUDA_HEADERS[@]}"
  fi
fi

torch_dir=$("$venv/bin/python" -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).parent)') \
  || die "torch is installed but does not import in $venv"
[ -f "$torch_dir/lib/libtorch.so" ] || die "no libtorch.so under $torch_dir/lib"

# ffmpeg for videos: the system's when on PATH, else imageio-ffmpeg's static binary,
# extracted once into the cache (df_data::video finds it there; DF_FFMPEG overrides).
if command -v ffmpeg >/dev/null 2>&1; then
  say "ffmpeg: $(command -v ffmpeg)"
elif [ -x "$cache/ffmpeg/ffmpeg" ]; then
  say "ffmpeg already in $cache/ffmpeg/ffmpeg"
else
  say "extracting ffmpeg from imageio-ffmpeg $IMAGEIO_FFMPEG_VERSION into $cache/ffmpeg"
  wheel_dir=$(mktemp -d)
  "$venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: \
    "imageio-ffmpeg==$IMAGEIO_FFMPEG_VERSION" -d "$wheel_dir" \
    || die "pip could not download imageio-ffmpeg $IMAGEIO_FFMPEG_VERSION — is the PyPI registry reachable?"
  mkdir -p "$cache/ffmpeg"
  "$venv/bin/python" - "$wheel_dir" "$cache/ffmpeg" <<'PY' || die "could not extract ffmpeg"
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "imageio_ffmpeg-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if "/binaries/ffmpeg-" in n)
    tmp = os.path.join(sys.argv[2], ".ffmpeg.tmp")
    with z.open(name) as src, open(tmp, "wb") as dst:
        dst.write(src.read())
    os.chmod(tmp, 0o755)
    os.replace(tmp, os.path.join(sys.argv[2], "ffmpeg"))
PY
  rm -rf "$wheel_dir"
  "$cache/ffmpeg/ffmpeg" -version >/dev/null 2>&1 || die "the extracted ffmpeg does not run"
fi

link="$root/.libtorch"
if [ "$(readlink "$link" 2>/dev/null || true)" != "$torch_dir" ]; then
  ln -sfn "$torch_dir" "$link"
  say "linked $link -> $torch_dir"
fi
ln -sfn "$venv" "$root/.venv-tools"
say "ready: libtorch $TORCH_VERSION at .libtorch; Python at .venv-tools/bin/python"
