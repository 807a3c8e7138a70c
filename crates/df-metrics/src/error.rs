//! The crate's error type.

use std::path::PathBuf;

/// Errors of `df-metrics`: invalid scores, labels or arguments, metrics that are undefined
/// for the data given, and failures to read or write histories, reports and plots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric was asked for on no samples.
    #[error("{metric}: no samples (the scores and labels are empty)")]
    Empty {
        /// The metric or function at fault.
        metric: &'static str,
    },
    /// The scores and the labels have different lengths.
    #[error("{scores} scores but {labels} labels: each score needs exactly one label")]
    LengthMismatch {
        /// Number of scores.
        scores: usize,
        /// Number of labels.
        labels: usize,
    },
    /// A score is NaN or infinite.
    #[error("score at index {index} is {value}: scores must be finite")]
    NonFiniteScore {
        /// Position of the score in the slice given.
        index: usize,
        /// The score.
        value: f32,
    },
    /// A score is outside `[0, 1]` where a probability is required.
    #[error(
        "{metric}: score at index {index} is {value}, not a probability in [0, 1] \
         (pass sigmoid(logit), not the logit)"
    )]
    ScoreOutOfRange {
        /// The metric that needs probabilities.
        metric: &'static str,
        /// Position of the score in the slice given.
        index: usize,
        /// The score.
        value: f32,
    },
    /// A label is neither 0 ("real") nor 1 ("fake").
    #[error("label at index {index} is {value}: labels must be 0 (real) or 1 (fake)")]
    InvalidLabel {
        /// Position of the label in the slice given.
        index: usize,
        /// The label, printed.
        value: String,
    },
    /// The metric is undefined because every label belongs to one class.
    #[error(
        "{metric} is undefined when there is no {missing} sample: the labels must contain \
         both real (0) and fake (1)"
    )]
    SingleClass {
        /// The metric at fault.
        metric: &'static str,
        /// The class that is absent: `"real"` or `"fake"`.
        missing: &'static str,
    },
    /// An argument is out of its domain.
    #[error("invalid argument `{name}` = {value}: expected {expected}")]
    InvalidArgument {
        /// The argument or configuration field at fault.
        name: &'static str,
        /// Its value, printed.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A history has no (or too few) values of the metric asked for.
    #[error(
        "history has {available} value(s) of metric `{metric}`, {needed} needed \
         (metrics present: {present})"
    )]
    MissingMetric {
        /// The metric asked for.
        metric: String,
        /// How many values are needed.
        needed: usize,
        /// How many the history has.
        available: usize,
        /// The metrics the history does have, comma-separated.
        present: String,
    },
    /// An epoch record was pushed out of order.
    #[error("epoch {epoch} pushed after epoch {last}: epochs must increase")]
    EpochOrder {
        /// The last epoch in the history.
        last: usize,
        /// The epoch pushed.
        epoch: usize,
    },
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be written or parsed.
    #[error("{path}: JSON: {source}")]
    Json {
        /// The file at fault (`-` for a string).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A CSV file could not be written or parsed.
    #[error("{path}: CSV: {message}")]
    Csv {
        /// The file at fault (`-` for an in-memory reader or writer).
        path: PathBuf,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// A plot could not be drawn or written.
    #[error("{path}: plot: {message}")]
    Plot {
        /// The image file at fault.
        path: PathBuf,
        /// The drawing backend's error.
        message: String,
    },
    /// A plot path has an extension other than `.png` or `.svg`.
    #[error("{path}: unsupported plot format: the file name must end in .png or .svg")]
    UnsupportedPlotFormat {
        /// The path at fault.
        path: PathBuf,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid_argument(
    name: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> Error {
    Error::InvalidArgument {
        name,
        value: value.to_string(),
        expected,
    }
}

impl From<df_io::Error> for Error {
    fn from(e: df_io::Error) -> Error {
        match e {
            df_io::Error::Json { path, source } => Error::Json { path, source },
            other => {
                let (path, source) = other.into_io();
                Error::Io { path, source }
            }
        }
    }
}

pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
