//! Reading the JSON files reports and histories write (they write through df-io's one
//! writer, [`df_io::write_atomic`], directly).

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::io_error;
use crate::{Error, Result};

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}
