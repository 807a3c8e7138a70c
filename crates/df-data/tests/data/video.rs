//! Video frames through ffmpeg (the set-up provides one): a video of six distinct pictures,
//! one a second, sampled per second from the start and spread evenly over its whole
//! length; each decoded frame matched to the picture it shows. Bad videos are errors
//! naming the file.

use std::path::{Path, PathBuf};

use df_data::{
    ffmpeg_path, frame_args, open_video, probe_video, video_frames, Error, FrameSampling,
    VideoFrame, VideoInfo, DECODER_THREADS, MAX_FRAME_SIDE,
};
use image::{Rgb, RgbImage};

/// Picture `k`: a flat colour far from the others', so that a decoded frame is matched to
/// it whatever the compression did.
fn picture(k: u8) -> RgbImage {
    RgbImage::from_pixel(64, 48, Rgb([k * 40, 255 - k * 40, (k % 2) * 200]))
}

/// The index of the picture `frame` shows.
fn which(frame: &RgbImage) -> u8 {
    (0..6u8)
        .min_by_key(|&k| {
            let p = picture(k);
            frame
                .as_raw()
                .iter()
                .zip(p.as_raw())
                .map(|(&a, &b)| u64::from(a.abs_diff(b)))
                .sum::<u64>()
        })
        .expect("six pictures")
}

#[test]
fn frames_are_sampled_per_second_or_evenly_and_bad_videos_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    for k in 0..6u8 {
        picture(k)
            .save(dir.path().join(format!("{k:03}.png")))
            .expect("png");
    }
    let video = dir.path().join("six.mp4");
    let ffmpeg = ffmpeg_path(&video).expect("ffmpeg: scripts/setup.sh provides one");
    let made = std::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-framerate", "1", "-i"])
        .arg(dir.path().join("%03d.png"))
        .args(["-c:v", "mpeg4", "-q:v", "2", "-r", "1"])
        .arg(&video)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let shown = |sampling: FrameSampling| -> Vec<u8> {
        video_frames(&video, &sampling)
            .expect("frames")
            .iter()
            .map(which)
            .collect()
    };
    let every = FrameSampling {
        per_second: 1.0,
        max_frames: 32,
        evenly: false,
        ..FrameSampling::default()
    };
    assert_eq!(shown(every), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        shown(FrameSampling {
            max_frames: 3,
            ..every
        }),
        vec![0, 1, 2],
        "from the start"
    );
    assert_eq!(
        shown(FrameSampling {
            max_frames: 3,
            evenly: true,
            ..every
        }),
        vec![0, 2, 4],
        "spread over the whole video"
    );
    // Bad videos: named, with the reason.
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    let junk = dir.path().join("junk.mkv");
    std::fs::write(&junk, b"no video here").expect("write");
    for (bad, says) in [(&empty, "zero-length"), (&junk, "ffmpeg could not read it")] {
        match video_frames(bad, &every) {
            Err(Error::Video { path, reason }) => {
                assert_eq!(&path, bad);
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{}: {:?}", bad.display(), other.map(|f| f.len())),
        }
    }
    match video_frames(
        &video,
        &FrameSampling {
            per_second: 0.0,
            ..every
        },
    ) {
        Err(Error::Video { reason, .. }) => assert!(reason.contains("positive"), "{reason}"),
        other => panic!("a zero rate: {:?}", other.map(|f| f.len())),
    }
}

/// Makes `dir/name` with ffmpeg from the `lavfi` source `source` (`testsrc=…`,
/// `sine=…`), then `extra` output options; the output is named as a `file:` URL so that
/// any name is a file.
fn make(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let ffmpeg = ffmpeg_path(&path).expect("ffmpeg: scripts/setup.sh provides one");
    let mut url = std::ffi::OsString::from("file:");
    url.push(path.as_os_str());
    let made = std::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(extra)
        .arg(url)
        .status()
        .expect("ffmpeg");
    assert!(made.success(), "making {name}");
    path
}

/// The value of option `name` in an ffmpeg command line.
fn option<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("no {name} in {args:?}"));
    &args[at + 1]
}

