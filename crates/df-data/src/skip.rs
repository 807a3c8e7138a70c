//! Reports of the inputs that were skipped: one typed reason ([`SkipReason`]) and one
//! file format ([`SkipSummary`], `skipped.json`) for images, videos and faces alike.
//!
//! ```json
//! {
//!   "count": 2,
//!   "files": [
//!     {"path": "data/fake/a.mp4", "reason": {"kind": "video", "detail": "no video stream in it"}},
//!     {"path": "data/real/b.jpg", "reason": {"kind": "corrupt", "detail": "unexpected end of file"}}
//!   ]
//! }
//! ```
//!
//! `kind` is one of `zero_bytes`, `missing`, `not_an_image`, `corrupt`, `unreadable`,
//! `duplicate`, `not_regular`, `video`, `no_face` and `too_small`; `detail` (absent for `zero_bytes`,
//! `missing` and `no_face`) says more.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why an input was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The file is empty.
    ZeroBytes,
    /// The file listed (in a manifest) does not exist.
    Missing,
    /// The file is not an image of a supported format (by its extension or content).
    NotAnImage(String),
    /// The file looks like an image but does not decode (corrupt, truncated).
    Corrupt(String),
    /// The file could not be read.
    Unreadable(String),
    /// Another path (a symbolic link, a link loop) to a file already admitted under the
    /// path given here.
    Duplicate(PathBuf),
    /// Not a regular file (a FIFO, a device, a socket): never opened.
    NotRegular(String),
    /// A video that could not be read (no video stream, undecodable, no ffmpeg).
    Video(String),
    /// No face was found (in the image, or in any sampled frame of the video).
    NoFace,
    /// Too small for the preparation asked for (a centre crop keeping under 8 px).
    TooSmall(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ZeroBytes => write!(f, "zero-byte file"),
            SkipReason::Missing => write!(f, "missing file"),
            SkipReason::NotAnImage(d) => write!(f, "not an image: {d}"),
            SkipReason::Corrupt(d) => write!(f, "corrupt image: {d}"),
            SkipReason::Unreadable(d) => match d.strip_prefix("unreadable: ") {
                // A detail that already says it (an error of the reader) is said once.
                Some(rest) => write!(f, "unreadable: {rest}"),
                None => write!(f, "unreadable: {d}"),
            },
            SkipReason::NotRegular(d) => write!(f, "not a regular file: {d}"),
            SkipReason::Video(d) => write!(f, "video not read: {d}"),
            SkipReason::NoFace => write!(f, "no face found"),
            SkipReason::TooSmall(d) => write!(f, "too small: {d}"),
            SkipReason::Duplicate(first) => write!(
                f,
                "the same file as {} (another path to it): admitted once",
                first.display()
            ),
        }
    }
}

/// One skipped input: the file and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipReport {
    /// The file at fault.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl fmt::Display for SkipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A summary of skipped inputs, as written to a run's output files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipSummary {
    /// How many inputs were skipped.
    pub count: usize,
    /// Every skipped input, sorted by path.
    pub files: Vec<SkipReport>,
}

impl SkipSummary {
    /// A summary of `reports` (sorted by path, duplicates of a path removed).
    pub fn new(mut reports: Vec<SkipReport>) -> Self {
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        reports.dedup_by(|a, b| a.path == b.path);
        SkipSummary {
            count: reports.len(),
            files: reports,
        }
    }

    /// The summary as pretty-printed JSON.
    ///
    /// # Errors
    /// [`Error::Json`](crate::Error::Json) if serialisation fails (it does not for these types).
    pub fn to_json(&self) -> crate::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}
