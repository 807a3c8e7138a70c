//! df-metrics' integration tests, one module per area. The scikit-learn references come
//! from `scripts/fixtures/sklearn_metrics.py` (run `make fixtures`).

mod errors;
mod fixtures;
mod fuzz_replay;
mod history;
mod plots;
mod probability;
mod ranking;
mod streaming;
mod threshold;
