//! Videos as frames, through ffmpeg: the system's when on `PATH`, else the static build
//! `scripts/setup.sh` extracts from the PyPI package imageio-ffmpeg into the project's
//! cache (`$DF_FFMPEG` names another).
//!
//! Frames are sampled per second of video from its start, or spread evenly over the whole
//! video, up to a maximum. [`open_video`] streams them one at a time: ffmpeg writes each
//! sampled frame as an RGB picture (binary PPM: a short header with the size, then the
//! `rgb24` pixels) on its standard output, read through a pipe; no frame is ever a file,
//! and nothing goes through a temporary folder. [`video_frames`] collects them.
//!
//! How the video is handed to ffmpeg, so that no file can make it do more than decode it:
//! - the path must be a regular file (a FIFO, a device such as `/dev/zero` behind a link,
//!   or a folder is refused before ffmpeg runs, naming it), and is given as a `file:` URL
//!   of its absolute, resolved path, with `-protocol_whitelist file` and `-nostdin`: a
//!   file named `concat:b.mp4` or `-y` is read as that file, never as a protocol or an
//!   option;
//! - the video is probed first ([`probe_video`]: `ffmpeg -i`, its `Video:` stream line,
//!   as there may be no ffprobe): a file without a video stream says so;
//! - ffmpeg is asked only for the frames that will be used: time is cut into slots of
//!   one sampling interval from 0 (`1/per_second`, or with `evenly` the duration over
//!   `max_frames`) and a `select` filter keeps the first frame of each slot that has one
//!   (so the first frame always: a video shorter than the interval still gives one),
//!   frames pass through without duplication (`-fps_mode passthrough`, `-vsync 0`
//!   before ffmpeg 5.1), and `-frames:v` stops it after `max_frames`;
//! - frames larger than [`FrameSampling::max_side`] ([`MAX_FRAME_SIDE`], 1920 px on the
//!   longer side by default) are scaled down inside ffmpeg, keeping their proportions;
//!   [`VideoFrame::scale`] says how many of the video's pixels one pixel of the frame
//!   stands for, to report positions in the video's own pixels;
//! - ffmpeg's decoder gets [`DECODER_THREADS`] threads, whatever the machine's cores, since
//!   each decoding thread holds frames at the video's full size.
//!
//! So ffmpeg's memory is bounded by the video's frame size (times the few frames its
//! decoder threads hold), not by the sampling rate or the number of frames, and the
//! caller holds one capped frame at a time, or, with [`video_frames`], `max_frames` of
//! them. Both are checked against the memory available before ffmpeg starts
//! (`df_io::memory`: 16 bytes a pixel of the video's frame size for ffmpeg, 3 a pixel of
//! each capped frame held). Measured (`docs/reliability.md`, "Videos and faces"): 1000
//! frames a second of a 4000×4000 video, at most 60, took ffmpeg past 6 GiB before, and
//! `predict` with its ffmpeg 569 MiB now (425 MiB of which is `predict` with libtorch).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use image::RgbImage;

use crate::error::{Error, Result};

/// File extensions read as videos (lower case).
pub const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "avi", "mov", "mkv", "webm", "m4v"];

/// The default cap on a sampled frame's longer side, in pixels: frames larger than this
/// are scaled down by ffmpeg before they are read. 1920 (full HD) keeps faces far larger
/// than a face detector or a crop needs.
pub const MAX_FRAME_SIDE: u32 = 1920;

/// Decoding threads ffmpeg is given: each holds frames at the video's full size, so their
/// number bounds ffmpeg's memory, not the machine's cores.
pub const DECODER_THREADS: u32 = 2;

/// The last bytes of ffmpeg's messages kept (for the error of a video it cannot read).
const MESSAGES_KEPT: usize = 64 * 1024;

/// The most of `ffmpeg -i`'s report read when probing a video.
const PROBE_REPORT_MAX: u64 = 1 << 20;

/// Bytes ffmpeg is estimated to need per pixel of the video's frame size (measured: about
/// 11 for a 4000×4000 H.264 video with [`DECODER_THREADS`] threads, 180 MB).
const FFMPEG_BYTES_PER_PIXEL: u64 = 16;

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
    /// Frames whose longer side is larger than this many pixels are scaled down (by
    /// ffmpeg, keeping their proportions) to this size; [`MAX_FRAME_SIDE`] by default.
    pub max_side: u32,
}