/// The command line asks ffmpeg for the frames used and nothing else (issue 22, points 3
/// and 11): the input as a `file:` URL after `-protocol_whitelist file`, two decoding
/// threads, a `select` filter (no `fps` filter, which duplicates frames), frames passed
/// through, at most `max_frames` of them, scaled down to the cap, as pictures on the
/// standard output (no file).
#[test]
fn the_ffmpeg_command_asks_only_for_the_frames_used() {
    let info = VideoInfo {
        width: 4000,
        height: 3000,
        frame_rate: Some(2.0),
        duration: Some(8.0),
        ffmpeg_version: Some((9, 0)),
    };
    let input = Path::new("/videos/concat:b.mp4");
    let sampling = FrameSampling {
        per_second: 1000.0,
        max_frames: 60,
        ..FrameSampling::default()
    };
    let strings = |sampling: &FrameSampling, info: &VideoInfo| -> Vec<String> {
        frame_args(input, info, sampling)
            .expect("arguments")
            .into_iter()
            .map(|a| a.into_string().expect("UTF-8"))
            .collect()
    };
    let args = strings(&sampling, &info);
    assert_eq!(MAX_FRAME_SIDE, 1920);
    assert_eq!(sampling.max_side, MAX_FRAME_SIDE, "the default cap");
    // Input options come before -i, which is followed by the file: URL.
    let i = args.iter().position(|a| a == "-i").expect("-i");
    assert_eq!(args[i + 1], "file:/videos/concat:b.mp4");
    assert!(args[..i].contains(&"-nostdin".to_string()), "{args:?}");
    assert_eq!(option(&args[..i], "-protocol_whitelist"), "file");
    assert_eq!(option(&args[..i], "-threads"), DECODER_THREADS.to_string());
    assert_eq!(DECODER_THREADS, 2);
    assert_eq!(option(&args, "-map"), "0:V:0");
    assert_eq!(option(&args, "-frames:v"), "60");
    assert_eq!(option(&args, "-fps_mode"), "passthrough");
    assert_eq!(option(&args, "-c:v"), "ppm");
    assert_eq!(option(&args, "-f"), "image2pipe");
    assert_eq!(args.last().map(String::as_str), Some("pipe:1"));
    let filter = option(&args, "-vf");
    assert!(!filter.contains("fps="), "{filter}");
    assert_eq!(
        filter,
        "select='isnan(prev_selected_t)+gt(floor(t*1000+0.000001),\
         floor(prev_selected_t*1000+0.000001))',\
         scale='min(iw,1920)':'min(ih,1920)':force_original_aspect_ratio=decrease"
    );
    // --evenly: max_frames over the duration (60 frames over 8 s: 7.5 a second); another
    // cap; an ffmpeg before 5.1 gets -vsync 0.
    let evenly = strings(
        &FrameSampling {
            evenly: true,
            max_side: 640,
            ..sampling
        },
        &VideoInfo {
            ffmpeg_version: Some((4, 4)),
            ..info
        },
    );
    let filter = option(&evenly, "-vf");
    assert!(filter.contains("floor(t*7.5+0.000001)"), "{filter}");
    assert!(
        filter.contains("scale='min(iw,640)':'min(ih,640)'"),
        "{filter}"
    );
    assert_eq!(option(&evenly, "-vsync"), "0");
    assert!(!evenly.contains(&"-fps_mode".to_string()));
    // Evenly without a duration, a zero cap: errors naming the file.
    for (bad, says) in [
        (
            FrameSampling {
                evenly: true,
                ..sampling
            },
            "no duration",
        ),
        (
            FrameSampling {
                max_side: 0,
                ..sampling
            },
            "largest frame side",
        ),
    ] {
        let info = VideoInfo {
            duration: None,
            ..info
        };
        match frame_args(input, &info, &bad) {
            Err(Error::Video { path, reason }) => {
                assert_eq!(path, input);
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

/// What `ffmpeg -i` prints is read for the video stream's size (not a codec tag such as
/// `0x31637661`), rate and duration, whatever the file's name and metadata say; a display
/// rotation of 90° turns the size; cover art is not a video; an audio-only file has no
/// video stream.
#[test]
fn the_probe_reads_the_video_stream_line() {
    let report = "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright (c) 2000-2026 the FFmpeg developers
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/Duration: 10:00:00.00, Input #0, x.mp4':
  Metadata:
    title           : Duration: 10:00:00.00, start: 0
    Stream #0:0: Video: h264, 16000x16000 : a key of the file's choosing
    comment         : two lines
                    : Stream #0:1: Video: h264, 9000x9000
  Duration: 00:01:02.50, start: 0.000000, bitrate: 133 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 126 kb/s, 29.97 fps, 29.97 tbr, 10240 tbn (default)
    Metadata:
      handler_name    : VideoHandler
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
At least one output file must be specified";
    assert_eq!(
        VideoInfo::from_ffmpeg_report(report),
        Ok(VideoInfo {
            width: 240,
            height: 320,
            frame_rate: Some(29.97),
            duration: Some(62.5),
            ffmpeg_version: Some((9, 0)),
        })
    );
    let cover_and_fast = "ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021 the FFmpeg developers
Input #0, matroska,webm, from 'file:/x.mkv':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x600, 90k tbr, 90k tbn (attached pic)
  Stream #0:1: Video: vp9 (Profile 0), yuv420p(tv), 1280x720, SAR 1:1 DAR 16:9, 1k fps, 1k tbr, 1k tbn
At least one output file must be specified";
    assert_eq!(
        VideoInfo::from_ffmpeg_report(cover_and_fast),
        Ok(VideoInfo {
            width: 1280,
            height: 720,
            frame_rate: Some(1000.0),
            duration: None,
            ffmpeg_version: Some((4, 4)),
        })
    );
    let audio = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/a.mp4':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 80 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 70 kb/s (default)
At least one output file must be specified";
    assert_eq!(
        VideoInfo::from_ffmpeg_report(audio),
        Err("no video stream in it".to_string())
    );
    let unreadable = "[in#0 @ 0x5] Error opening input: Invalid data found when processing input
Error opening input file file:/x.mp4.
Error opening input files: Invalid data found when processing input";
    let err = VideoInfo::from_ffmpeg_report(unreadable).expect_err("no input");
    assert!(
        err.contains("ffmpeg could not read it") && err.contains("Invalid data"),
        "{err}"
    );
}

/// A video shorter than the sampling interval gives its first frame (before: "ffmpeg
/// found no video frame in it"); `evenly` over a one-frame video gives that frame once
/// (before: 32 copies); a video displayed turned by 90° gives turned frames, probed so;
/// an audio-only file says it has no video stream (before: ffmpeg's "Error opening output
/// files: Invalid argument") (issue 22, points 10 and 19).
#[test]
fn short_videos_give_their_first_frame_and_audio_has_no_video_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = make(
        dir.path(),
        "short.mp4",
        "testsrc=size=64x48:rate=25:duration=0.4",
        &["-c:v", "mpeg4"],
    );
    let one = make(
        dir.path(),
        "one.mp4",
        "testsrc=size=64x48:rate=25",
        &["-frames:v", "1", "-c:v", "mpeg4"],
    );
    let every_second = FrameSampling::default();
    let frames = video_frames(&short, &every_second).expect("the short video's frames");
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].dimensions(), (64, 48));
    let evenly = FrameSampling {
        evenly: true,
        ..every_second
    };
    assert_eq!(video_frames(&one, &evenly).expect("frames").len(), 1);
    assert_eq!(video_frames(&short, &evenly).expect("frames").len(), 10);
    // A 64×48 video to be shown turned by 90°.
    let plain = make(
        dir.path(),
        "plain.mp4",
        "testsrc=size=64x48:rate=5:duration=1",
        &["-c:v", "mpeg4"],
    );
    let turned = dir.path().join("turned.mp4");
    let ffmpeg = ffmpeg_path(&turned).expect("ffmpeg");
    let made = std::process::Command::new(&ffmpeg)
        .args([
            "-nostdin",
            "-v",
            "error",
            "-display_rotation:v:0",
            "90",
            "-i",
        ])
        .arg(&plain)
        .args(["-c", "copy"])
        .arg(&turned)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let info = probe_video(&turned).expect("probe");
    assert_eq!((info.width, info.height), (48, 64));
    assert_eq!(info.frame_rate, Some(5.0));
    assert!(
        info.duration.is_some_and(|d| (d - 1.0).abs() < 0.01),
        "{info:?}"
    );
    let frames = video_frames(&turned, &every_second).expect("frames");
    assert_eq!(frames[0].dimensions(), (48, 64));
    let audio = make(
        dir.path(),
        "audio.mp4",
        "sine=frequency=440:duration=0.5",
        &["-c:a", "aac"],
    );
    for result in [
        video_frames(&audio, &every_second).map(|_| ()),
        probe_video(&audio).map(|_| ()),
    ] {
        match result {
            Err(Error::Video { path, reason }) => {
                assert_eq!(path, audio);
                assert_eq!(reason, "no video stream in it");
            }
            other => panic!("an audio-only file: {other:?}"),
        }
    }
}

/// Frames larger than the cap are scaled down by ffmpeg, keeping their proportions, and
/// say by how much; smaller ones are read as they are (issue 22, point 3).
#[test]
fn large_frames_are_scaled_down_to_the_cap_and_say_by_how_much() {
    let dir = tempfile::tempdir().expect("tempdir");
    let video = make(
        dir.path(),
        "wide.mp4",
        "testsrc=size=400x200:rate=4:duration=1",
        &["-c:v", "mpeg4"],
    );
    let sampling = FrameSampling {
        per_second: 2.0,
        max_side: 100,
        ..FrameSampling::default()
    };
    let frames: Vec<VideoFrame> = open_video(&video, &sampling)
        .expect("open")
        .collect::<Result<_, _>>()
        .expect("frames");
    assert_eq!(frames.len(), 2, "frames at 0 s and 0.5 s");
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(f.index, k);
        assert_eq!(f.image.dimensions(), (100, 50));
        assert_eq!(f.scale, 4.0);
    }
    let whole: Vec<VideoFrame> = open_video(
        &video,
        &FrameSampling {
            max_side: 400,
            ..sampling
        },
    )
    .expect("open")
    .collect::<Result<_, _>>()
    .expect("frames");
    assert_eq!(whole[0].image.dimensions(), (400, 200));
    assert_eq!(whole[0].scale, 1.0);
    // The scaled frame is the whole frame made smaller: its mean colour is the full one's.
    let mean = |img: &RgbImage| -> f64 {
        img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / img.as_raw().len() as f64
    };
    assert!(
        (mean(&frames[0].image) - mean(&whole[0].image)).abs() < 3.0,
        "{} vs {}",
        mean(&frames[0].image),
        mean(&whole[0].image)
    );
    // Stopping early stops ffmpeg (the drop waits for it).
    let mut stream = open_video(&video, &FrameSampling::default()).expect("open");
    assert!(stream.next().is_some());
    drop(stream);
}

