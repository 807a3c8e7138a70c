//! Helpers shared by the df-models test binaries.

use std::path::{Path, PathBuf};

/// `fixtures/generated/<set>/<name>`, or a panic telling to generate it: fixtures come
/// from the reference scripts (`scripts/fixtures/<set>.py`), never from this code.
pub fn fixture(set: &str, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/generated")
        .join(set)
        .join(name);
    assert!(
        path.exists(),
        "missing fixture {}: run `make fixtures` (scripts/make-fixtures.sh {set})",
        path.display()
    );
    path
}