impl Default for FrameSampling {
    fn default() -> Self {
        Self {
            per_second: 1.0,
            max_frames: 32,
            evenly: false,
            max_side: MAX_FRAME_SIDE,
        }
    }
}

impl FrameSampling {
    /// Why the sampling cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) || self.max_frames == 0 {
            return Some(format!(
                "frame sampling: {} per second, at most {}: both must be positive",
                self.per_second, self.max_frames
            ));
        }
        if self.max_side == 0 {
            return Some("frame sampling: a largest frame side of 0 pixels".into());
        }
        None
    }

    /// Bytes of one sampled frame of a video of `info`'s size (scaled to the cap).
    fn frame_bytes(&self, info: &VideoInfo) -> u64 {
        let (w, h) = capped_size(info.width, info.height, self.max_side);
        u64::from(w) * u64::from(h) * 3
    }
}

/// The size a `width`×`height` frame is read at: its own, or scaled down, keeping its
/// proportions, so that its longer side is `max_side` (an estimate: ffmpeg rounds).
fn capped_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_side || long == 0 {
        return (width, height);
    }
    let f = f64::from(max_side) / f64::from(long);
    let scaled = |v: u32| ((f64::from(v) * f).round() as u32).clamp(1, max_side);
    (scaled(width), scaled(height))
}

/// What `ffmpeg -i` says of a video: its first video stream's frame size (as shown:
/// turned when the file says it is to be shown turned by 90°), rate and duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    /// Width of a frame, in pixels, as ffmpeg decodes it (before any size cap).
    pub width: u32,
    /// Height of a frame, in pixels.
    pub height: u32,
    /// Frames per second, when ffmpeg reports it.
    pub frame_rate: Option<f64>,
    /// The duration in seconds, when ffmpeg reports one.
    pub duration: Option<f64>,
    /// The version of the ffmpeg that probed it (major, minor), from its banner; `None`
    /// when the banner does not tell (a build from git), taken as recent.
    pub ffmpeg_version: Option<(u32, u32)>,
}

impl VideoInfo {
    /// Reads what `ffmpeg -i` printed (its standard error): the banner's version, the
    /// `Duration:` line and the first `Video:` stream line that is not an attached
    /// picture (cover art).
    ///
    /// # Errors
    /// Why no video can be read from it, in words: no input was opened (ffmpeg's own last
    /// line is quoted), or there is no video stream.
    pub fn from_ffmpeg_report(report: &str) -> std::result::Result<VideoInfo, String> {
        let ffmpeg_version = report
            .lines()
            .find_map(|l| l.trim().strip_prefix("ffmpeg version "))
            .and_then(parse_version);
        // Whole lines only, outside the metadata blocks: a file's name or its metadata
        // (keys and values of the file's choosing) cannot pass for them.
        let report = without_metadata(report);
        let Some(input) = report.iter().position(|l| l.starts_with("Input #0, ")) else {
            let last = report
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| !l.is_empty())
                .unwrap_or("no message");
            return Err(format!("ffmpeg could not read it: {last}"));
        };
        let duration = report[input..]
            .iter()
            .find_map(|l| l.trim().strip_prefix("Duration: "))
            .and_then(|rest| rest.split(',').next())
            .and_then(parse_hms);
        let mut lines = report[input..].iter().copied().peekable();
        while let Some(line) = lines.next() {
            let line = line.trim();
            let Some((_, stream)) = line.split_once(": Video: ") else {
                continue;
            };
            if !line.starts_with("Stream #0:") || stream.contains("(attached pic)") {
                continue;
            }
            let Some((width, height)) = stream.split([',', ' ']).find_map(parse_size) else {
                return Err(format!(
                    "ffmpeg reports no frame size for its video stream: {line}"
                ));
            };
            let frame_rate = stream.split(", ").find_map(|field| {
                let value = field.trim().strip_suffix(" fps")?;
                let (value, factor) = match value.strip_suffix('k') {
                    Some(v) => (v, 1000.0),
                    None => (value, 1.0),
                };
                value
                    .parse::<f64>()
                    .ok()
                    .map(|v| v * factor)
                    .filter(|v| v.is_finite() && *v > 0.0)
            });
            // The stream's side data follows its line, indented further.
            let mut turned = false;
            while let Some(next) = lines.peek() {
                let next = next.trim();
                if next.starts_with("Stream #") || next.starts_with("Input #") {
                    break;
                }
                if let Some(rest) = next.to_ascii_lowercase().split("rotation of ").nth(1) {
                    let degrees = rest
                        .split_whitespace()
                        .next()
                        .and_then(|d| d.parse::<f64>().ok())
                        .unwrap_or(0.0);
                    turned = ((degrees.abs() / 90.0).round() as i64) % 2 == 1;
                }
                lines.next();
            }
            let (width, height) = if turned {
                (height, width)
            } else {
                (width, height)
            };
            return Ok(VideoInfo {
                width,
                height,
                frame_rate,
                duration,
                ffmpeg_version,
            });
        }
        Err("no video stream in it".into())
    }

    /// Whether this ffmpeg predates `-fps_mode` (5.1), and takes `-vsync 0` instead.
    fn old_ffmpeg(&self) -> bool {
        self.ffmpeg_version.is_some_and(|v| v < (5, 1))
    }
}

