//! The crate's error type.

/// Errors of `df-layers`: invalid block configurations and libtorch failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A block configuration is invalid; `block` names the block (its variable path),
    /// `option` the offending field.
    #[error("invalid configuration of `{block}`: option `{option}`: {reason}")]
    InvalidConfig {
        /// The block at fault (its variable path or type).
        block: String,
        /// The configuration field at fault.
        option: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// A tensor given to a block has a shape the block cannot take.
    #[error("tensor `{tensor}` has shape {got:?}, expected {expected}")]
    Shape {
        /// The tensor at fault.
        tensor: String,
        /// Its shape.
        got: Vec<i64>,
        /// What was expected, in words.
        expected: String,
    },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(
    block: impl Into<String>,
    option: &'static str,
    reason: impl Into<String>,
) -> Error {
    Error::InvalidConfig {
        block: block.into(),
        option,
        reason: reason.into(),
    }
}
