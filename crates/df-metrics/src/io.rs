//! File helpers shared by reports and histories.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::io_error;
use crate::{Error, Result};

/// Replaces `path` with `bytes` through the workspace's one writer ([`df_io::write_atomic`]:
/// temporary file in the same directory, fsync, rename, fsync of the directory), so a
/// reader (or a run killed mid-write) never sees a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(df_io::write_atomic(path, bytes)?)
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}