/// What is not a regular file is refused before ffmpeg runs, naming it: a FIFO (ffmpeg
/// would wait on it for ever), a link to `/dev/zero` (endless), a folder (issue 22).
#[cfg(unix)]
#[test]
fn what_is_not_a_regular_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo.mp4");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let zero = dir.path().join("zero.mp4");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let folder = dir.path().join("folder.mp4");
    std::fs::create_dir(&folder).expect("mkdir");
    for (bad, says) in [
        (&fifo, "not a regular file (a FIFO)"),
        (&zero, "not a regular file (a character device)"),
        (&folder, "a folder, not a video"),
    ] {
        for result in [
            video_frames(bad, &FrameSampling::default()).map(|_| ()),
            probe_video(bad).map(|_| ()),
        ] {
            match result {
                Err(Error::Video { path, reason }) => {
                    assert_eq!(&path, bad);
                    assert!(reason.contains(says), "{}: {reason}", bad.display());
                }
                other => panic!("{}: {other:?}", bad.display()),
            }
        }
    }
}

/// The processes whose command line holds `needle`, and their resident memory in KiB.
fn processes_naming(needle: &str) -> (Vec<String>, u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (Vec::new(), 0);
    };
    let (mut pids, mut total) = (Vec::new(), 0);
    for e in entries.flatten() {
        let dir = e.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        pids.push(e.file_name().to_string_lossy().into_owned());
    }
    (pids, total)
}

