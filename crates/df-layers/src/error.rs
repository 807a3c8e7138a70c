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
    /// A block would create a variable that already exists: two blocks with the same
    /// name on one path (libtorch's store would rename the second, `bn.bias__30`, so
    /// checkpoint names would depend on creation order).
    #[error(
        "variable `{variable}` already exists: two blocks are named `{block}`; give each \
         block on a path its own name"
    )]
    DuplicateName {
        /// The block's variable path.
        block: String,
        /// The variable that exists already.
        variable: String,
    },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Refuses to create a block at `q` when any of its variables `names` exists already.
pub(crate) fn claim(q: &tch::nn::Path<'_>, names: &[&str]) -> Result<()> {
    match names.iter().find(|n| q.get(n).is_some()) {
        Some(n) => Err(Error::DuplicateName {
            block: q.components().collect::<Vec<_>>().join("."),
            variable: q.path(n),
        }),
        None => Ok(()),
    }
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
