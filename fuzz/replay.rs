//! The inputs a fuzz target has kept: its corpus, its seeds and its crash files, for the
//! tests that replay them on stable (`#[path = ".../fuzz/replay.rs"] mod replay;`).

use std::path::{Path, PathBuf};

/// Every input of `target`, sorted; a panic when its corpus is missing (it is committed).
pub fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("fuzz/replay.rs").is_file())
        .map(|d| d.join("fuzz"))
        .unwrap_or_else(|| PathBuf::from("fuzz"));
    let corpus = fuzz.join("corpus").join(target);
    assert!(
        corpus.is_dir(),
        "{} is missing: the fuzz corpus is committed",
        corpus.display()
    );
    let mut files = Vec::new();
    for dir in [
        corpus,
        fuzz.join("seeds").join(target),
        fuzz.join("artifacts").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file()),
            );
        }
    }
    files.sort();
    files
}

/// Runs `entry` on every input of `target`; panics naming the first input that panics it.
pub fn replay(target: &str, min_inputs: usize, entry: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= min_inputs,
        "{target}: only {} inputs",
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "{} panics `{target}`", path.display());
    }
}
