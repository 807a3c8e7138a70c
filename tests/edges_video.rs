//! Videos as a hostile or careless user gives them (issue 22): a video shorter than the
//! sampling interval, a one-frame video with `--evenly`, a file named `concat:b.mp4`
//! beside a text file `b.mp4`, an audio-only `.mp4`, a FIFO with a video name. Each is
//! either scored from the frames it really has or refused with a message naming it.
//!
//! The model is a small meso4 checkpoint written through the library (what it scores does
//! not matter here, only which frames it is given); the videos are made by the set-up's
//! ffmpeg, a few kilobytes each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{example, meso4_checkpoint};

/// Makes `dir/name` with ffmpeg from the `lavfi` source `source`, then `extra` output
/// options (the output given as a `file:` URL, so that any name is a file).
fn make(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let ffmpeg = deepfake::data::ffmpeg_path(&path).expect("ffmpeg: scripts/setup.sh provides one");
    let mut url = std::ffi::OsString::from("file:");
    url.push(path.as_os_str());
    let made = Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(extra)
        .arg(url)
        .status()
        .expect("ffmpeg");
    assert!(made.success(), "making {name}");
    path
}

/// `predict` run in `dir` with `args`.
fn predict(dir: &Path, args: &[&str]) -> Output {
    Command::new(example("predict"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("predict")
}

/// The one JSON line `predict` printed, after checking that it succeeded.
fn scored(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "predict failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON line")
}

/// Short videos give the frames they have (points 10): a 0.4 s video read one frame a
/// second gives its first frame (before: "ffmpeg found no video frame in it"); a one-frame
/// video with `--evenly` reports 1 frame (before: 32, the same frame made up 32 times).
/// A file named `concat:b.mp4` is that file, not ffmpeg's concat protocol reading the text
/// file `b.mp4` (point 11; before: "Invalid data found when processing input"). An
/// audio-only `.mp4` says it has no video stream (point 19; before: "Error opening output
/// files: Invalid argument"); a FIFO named like a video is refused as not a regular file.
#[test]
fn predict_scores_short_videos_reads_names_as_files_and_names_what_is_not_a_video() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let model = dir.join("model.safetensors");
    meso4_checkpoint(&model, |_| ());
    let model = model.to_str().expect("UTF-8 temporary path");
    make(
        dir,
        "short.mp4",
        "testsrc=size=64x48:rate=25:duration=0.4",
        &["-c:v", "mpeg4"],
    );
    make(
        dir,
        "one.mp4",
        "testsrc=size=64x48:rate=25",
        &["-frames:v", "1", "-c:v", "mpeg4"],
    );
    make(
        dir,
        "concat:b.mp4",
        "testsrc=size=64x48:rate=5:duration=2",
        &["-c:v", "mpeg4"],
    );
    std::fs::write(dir.join("b.mp4"), "a text file, not a video\n").expect("write");
    make(
        dir,
        "audio.mp4",
        "sine=frequency=440:duration=0.5",
        &["-c:a", "aac"],
    );
    let line = scored(&predict(dir, &["--weights", model, "--cpu", "short.mp4"]));
    assert_eq!(line["frames"], 1, "{line}");
    assert_eq!(line["frames_scored"], 1, "{line}");
    let line = scored(&predict(
        dir,
        &["--weights", model, "--cpu", "--evenly", "one.mp4"],
    ));
    assert_eq!(line["frames"], 1, "{line}");
    // Given by its relative name: two seconds, one frame a second.
    let line = scored(&predict(
        dir,
        &["--weights", model, "--cpu", "--per-frame", "concat:b.mp4"],
    ));
    assert_eq!(line["path"], "concat:b.mp4", "{line}");
    assert_eq!(line["frames"], 2, "{line}");
    // Not a video: named, exit 1.
    #[cfg(unix)]
    {
        let made = Command::new("mkfifo")
            .arg(dir.join("fifo.mp4"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
    }
    for (name, says) in [
        ("audio.mp4", "audio.mp4: no video stream in it"),
        #[cfg(unix)]
        ("fifo.mp4", "fifo.mp4: not a regular file (a FIFO)"),
    ] {
        let out = predict(dir, &["--weights", model, "--cpu", name]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// `evaluate` on class folders of videos shorter than a second: each video is in the
/// metrics (point 10; before: every one was left out as having no frame, and the run
/// failed with "no video could be scored").
#[test]
fn evaluate_counts_videos_shorter_than_the_sampling_interval() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let model = dir.join("model.safetensors");
    meso4_checkpoint(&model, |_| ());
    let videos = dir.join("videos");
    for (class, patterns) in [
        ("fake", ["testsrc", "smptebars"]),
        ("real", ["rgbtestsrc", "testsrc2"]),
    ] {
        std::fs::create_dir_all(videos.join(class)).expect("dir");
        for p in patterns {
            make(
                &videos.join(class),
                &format!("{p}.mp4"),
                &format!("{p}=size=64x48:rate=25:duration=0.4"),
                &["-c:v", "mpeg4"],
            );
        }
    }
    let out = dir.join("eval");
    let o = Command::new(example("evaluate"))
        .arg("--weights")
        .arg(&model)
        .arg("--data")
        .arg(&videos)
        .args(["--device", "cpu", "--out"])
        .arg(&out)
        .output()
        .expect("evaluate");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("4 videos") && !stdout.contains("skipped"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(out.join("videos.json")).expect("videos.json");
    let lines: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let lines = lines.as_array().expect("one line per video");
    assert_eq!(lines.len(), 4);
    for l in lines {
        assert_eq!(l["frames"], 1, "{l}");
    }
}
