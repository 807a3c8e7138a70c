//! Replays the `run_config` fuzz target's corpus, seeds and crash files (`fuzz/`) on
//! stable: no nightly, no sanitizer. A missing corpus is a failure: it is committed.

#[path = "../../../fuzz/replay.rs"]
mod replay;

#[test]
fn run_config_corpus_replays_without_a_panic() {
    replay::replay("run_config", 100, df_train::fuzz::run_config);
}