/// ffmpeg's memory does not grow with the sampling rate (issue 22, point 3): a one-frame
/// 2000×2000 video read at 1000 frames a second, at most 60, keeps ffmpeg under 400 MiB
/// (measured: about 60 MiB). Before, the `fps` filter made up 1000 copies of the frame,
/// each converted to RGB at full size: gigabytes (this test stops ffmpeg over the bound).
#[cfg(target_os = "linux")]
#[test]
fn ffmpeg_memory_does_not_grow_with_the_sampling_rate() {
    const BOUND_KIB: u64 = 400 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let video = make(
        dir.path(),
        "big-one-frame.mp4",
        "testsrc=size=2000x2000:rate=1:duration=1",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let needle = video.to_string_lossy().into_owned();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (peak, frames) = std::thread::scope(|s| {
        let watch = s.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (pids, now) = processes_naming(&needle);
                peak = peak.max(now);
                if now > BOUND_KIB {
                    // Past the bound: stop the runaway ffmpeg (this test's: its command
                    // line names the test's own video) before it takes the machine.
                    let _ = std::process::Command::new("kill")
                        .arg("-KILL")
                        .args(&pids)
                        .status();
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak
        });
        let frames = open_video(
            &video,
            &FrameSampling {
                per_second: 1000.0,
                max_frames: 60,
                ..FrameSampling::default()
            },
        )
        .map(|frames| {
            frames
                .map(|f| f.map(|f| f.image.dimensions()))
                .collect::<Vec<_>>()
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (watch.join().expect("watcher"), frames)
    });
    assert!(
        peak > 0 && peak < BOUND_KIB,
        "ffmpeg's peak resident memory: {} MiB",
        peak / 1024
    );
    let frames = frames.expect("open");
    assert_eq!(frames.len(), 1, "the one frame, once: {frames:?}");
    assert_eq!(frames[0].as_ref().expect("frame"), &(1920, 1920));
}
