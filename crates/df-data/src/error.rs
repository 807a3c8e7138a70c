//! The crate's error type.

use std::path::PathBuf;

/// Errors of this crate.
///
/// Bad *images* are not errors: the loader skips them and lists them as
/// [`SkipReport`](crate::SkipReport)s. Errors are what stops a run before it starts (a
/// missing directory, an empty class, a bad configuration) or a failure of the
/// machinery itself.
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
    /// One file is in two datasets that must be disjoint (training and validation).
    #[error(
        "{file} is in both {first_root} and {second_root} (there as {other}): a file cannot \
         be both a training and a validation image"
    )]
    SharedFile {
        /// The file, as the first dataset has it.
        file: PathBuf,
        /// The same file, as the second dataset has it.
        other: PathBuf,
        /// The first dataset's root.
        first_root: PathBuf,
        /// The second dataset's root.
        second_root: PathBuf,
    },
    /// A video could not be read (no ffmpeg, an empty or damaged file, no frame).
    #[error("{path}: {reason}")]
    Video {
        /// The video file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The dataset directory (or manifest) does not exist.
    #[error("{path}: no such directory or file (the dataset root)")]
    MissingPath {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// A class folder (or a manifest label) has no usable image.
    #[error("{root}: class `{class}` has no usable image")]
    EmptyClass {
        /// The dataset root or manifest.
        root: PathBuf,
        /// The class name.
        class: String,
    },
    /// The dataset does not hold both a real and a fake class.
    #[error("{root}: a detector needs both real and fake images, found only {found} (classes: {classes:?})")]
    SingleClass {
        /// The dataset root or manifest.
        root: PathBuf,
        /// Which of "real" / "fake" (or "no image") was found.
        found: String,
        /// The class names seen.
        classes: Vec<String>,
    },
    /// A class name could not be mapped to real or fake.
    #[error("{root}: cannot tell whether class folder `{class}` holds real or fake images; name the class folders with one of the fake names {fake:?} and one of the real names {real:?}")]
    UnknownClass {
        /// The dataset root or manifest.
        root: PathBuf,
        /// The class name.
        class: String,
        /// The names the mapping takes as fake.
        fake: Vec<String>,
        /// The names the mapping takes as real.
        real: Vec<String>,
    },
    /// A CSV manifest is malformed.
    #[error("{path}: line {line}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An option has a value outside its domain.
    #[error("invalid option `{option}`: {message}")]
    InvalidConfig {
        /// The option at fault (`validation_split`, `batch_size`, ...).
        option: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Encoding an image (synthetic set writer, JPEG augmentation) failed.
    #[error("{what}: image error: {source}")]
    Image {
        /// What was being encoded or decoded.
        what: String,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },
    /// An image asked for directly (not through a loader, which skips bad images)
    /// could not be used.
    #[error("{path}: {reason}")]
    BadImage {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: crate::skip::SkipReason,
    },
    /// A libtorch operation failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A loader worker thread panicked (a bug: bad inputs are skipped, never panic).
    #[error("loader worker panicked: {0}")]
    WorkerPanic(String),
    /// Serialising a report failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(option: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            option,
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<df_io::Error> for Error {
    fn from(e: df_io::Error) -> Error {
        let (path, source) = e.into_io();
        Error::Io { path, source }
    }
}