/// The lines of an ffmpeg report without its `Metadata:` blocks (each such line and the
/// lines indented further under it, a multi-line value's continuations included).
fn without_metadata(report: &str) -> Vec<&str> {
    let mut kept = Vec::new();
    let mut block: Option<usize> = None;
    for line in report.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(header) = block {
            if indent > header {
                continue;
            }
            block = None;
        }
        if line.trim() == "Metadata:" {
            block = Some(indent);
            continue;
        }
        kept.push(line);
    }
    kept
}

/// `"n9.0.2-17-g2a5…"`, `"4.4.2-0ubuntu0.22.04.1"`, `"6.1"`: (major, minor).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let text = text.strip_prefix('n').unwrap_or(text);
    let number = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// `"00:01:02.50"` → 62.5 seconds; `None` for `N/A` or a zero duration.
fn parse_hms(hms: &str) -> Option<f64> {
    let mut parts = hms.trim().split(':').map(|p| p.parse::<f64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let total = h * 3600.0 + m * 60.0 + s;
    (total.is_finite() && total > 0.0).then_some(total)
}

/// `"1920x1080"` → (1920, 1080); not a codec tag such as `0x31637661` (a leading zero).
fn parse_size(token: &str) -> Option<(u32, u32)> {
    let (w, h) = token.trim().split_once('x')?;
    let digits =
        |s: &str| !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(w) && digits(h)) {
        return None;
    }
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The last line of `text` with something on it.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
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

fn video_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Video {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The file `path` resolves to (links followed, absolute), once it is known to be a
/// non-empty regular file.
fn regular_file(path: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(path).map_err(|e| video_error(path, e.to_string()))?;
    if meta.is_dir() {
        return Err(video_error(path, "a folder, not a video"));
    }
    if !meta.is_file() {
        return Err(video_error(
            path,
            format!(
                "not a regular file ({}), not read as a video",
                file_kind(&meta.file_type())
            ),
        ));
    }
    if meta.len() == 0 {
        return Err(video_error(path, "a zero-length file, not a video"));
    }
    std::fs::canonicalize(path).map_err(|e| video_error(path, e.to_string()))
}

/// What a file that is neither a regular file nor a folder is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = kind;
    "a special file"
}

/// `file:` and the path: ffmpeg reads it as that file whatever its name holds
/// (`concat:…`, `-…`, `%d`).
fn file_url(resolved: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(resolved.as_os_str());
    url
}

/// The options that open `url` as a plain file: no standard input, only the `file`
/// protocol, [`DECODER_THREADS`] decoding threads.
fn input_args(url: &OsString) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-nostdin",
        "-threads",
        &DECODER_THREADS.to_string(),
        "-protocol_whitelist",
        "file",
        "-i",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(url.clone());
    args
}

