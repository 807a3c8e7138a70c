//! The crate's error type.

use std::path::PathBuf;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A libtorch operation failed.
    #[error("{context}: {source}")]
    Torch {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: tch::TchError,
    },
    /// A configuration value is invalid.
    #[error("invalid {option}: {reason}")]
    Config {
        /// The option at fault (`optimizer.lr`, `early_stopping.monitor` ...).
        option: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The training loss became NaN or infinite; the weights are those before the batch
    /// that produced it, and the last checkpoint on disk is untouched.
    #[error(
        "the training loss is {value} at epoch {epoch} (1-based), batch {batch} (1-based); \
         training stopped{}",
        match last_checkpoint {
            Some(p) => format!(", the last good checkpoint is {}", p.display()),
            None => String::from(" (no checkpoint was written yet)"),
        }
    )]
    NonFiniteLoss {
        /// The epoch, counted from 1.
        epoch: usize,
        /// The batch within the epoch, counted from 1.
        batch: usize,
        /// The loss value (NaN or ±inf).
        value: f64,
        /// The last checkpoint written, if any.
        last_checkpoint: Option<PathBuf>,
    },
    /// The run diverged at an epoch although the training loss stayed finite: the
    /// validation loss or a weight is NaN or infinite. That epoch is not saved: the last
    /// checkpoint on disk is the last good one.
    #[error(
        "training diverged at epoch {epoch} (1-based): {reason}; training stopped and the \
         epoch was not saved{}",
        match last_checkpoint {
            Some(p) => format!(", the last good checkpoint is {}", p.display()),
            None => String::from(" (no checkpoint was written yet)"),
        }
    )]
    Diverged {
        /// The epoch, counted from 1.
        epoch: usize,
        /// What is not finite (the validation loss and its value, or the variables).
        reason: String,
        /// The last checkpoint written, if any.
        last_checkpoint: Option<PathBuf>,
    },
    /// The model scored a sample NaN or infinite: its weights hold non-finite values (a
    /// damaged checkpoint, a diverged run), or the input does.
    #[error(
        "model `{model}` scores {sample} {value}: its weights hold NaN or infinite values \
         (or a batch-norm variance below zero) — the checkpoint is damaged or comes from a \
         diverged run — or the input does"
    )]
    NonFiniteScore {
        /// The file, or the sample's place in its batch.
        sample: String,
        /// The score.
        value: f64,
        /// The model.
        model: String,
    },
    /// A callback monitors a metric the logs do not have.
    #[error(
        "{callback} monitors `{monitor}`, which the epoch logs do not have (available: {})",
        available.join(", ")
    )]
    MissingMetric {
        /// The callback.
        callback: String,
        /// The monitored name.
        monitor: String,
        /// The names the logs have.
        available: Vec<String>,
    },
    /// A checkpoint file is malformed or does not fit the model/optimizer.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor has an unexpected shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// The tensor at fault.
        what: String,
        /// The expected shape, in words.
        expected: String,
        /// The actual shape.
        got: Vec<i64>,
    },
    /// JSON (de)serialization of `path` failed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// An error of the data pipeline (boxed: keeps `Result` small).
    #[error(transparent)]
    Data(Box<df_data::Error>),
    /// An error of the metrics crate.
    #[error(transparent)]
    Metrics(Box<df_metrics::Error>),
    /// An error of the models crate.
    #[error(transparent)]
    Model(Box<df_models::Error>),
    /// An error of data-parallel training (a collective, the rendezvous).
    #[error(transparent)]
    Dist(Box<df_dist::Error>),
}

impl From<df_dist::Error> for Error {
    fn from(e: df_dist::Error) -> Self {
        Error::Dist(Box::new(e))
    }
}

impl From<df_data::Error> for Error {
    fn from(e: df_data::Error) -> Self {
        Error::Data(Box::new(e))
    }
}

impl From<df_metrics::Error> for Error {
    fn from(e: df_metrics::Error) -> Self {
        Error::Metrics(Box::new(e))
    }
}

impl From<df_models::Error> for Error {
    fn from(e: df_models::Error) -> Self {
        Error::Model(Box::new(e))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<df_io::Error> for Error {
    fn from(e: df_io::Error) -> Error {
        match e {
            df_io::Error::Safetensors { path, reason } => Error::Checkpoint { path, reason },
            df_io::Error::Json { path, source } => Error::Json { path, source },
            e @ df_io::Error::Ownership { .. } => config("out", e.to_string()),
            other => {
                let (path, source) = other.into_io();
                Error::Io { path, source }
            }
        }
    }
}

pub(crate) fn config(option: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config {
        option: option.into(),
        reason: reason.into(),
    }
}

pub(crate) fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> Error {
    let context = context.into();
    move |source| Error::Torch { context, source }
}

/// A failed call through df-sys's shim, as a libtorch error with its context.
pub(crate) fn shim(context: impl Into<String>) -> impl FnOnce(df_sys::Error) -> Error {
    let context = context.into();
    move |e| Error::Torch {
        context,
        source: tch::TchError::Torch(e.to_string()),
    }
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.into(),
        reason: reason.into(),
    }
}
