//! Replays the fuzz corpora and crash files of `fuzz/` on stable (no nightly, no
//! sanitizer): every input the fuzzer kept, and every input that once crashed a target,
//! goes through the same entry point again. A missing corpus is a failure: it is
//! committed.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = fuzz.join("corpus").join(target);
    assert!(
        corpus.is_dir(),
        "{} is missing: the fuzz corpus is committed",
        corpus.display()
    );
    let mut files = Vec::new();
    for dir in [
        corpus,
        fuzz.join("seeds"),
        fuzz.join("artifacts").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(
                entries
                    .map(|e| e.expect("entry").path())
                    .filter(|p| p.is_file()),
            );
        }
    }
    files.sort();
    files
}

#[test]
fn safetensors_corpus_replays_without_a_panic() {
    let files = inputs("safetensors_parse");
    assert!(files.len() > 100, "only {} inputs", files.len());
    for path in &files {
        let data = std::fs::read(path).expect("read");
        let outcome = std::panic::catch_unwind(|| df_io::fuzz::safetensors_parse(&data));
        assert!(
            outcome.is_ok(),
            "{} panics the safetensors reader",
            path.display()
        );
    }
}