/// Probes the video at `path` with `ffmpeg -i` (there may be no ffprobe): its frame size,
/// rate and duration.
///
/// # Errors
/// [`Error::Video`] naming the file: not a regular file (refused before ffmpeg runs), no
/// ffmpeg, a file ffmpeg cannot open (its message quoted), no video stream in it.
pub fn probe_video(path: &Path) -> Result<VideoInfo> {
    let resolved = regular_file(path)?;
    let ffmpeg = ffmpeg_path(path)?;
    probe_resolved(&ffmpeg, path, &resolved)
}

fn probe_resolved(ffmpeg: &Path, path: &Path, resolved: &Path) -> Result<VideoInfo> {
    // Without an output ffmpeg exits with an error, after printing the input's header.
    let mut child = Command::new(ffmpeg)
        .args(input_args(&file_url(resolved)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| video_error(path, format!("running {}: {e}", ffmpeg.display())))?;
    let mut report = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        // A file with megabytes of metadata cannot make this hold more than the cap.
        let _ = stderr.take(PROBE_REPORT_MAX).read_to_end(&mut report);
    }
    let _ = child.kill();
    let _ = child.wait();
    VideoInfo::from_ffmpeg_report(&String::from_utf8_lossy(&report))
        .map_err(|reason| video_error(path, reason))
}

/// The arguments [`open_video`] gives ffmpeg to stream the sampled frames of `input` (a
/// regular file's absolute path), probed as `info`: `input` as a `file:` URL with only
/// the `file` protocol allowed and [`DECODER_THREADS`] decoding threads; the first video
/// stream that is not a picture (cover art); a `select` filter that cuts time into slots
/// of one sampling interval from 0 and keeps the first frame of each slot that has one
/// (so the video's first frame always), frames
/// passed through without duplication, at most `max_frames` of them; a `scale` filter
/// down to `max_side` on the longer side (never up); RGB pictures (binary PPM) on
/// standard output.
///
/// # Errors
/// [`Error::Video`] naming `input`: the sampling is not usable, or `evenly` with no
/// duration reported.
pub fn frame_args(
    input: &Path,
    info: &VideoInfo,
    sampling: &FrameSampling,
) -> Result<Vec<OsString>> {
    build_frame_args(input, info, sampling).map_err(|why| video_error(input, why))
}

fn build_frame_args(
    input: &Path,
    info: &VideoInfo,
    sampling: &FrameSampling,
) -> std::result::Result<Vec<OsString>, String> {
    if let Some(problem) = sampling.problem() {
        return Err(problem);
    }
    // Sampled frames a second: time is cut into slots of 1/rate s from 0, and the first
    // frame of each slot is kept (the first frame of all always, however short the video).
    let rate = if sampling.evenly {
        let seconds = info
            .duration
            .ok_or("ffmpeg reports no duration for it (needed to spread the frames evenly)")?;
        sampling.max_frames as f64 / seconds
    } else {
        sampling.per_second
    }
    // Frames are never closer than a nanosecond: a higher rate means every frame (and
    // keeps t × rate exact in a double for videos of up to months).
    .min(1e9);
    // A frame whose time falls on a slot's start up to rounding belongs to that slot.
    let slot = |t: &str| format!("floor({t}*{rate}+0.000001)");
    let side = sampling.max_side;
    let filter = format!(
        "select='isnan(prev_selected_t)+gt({},{})',\
         scale='min(iw,{side})':'min(ih,{side})':force_original_aspect_ratio=decrease",
        slot("t"),
        slot("prev_selected_t")
    );
    let mut args: Vec<OsString> = ["-hide_banner", "-v", "error", "-filter_threads", "1"]
        .iter()
        .map(OsString::from)
        .collect();
    args.extend(input_args(&file_url(input)));
    let passthrough: &[&str] = if info.old_ffmpeg() {
        &["-vsync", "0"]
    } else {
        &["-fps_mode", "passthrough"]
    };
    let frames = sampling.max_frames.to_string();
    args.extend(
        ["-map", "0:V:0", "-vf", &filter]
            .iter()
            .chain(passthrough)
            .chain(&[
                "-frames:v",
                &frames,
                "-pix_fmt",
                "rgb24",
                "-c:v",
                "ppm",
                "-f",
                "image2pipe",
                "pipe:1",
            ])
            .map(OsString::from),
    );
    Ok(args)
}

