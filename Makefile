# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both set everything up themselves (libtorch and the Python reference tools go to
# ~/.cache/deepfake, shared by every clone).
.PHONY: setup fixtures demo test test-shared lint bench-build bench ci

setup:
	scripts/setup.sh --python-tools

fixtures: setup
	scripts/make-fixtures.sh

demo: setup
	cargo run --release --example demo

test: fixtures
	cargo test --workspace

# The suite that reads ../shared/data; it fails (not skips) without it. It runs the
# `train` example's binary, built here first.
test-shared: fixtures
	cargo build --workspace --profile test --features shared-data --examples
	cargo test --workspace --features shared-data --test shared_data

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench-build: setup
	cargo bench --workspace --no-run

# Rust benches and their PyTorch-eager peers, side by side.
bench: setup
	benches/run-peers.sh

ci: test lint bench-build test-shared
