//! The crate's error type.

use std::path::PathBuf;

/// Errors of `df-models`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A block or model configuration is invalid.
    #[error(transparent)]
    Layers(#[from] df_layers::Error),
    /// A model configuration is invalid; `option` names the field at fault.
    #[error("invalid configuration of model `{model}`: option `{option}`: {reason}")]
    InvalidConfig {
        /// The model.
        model: String,
        /// The field at fault.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
