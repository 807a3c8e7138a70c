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
    // --- Weight I/O (keras, checkpoint, registry) ---
    /// A checkpoint names a family that is neither built in nor registered.
    #[error(
        "model `{model}`: unknown model family `{name}`; known families: {}; a model of \
         another crate must register its family (df_models::register_family) before its \
         checkpoints reopen",
        known.join(", ")
    )]
    UnknownFamily {
        /// The family named.
        name: String,
        /// The model named with it.
        model: String,
        /// Every known family.
        known: Vec<String>,
    },
    /// [`crate::register_family`] was given a family whose name another family has.
    #[error("a different model family is already registered as `{name}`")]
    FamilyConflict {
        /// The name taken.
        name: String,
    },
    /// No model of that name is registered.
    #[error("unknown model `{name}`; known models: {}", known.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Every registered name.
        known: Vec<String>,
    },
    /// `path` could not be read as HDF5 (not an HDF5 file, truncated, corrupt).
    #[error("{path}: cannot read as HDF5: {reason}")]
    Hdf5 {
        /// The file at fault.
        path: PathBuf,
        /// What the HDF5 reader reported, with the object it was reading.
        reason: String,
    },
    /// `path` is HDF5 but not a Keras weight file this importer understands.
    #[error("{path}: not a Keras weight file: {reason}")]
    NotKerasWeights {
        /// The file at fault.
        path: PathBuf,
        /// What is missing or unsupported, naming the layer or tensor.
        reason: String,
    },
    /// The dense layers of a Keras file fit no top of `model` (a file of another model, or
    /// trained at an input size that must be given).
    #[error("{path}: no top of `{model}` fits the file's dense layers: {reason}")]
    KerasTop {
        /// The file at fault.
        path: PathBuf,
        /// The model asked for.
        model: String,
        /// What does not fit.
        reason: String,
    },
    /// A tensor cannot be converted to its libtorch layout.
    #[error("tensor `{tensor}`: {reason}")]
    Layout {
        /// The tensor (its path in the file).
        tensor: String,
        /// Why.
        reason: String,
    },
    /// The tensors of a weight file do not fit the model: nothing was loaded.
    #[error("{0}")]
    WeightMismatch(Box<WeightMismatchReport>),
    /// A native checkpoint is malformed (header, metadata, tensor data).
    #[error("{path}: invalid checkpoint: {reason}")]
    Checkpoint {
        /// The file at fault.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What did not fit when weights were loaded into a model ([`Error::WeightMismatch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightMismatchReport {
    /// The weight file.
    pub source_file: PathBuf,
    /// The model's registry name.
    pub model: String,
    /// Model variables the file has no value for (name and shape).
    pub missing: Vec<String>,
    /// File tensors with no model variable to go to (path in the file and shape).
    pub unexpected: Vec<String>,
    /// Pairs whose shapes differ: `variable: model [..], file `tensor` [..]`.
    pub mis_shaped: Vec<String>,
    /// How layers were paired, where that explains the mismatch.
    pub notes: Vec<String>,
}

impl std::fmt::Display for WeightMismatchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mismatch_message(
            &self.source_file,
            &self.model,
            &self.missing,
            &self.unexpected,
            &self.mis_shaped,
            &self.notes,
        ))
    }
}

/// At most this many names per list in [`Error::WeightMismatch`]'s message; the report
/// holds them all.
const MAX_LISTED: usize = 25;

fn mismatch_message(
    source_file: &std::path::Path,
    model: &str,
    missing: &[String],
    unexpected: &[String],
    mis_shaped: &[String],
    notes: &[String],
) -> String {
    let mut msg = format!(
        "{}: the weights do not fit model `{model}` ({} missing, {} unexpected, {} mis-shaped \
         tensors); nothing was loaded",
        source_file.display(),
        missing.len(),
        unexpected.len(),
        mis_shaped.len()
    );
    for (title, list) in [
        ("missing from the file", missing),
        ("unexpected in the file", unexpected),
        ("mis-shaped", mis_shaped),
        ("note", notes),
    ] {
        if list.is_empty() {
            continue;
        }
        msg.push_str(&format!("\n  {title}:"));
        for item in list.iter().take(MAX_LISTED) {
            msg.push_str(&format!("\n    {item}"));
        }
        if list.len() > MAX_LISTED {
            msg.push_str(&format!("\n    ... and {} more", list.len() - MAX_LISTED));
        }
    }
    msg
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<df_io::Error> for Error {
    fn from(e: df_io::Error) -> Error {
        match e {
            df_io::Error::Safetensors { path, reason } => Error::Checkpoint { path, reason },
            other => {
                let (path, source) = other.into_io();
                Error::Io { path, source }
            }
        }
    }
}
