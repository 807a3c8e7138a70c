//! What the tests that run the example programs share.

use std::path::{Path, PathBuf};

/// `target/<profile>/examples/<name>`, next to this test's `deps/` directory.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: `cargo test` (and `make test-shared` for the shared-data suite) \
         builds the examples before the tests",
        path.display()
    );
    path
}
