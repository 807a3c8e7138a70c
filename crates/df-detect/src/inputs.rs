//! The files a detector scores: photos and videos named, or found in folders.

use std::path::{Path, PathBuf};

use df_data::{SkipReason, SkipReport, Walker};

use crate::detector::{Detector, Scored};
use crate::{Error, Result};

/// The extensions of the files looked for in folders (any case): photos, then videos.
pub const INPUT_EXTENSIONS: [&str; 11] = [
    "jpg", "jpeg", "png", "bmp", "webp", "mp4", "avi", "mov", "mkv", "webm", "m4v",
];

/// The files to score, found by [`find_inputs`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// The photos and videos, in order: each folder's sorted, then the files named.
    pub files: Vec<PathBuf>,
    /// Folders that could not be read: the path and why.
    pub failures: Vec<(PathBuf, String)>,
    /// Files with a photo or video name that a folder's walk left out, never opened (not a
    /// regular file: a FIFO, a link to `/dev/zero`; a link to nothing), with the reason.
    pub skipped: Vec<SkipReport>,
}

fn wanted(p: &Path) -> bool {
    df_data::has_image_extension(p) || df_data::has_video_extension(p)
}

/// The photo and video files named by `inputs`: files as given, folders searched
/// recursively for photo and video extensions (sorted), each real folder read once and
/// each file listed once whatever links lead to it (`df_data::Walker`). A missing file
/// named is listed, so that scoring it names it; one given twice (or also found in a
/// folder) is listed once.
pub fn find_inputs(inputs: &[PathBuf]) -> Inputs {
    let mut walker = Walker::new(true);
    let mut found = Inputs::default();
    let dirs: Vec<&Path> = inputs
        .iter()
        .filter(|p| p.is_dir())
        .map(PathBuf::as_path)
        .collect();
    match walker.walk_all(&dirs) {
        Ok(walked) => {
            for w in walked {
                found
                    .files
                    .extend(w.files.into_iter().filter(|p| wanted(p)));
                // Another path to a file scored anyway is not worth a line.
                found.skipped.extend(
                    w.skipped.into_iter().filter(|r| {
                        wanted(&r.path) && !matches!(r.reason, SkipReason::Duplicate(_))
                    }),
                );
            }
        }
        Err(df_data::Error::Io { path, source }) => found.failures.push((path, source.to_string())),
        Err(e) => found
            .failures
            .push((PathBuf::from("input folders"), e.to_string())),
    }
    for input in inputs {
        if input.is_dir() {
            continue;
        } else if !input.exists() || !walker.file(input).files.is_empty() {
            found.files.push(input.clone());
        }
    }
    found
}

/// A stream of [`Scored`] files ([`Detector::score_folder`], [`Detector::score_inputs`]):
/// first the files left out, then the folders that could not be read, then each file
/// scored as it is asked for.
#[derive(Debug)]
pub struct Scores<'a> {
    detector: &'a Detector,
    skipped: std::vec::IntoIter<SkipReport>,
    failures: std::vec::IntoIter<(PathBuf, String)>,
    files: std::vec::IntoIter<PathBuf>,
}

impl Iterator for Scores<'_> {
    type Item = Scored;

    fn next(&mut self) -> Option<Scored> {
        if let Some(r) = self.skipped.next() {
            return Some(Scored::Skipped {
                path: r.path,
                reason: r.reason,
            });
        }
        if let Some((path, why)) = self.failures.next() {
            let message = format!("{}: {why}", path.display());
            return Some(Scored::Failed { path, message });
        }
        let path = self.files.next()?;
        Some(match self.detector.score_path(&path) {
            Ok(verdict) => Scored::Scored { path, verdict },
            // The message names the file and the reason.
            Err(e) => Scored::Failed {
                message: df_io::error_text(&e),
                path,
            },
        })
    }
}

impl Detector {
    /// Scores the photos and videos of `folder` (searched recursively, sorted), one at a
    /// time as the stream is read.
    ///
    /// # Errors
    /// `folder` is not a folder (the error names it). Files that cannot be scored are
    /// items of the stream ([`Scored::Failed`]), not errors.
    pub fn score_folder(&self, folder: impl AsRef<Path>) -> Result<Scores<'_>> {
        let folder = folder.as_ref();
        if !folder.is_dir() {
            return Err(Error::File {
                path: folder.to_path_buf(),
                message: "not a folder".into(),
            });
        }
        Ok(self.score_inputs(find_inputs(&[folder.to_path_buf()])))
    }

    /// Scores `inputs` ([`find_inputs`]) as a stream.
    pub fn score_inputs(&self, inputs: Inputs) -> Scores<'_> {
        Scores {
            detector: self,
            skipped: inputs.skipped.into_iter(),
            failures: inputs.failures.into_iter(),
            files: inputs.files.into_iter(),
        }
    }
}
