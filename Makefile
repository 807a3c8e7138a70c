# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both set everything up themselves (libtorch and the Python reference tools go to
# ~/.cache/deepfake, shared by every clone).
.PHONY: setup fixtures demo test test-shared test-cuda nccl-build lint bench-build bench ci

setup:
	scripts/setup.sh --python-tools

fixtures: setup
	scripts/make-fixtures.sh

demo: setup
	cargo run --release --example demo

test: fixtures
	cargo test --workspace
	scripts/check-downstream.sh

# The suite that reads ../shared/data; it fails (not skips) without it. It runs the
# `train` example's binary, built here first, and compares df-face with facenet-pytorch
# on images the reference script makes from ../shared/data.
test-shared: fixtures
	.venv-tools/bin/python scripts/shared_fixtures/mtcnn_reference.py ../shared/data fixtures/generated/mtcnn_reference
	cargo build --workspace --profile test --features shared-data --examples
	cargo test --workspace --features shared-data --test shared_data

# GPU-only tests (the `cuda` feature); they fail without a CUDA device. On a device
# machine, scripts/device/cuda_tests.sh runs the binary built here.
test-cuda: setup
	cargo test --features cuda --test cuda

# The `nccl` feature compiles here without a GPU (CUDA headers from PyPI); its tests run on
# a device machine (scripts/device/nccl_tests.sh).
nccl-build: setup
	scripts/setup.sh --nccl
	cargo clippy -p df-sys -p df-dist --features df-dist/nccl --all-targets -- -D warnings
	cargo test --features nccl --test nccl --no-run

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --features cuda,shared-data -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

bench-build: setup
	cargo bench --workspace --no-run

# Rust benches and their PyTorch-eager peers, side by side.
bench: setup
	benches/run-peers.sh

ci: test lint bench-build nccl-build test-shared
