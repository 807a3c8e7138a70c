//! Replays the `safetensors_parse` fuzz target's corpus, seeds and crash files (`fuzz/`)
//! on stable: no nightly, no sanitizer. A missing corpus is a failure: it is committed.

#[path = "../../../fuzz/replay.rs"]
mod replay;

#[test]
fn safetensors_corpus_replays_without_a_panic() {
    replay::replay("safetensors_parse", 100, df_io::fuzz::safetensors_parse);
}
