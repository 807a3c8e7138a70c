//! Video frames through ffmpeg (the set-up provides one): a video of six distinct pictures,
//! one a second, sampled per second from the start and spread evenly over its whole
//! length; each decoded frame matched to the picture it shows. Bad videos are errors
//! naming the file.

use df_data::{ffmpeg_path, video_frames, Error, FrameSampling};
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