/// One sampled frame of a video.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// Its place among the sampled frames (0 for the first).
    pub index: usize,
    /// Its pixels, scaled down to the sampling's `max_side` when larger.
    pub image: RgbImage,
    /// Pixels of the video per pixel of `image` (1 when not scaled down, else more):
    /// a position in `image` times `scale` is the position in the video's own frame.
    pub scale: f64,
}

/// The sampled frames of one video, streamed from ffmpeg one at a time ([`open_video`]).
/// Dropping it before the end stops ffmpeg.
#[derive(Debug)]
pub struct VideoFrames {
    path: PathBuf,
    info: VideoInfo,
    max_side: u32,
    child: Child,
    stdout: BufReader<ChildStdout>,
    messages: Option<JoinHandle<Vec<u8>>>,
    next: usize,
    done: bool,
}

impl VideoFrames {
    /// What the probe said of the video.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// The video file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        video_error(&self.path, reason)
    }

    /// Waits for ffmpeg to end; its exit status and the last of its messages.
    fn finish(&mut self) -> (Option<ExitStatus>, String) {
        let status = self.child.wait().ok();
        let messages = self
            .messages
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&messages).into_owned())
    }

    /// The end of the stream: `None` when ffmpeg ended well after at least one frame.
    fn end(&mut self) -> Option<Result<VideoFrame>> {
        self.done = true;
        let (status, messages) = self.finish();
        match status {
            Some(s) if s.success() => (self.next == 0).then(|| {
                Err(self.error(format!(
                    "ffmpeg found no video frame in it{}",
                    if messages.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", last_line(&messages))
                    }
                )))
            }),
            Some(s) => Some(Err(self.error(format!(
                "ffmpeg could not read it ({s}): {}",
                last_line(&messages)
            )))),
            None => Some(Err(self.error("waiting for ffmpeg failed"))),
        }
    }

    /// Reads one header field of a binary PPM: `None` at the end of the stream before it.
    fn header_field(&mut self) -> std::io::Result<Option<u32>> {
        let mut digits = String::new();
        loop {
            let buf = self.stdout.fill_buf()?;
            let Some(&b) = buf.first() else {
                return if digits.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            };
            self.stdout.consume(1);
            if b.is_ascii_whitespace() {
                if !digits.is_empty() {
                    break;
                }
            } else if b.is_ascii_digit() && digits.len() < 9 {
                digits.push(char::from(b));
            } else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("byte {b:#04x} in a picture header"),
                ));
            }
        }
        digits
            .parse()
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Reads the next picture ffmpeg sent: `None` at the end of the stream.
    fn read_picture(&mut self) -> std::result::Result<Option<RgbImage>, String> {
        let mut magic = [0u8; 2];
        match self.stdout.read(&mut magic[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(format!("reading ffmpeg's output: {e}")),
        }
        self.stdout
            .read_exact(&mut magic[1..])
            .map_err(|e| format!("reading ffmpeg's output: {e}"))?;
        if &magic != b"P6" {
            return Err(format!("ffmpeg's output is not an RGB picture ({magic:?})"));
        }
        let mut field = || -> std::result::Result<u32, String> {
            self.header_field()
                .map_err(|e| format!("reading ffmpeg's output: {e}"))?
                .ok_or_else(|| "ffmpeg's output ends in a picture header".to_string())
        };
        let (width, height, max) = (field()?, field()?, field()?);
        if max != 255 || width == 0 || height == 0 || width.max(height) > self.max_side {
            return Err(format!(
                "ffmpeg sent a {width}x{height} picture of maximum {max}, not an 8-bit RGB \
                 frame of at most {} pixels a side",
                self.max_side
            ));
        }
        // At most max_side² × 3 bytes: bounded by the cap, whatever the video.
        let mut pixels = vec![0u8; width as usize * height as usize * 3];
        self.stdout
            .read_exact(&mut pixels)
            .map_err(|e| format!("ffmpeg's output ends inside a frame: {e}"))?;
        RgbImage::from_raw(width, height, pixels)
            .map(Some)
            .ok_or_else(|| "a frame of the wrong length".to_string())
    }
}

