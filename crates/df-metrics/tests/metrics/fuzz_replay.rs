//! Replays the `history_files` fuzz target's corpus, seeds and crash files (`fuzz/`) on
//! stable: no nightly, no sanitizer. A missing corpus is a failure: it is committed.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn history_files_corpus_replays_without_a_panic() {
    replay::replay("history_files", 100, df_metrics::fuzz::history_files);
}
