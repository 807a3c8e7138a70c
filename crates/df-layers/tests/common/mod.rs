//! Helpers shared by the df-layers test binaries.

use std::path::PathBuf;

#[path = "../../../../fixtures/lookup.rs"]
mod lookup;

/// The file `name` of fixture set `set` (made by `scripts/fixtures/<set>.py`; see
/// `fixtures/lookup.rs`), or a panic telling how to make it.
#[allow(dead_code)] // not every test binary reads raw files
pub fn fixture(set: &str, name: &str) -> PathBuf {
    lookup::path(set, name)
}

/// The JSON file `name` of fixture set `set`.
pub fn fixture_json<T: serde::de::DeserializeOwned>(set: &str, name: &str) -> T {
    lookup::json(set, name)
}