impl Iterator for VideoFrames {
    type Item = Result<VideoFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_picture() {
            Ok(Some(image)) => {
                let index = self.next;
                self.next += 1;
                let long = f64::from(self.info.width.max(self.info.height));
                let scale = (long / f64::from(image.width().max(image.height()))).max(1.0);
                Some(Ok(VideoFrame {
                    index,
                    image,
                    scale,
                }))
            }
            Ok(None) => self.end(),
            Err(why) => {
                self.done = true;
                let _ = self.child.kill();
                let (_, messages) = self.finish();
                let said = if messages.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (ffmpeg: {})", last_line(&messages))
                };
                Some(Err(self.error(format!("{why}{said}"))))
            }
        }
    }
}

impl Drop for VideoFrames {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
        }
        let _ = self.finish();
    }
}

/// Opens the video at `path` and starts streaming its sampled frames: checks the file
/// (a regular file), probes it ([`probe_video`]), checks that ffmpeg's decoding of its
/// frame size and one frame at the capped size fit in the memory available, and starts
/// ffmpeg with [`frame_args`]. Its messages are collected by a thread (the last 64 KiB
/// kept).
///
/// # Errors
/// [`Error::Video`] naming the file: a sampling that is not usable, not a regular file,
/// no ffmpeg, a file ffmpeg cannot open, no video stream, a frame size too large for the
/// memory available. Errors while reading (ffmpeg's own message quoted, or no frame at
/// all) come as the iterator's items.
pub fn open_video(path: &Path, sampling: &FrameSampling) -> Result<VideoFrames> {
    open_holding(path, sampling, 1)
}

/// [`open_video`], checking the memory for `held` frames at the capped size.
fn open_holding(path: &Path, sampling: &FrameSampling, held: usize) -> Result<VideoFrames> {
    if let Some(problem) = sampling.problem() {
        return Err(video_error(path, problem));
    }
    let resolved = regular_file(path)?;
    let ffmpeg = ffmpeg_path(path)?;
    let info = probe_resolved(&ffmpeg, path, &resolved)?;
    let args =
        build_frame_args(&resolved, &info, sampling).map_err(|why| video_error(path, why))?;
    let decoding =
        (u64::from(info.width) * u64::from(info.height)).saturating_mul(FFMPEG_BYTES_PER_PIXEL);
    let each = sampling.frame_bytes(&info);
    df_io::memory::ensure_fits(
        decoding.saturating_add(each.saturating_mul(held as u64)),
        || {
            format!(
                "decoding its {}x{} frames and holding {held} of {} each",
                info.width,
                info.height,
                df_io::memory::human(each)
            )
        },
    )
    .map_err(|e| video_error(path, e.to_string()))?;
    let mut child = Command::new(&ffmpeg)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| video_error(path, format!("running {}: {e}", ffmpeg.display())))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(video_error(path, "ffmpeg's output could not be read"));
    };
    let messages = match std::thread::Builder::new()
        .name("ffmpeg-messages".into())
        .spawn(move || drain_messages(stderr))
    {
        Ok(h) => h,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(video_error(path, format!("starting a thread: {e}")));
        }
    };
    Ok(VideoFrames {
        path: path.to_path_buf(),
        info,
        max_side: sampling.max_side,
        child,
        stdout: BufReader::with_capacity(1 << 16, stdout),
        messages: Some(messages),
        next: 0,
        done: false,
    })
}

/// Reads `stderr` to its end, keeping its last [`MESSAGES_KEPT`] bytes.
fn drain_messages(mut stderr: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > MESSAGES_KEPT {
                    kept.drain(..kept.len() - MESSAGES_KEPT);
                }
            }
        }
    }
}

/// The sampled frames of the video at `path`, in order, collected ([`open_video`] streams
/// them one at a time). The memory they take (`max_frames` frames at the capped size) is
/// checked against the memory available before ffmpeg starts.
///
/// # Errors
/// [`Error::Video`] naming the file: no ffmpeg, a missing, empty or not regular file,
/// ffmpeg's own message for a file it cannot decode, no video stream, no frame, or not
/// enough memory for the frames.
pub fn video_frames(path: &Path, sampling: &FrameSampling) -> Result<Vec<RgbImage>> {
    open_holding(path, sampling, sampling.max_frames)?
        .map(|f| f.map(|f| f.image))
        .collect()
}
