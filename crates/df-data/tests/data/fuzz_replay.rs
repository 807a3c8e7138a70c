//! Replays the `image_decode` fuzz target's corpus, seeds and crash files (`fuzz/`) on
//! stable: no nightly, no sanitizer. A missing corpus is a failure: it is committed.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn image_decode_corpus_replays_without_a_panic() {
    replay::replay("image_decode", 100, df_data::fuzz::image_decode);
}
