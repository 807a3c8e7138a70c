//! Helpers shared by the df-models test binaries.

use std::path::PathBuf;

#[path = "../../../../fixtures/lookup.rs"]
mod lookup;

/// The file `name` of fixture set `set` (committed under `fixtures/reference/` or made by
/// `make fixtures` into `fixtures/generated/`), or a panic telling how to make it:
/// fixtures come from the reference scripts (`scripts/fixtures/<set>.py`), never from
/// this code.
#[allow(dead_code)] // not every test binary reads raw files
pub fn fixture(set: &str, name: &str) -> PathBuf {
    lookup::path(set, name)
}

/// The JSON file `name` of fixture set `set`.
#[allow(dead_code)] // not every test binary reads JSON through it
pub fn fixture_json<T: serde::de::DeserializeOwned>(set: &str, name: &str) -> T {
    lookup::json(set, name)
}
