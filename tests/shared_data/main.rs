//! The suite that reads `../shared/data` (run by CI with `--features shared-data`).
//!
//! It fails, never skips, when the data is missing: the data is part of CI's contract.

use std::path::PathBuf;

mod audit;
#[path = "../common/mod.rs"]
mod common;
mod explain;
mod faces;
mod lfw;
mod loader;
mod mesonet;
mod pseudo;
mod study;

/// `../shared/data/<rel>` next to the repository, or a panic naming what is missing.
pub fn shared_data(rel: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let path = root.join(rel);
    assert!(
        path.exists(),
        "the shared-data suite needs {} (CI lays ../shared beside the clone); it is missing",
        path.display()
    );
    path
}
