//! Videos as frames, through ffmpeg: the system's when on `PATH`, else the static build
//! `scripts/setup.sh` extracts from the PyPI package imageio-ffmpeg into the project's
//! cache (`$DF_FFMPEG` names another). Frames are sampled per second of video from its
//! start, or spread evenly over the whole video, up to a maximum, decoded by ffmpeg to PNG
//! in a temporary folder and read back as RGB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::RgbImage;

use crate::decode::load_rgb;
use crate::error::{Error, Result};

/// File extensions read as videos (lower case).
pub const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "avi", "mov", "mkv", "webm", "m4v"];

/// Whether `path` has a video extension (any case).
pub fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Which frames of a video are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSampling {
    /// Frames per second of video (1: one a second), from the start.
    pub per_second: f64,
    /// At most this many.
    pub max_frames: usize,
    /// Instead of `per_second`: `max_frames` frames spread evenly over the whole video
    /// (its duration read by ffmpeg), so that a long video is seen beyond its start.
    pub evenly: bool,
}

impl Default for FrameSampling {
    fn default() -> Self {
        Self {
            per_second: 1.0,
            max_frames: 32,
            evenly: false,
        }
    }
}

/// The duration ffmpeg reports for `path` ("Duration: HH:MM:SS.ss"), in seconds.
fn duration(ffmpeg: &Path, path: &Path) -> Option<f64> {
    // Without an output ffmpeg exits with an error, after printing the input's header.
    let out = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-i"])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let hms = text.split("Duration: ").nth(1)?.split(',').next()?.trim();
    let mut parts = hms.split(':').map(|p| p.parse::<f64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let total = h * 3600.0 + m * 60.0 + s;
    (total > 0.0).then_some(total)
}

/// The project's cache (`$DEEPFAKE_CACHE`, else `$XDG_CACHE_HOME/deepfake`, else
/// `~/.cache/deepfake`), where `scripts/setup.sh` puts libtorch, the face weights and
/// ffmpeg.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("DEEPFAKE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("deepfake")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/deepfake")))
        .unwrap_or_else(|| PathBuf::from(".cache/deepfake"))
}

/// The ffmpeg to run: `$DF_FFMPEG`, else `ffmpeg` on `PATH`, else the set-up's copy in
/// the cache.
///
/// # Errors
/// [`Error::Video`] (naming `for_file`) when there is none, saying how to get one.
pub fn ffmpeg_path(for_file: &Path) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DF_FFMPEG") {
        return Ok(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("ffmpeg");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let cached = cache_dir().join("ffmpeg").join("ffmpeg");
    if cached.is_file() {
        return Ok(cached);
    }
    Err(Error::Video {
        path: for_file.to_path_buf(),
        reason: "videos need ffmpeg, and there is none on PATH nor in the cache: run \
                 scripts/setup.sh (it extracts one), install ffmpeg, or set DF_FFMPEG"
            .into(),
    })
}

/// The sampled frames of the video at `path`, in order.
///
/// # Errors
/// [`Error::Video`] naming the file: no ffmpeg, a missing or empty file, ffmpeg's own
/// message for a file it cannot decode, or no frame.
pub fn video_frames(path: &Path, sampling: &FrameSampling) -> Result<Vec<RgbImage>> {
    let bad = |reason: String| Error::Video {
        path: path.to_path_buf(),
        reason,
    };
    if !(sampling.per_second.is_finite() && sampling.per_second > 0.0) || sampling.max_frames == 0 {
        return Err(bad(format!(
            "frame sampling: {} per second, at most {}: both must be positive",
            sampling.per_second, sampling.max_frames
        )));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Err(bad("a zero-length file, not a video".into())),
        Ok(_) => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    let ffmpeg = ffmpeg_path(path)?;
    let per_second = if sampling.evenly {
        let seconds = duration(&ffmpeg, path).ok_or_else(|| {
            bad("ffmpeg reports no duration for it (needed to spread the frames evenly)".into())
        })?;
        sampling.max_frames as f64 / seconds
    } else {
        sampling.per_second
    };
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "df-frames-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
        path: dir.clone(),
        source: e,
    })?;
    let frames = (|| {
        let out = Command::new(&ffmpeg)
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(path)
            .args(["-vf", &format!("fps={per_second}")])
            .args([
                "-frames:v",
                &sampling.max_frames.to_string(),
                "-f",
                "image2",
            ])
            .arg(dir.join("%06d.png"))
            .output()
            .map_err(|e| bad(format!("running {}: {e}", ffmpeg.display())))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            return Err(bad(format!(
                "ffmpeg could not read it ({}): {last}",
                out.status
            )));
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::Io {
                path: dir.clone(),
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(bad("ffmpeg found no video frame in it".into()));
        }
        names
            .iter()
            .map(|p| load_rgb(p).map_err(|why| bad(format!("frame {}: {why}", p.display()))))
            .collect::<Result<Vec<_>>>()
    })();
    let _ = std::fs::remove_dir_all(&dir);
    frames
}
