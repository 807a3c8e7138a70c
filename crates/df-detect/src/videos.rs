//! Video-level evaluation: the labelled videos of a folder, each scored as a whole.

use std::path::{Path, PathBuf};

use df_data::{ClassMapping, Label, SkipReason, SkipReport};

use crate::detector::{Detector, VideoReport};
use crate::{Error, Result};

/// The videos of `data`'s class folders (`fake/`, `real/` ..., read as
/// [`ClassMapping::default`] reads them) with their labels, sorted by path; empty when it
/// holds no video.
///
/// # Errors
/// `data` or a class folder cannot be read; a class folder holding videos that is neither
/// fake nor real (each names the folder).
pub fn labelled_videos(data: &Path) -> Result<Vec<(PathBuf, Label)>> {
    let mapping = ClassMapping::default();
    let mut videos = Vec::new();
    let unreadable = |what: String, e: std::io::Error| Error::Message(format!("{what}: {e}"));
    let classes =
        std::fs::read_dir(data).map_err(|e| unreadable(format!("--data {}", data.display()), e))?;
    for class in classes {
        let class = class
            .map_err(|e| unreadable(format!("--data {}", data.display()), e))?
            .path();
        if !class.is_dir() {
            continue;
        }
        let name = class
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let at_fault = |e| unreadable(class.display().to_string(), e);
        for f in std::fs::read_dir(&class).map_err(at_fault)? {
            let f = f.map_err(at_fault)?.path();
            if df_data::has_video_extension(&f) {
                let label = mapping.label(&name).ok_or_else(|| Error::File {
                    path: class.clone(),
                    message: format!("class folder `{name}` is neither fake nor real"),
                })?;
                videos.push((f, label));
            }
        }
    }
    videos.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(videos)
}

/// What [`Detector::score_videos`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoScores {
    /// Each scored video's p(fake), in order.
    pub probs: Vec<f32>,
    /// Its target (1 fake, 0 real).
    pub targets: Vec<f32>,
    /// Its line, with each frame's score (and faces).
    pub reports: Vec<VideoReport>,
    /// The videos that could not be read, or show no face in any sampled frame.
    pub skipped: Vec<SkipReport>,
}

impl Detector {
    /// Scores each labelled video as [`Detector::score_video`] does; a video that cannot be
    /// read ([`SkipReason::Video`], naming it and why) or shows no face
    /// ([`SkipReason::NoFace`]) is skipped, not an error.
    pub fn score_videos(&self, videos: &[(PathBuf, Label)]) -> VideoScores {
        let mut scores = VideoScores::default();
        for (video, label) in videos {
            let reason = match self.score_video(video) {
                Ok(v) => match v.p_fake {
                    Some(p) => {
                        scores.probs.push(p as f32);
                        scores.targets.push(label.target());
                        scores.reports.push(v.report(video, true));
                        continue;
                    }
                    None => SkipReason::NoFace,
                },
                Err(e) => SkipReason::Video(df_io::error_text(&e)),
            };
            scores.skipped.push(SkipReport {
                path: video.clone(),
                reason,
            });
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, b"").expect("write");
    }

    #[test]
    fn labelled_videos_takes_the_videos_of_class_folders_sorted_with_their_labels() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        touch(&d.join("real/b.mp4"));
        touch(&d.join("real/a.MOV"));
        touch(&d.join("fake/c.webm"));
        touch(&d.join("fake/photo.jpg"));
        touch(&d.join("loose.mp4"));
        let videos = labelled_videos(d).expect("videos");
        assert_eq!(
            videos,
            vec![
                (d.join("fake/c.webm"), Label::Fake),
                (d.join("real/a.MOV"), Label::Real),
                (d.join("real/b.mp4"), Label::Real),
            ]
        );
    }

    #[test]
    fn a_folder_of_photos_has_no_videos() {
        let tmp = tempfile::tempdir().expect("tempdir");
        touch(&tmp.path().join("real/a.jpg"));
        assert!(labelled_videos(tmp.path()).expect("videos").is_empty());
    }

    #[test]
    fn a_class_folder_neither_fake_nor_real_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        touch(&tmp.path().join("other/a.mp4"));
        let e = labelled_videos(tmp.path())
            .expect_err("unknown class")
            .to_string();
        assert!(
            e.contains(&tmp.path().join("other").display().to_string())
                && e.contains("class folder `other` is neither fake nor real"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_data_folder_is_an_error_naming_the_option_and_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("nothing");
        let e = labelled_videos(&missing).expect_err("missing").to_string();
        assert!(
            e.starts_with(&format!("--data {}: ", missing.display())),
            "{e}"
        );
    }
}
