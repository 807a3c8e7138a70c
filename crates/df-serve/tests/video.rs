//! Videos: scored as df-detect scores the file, frame limits, and the temporary file
//! removed (one test in this binary: it points TMPDIR at a folder of its own).

mod common;

use axum::http::StatusCode;
use common::*;
use df_detect::{Detector, DetectorOptions};
use df_serve::{ServeConfig, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_is_scored_frame_by_frame_in_private_temporary_space_and_limits_hold() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let space = tempfile::tempdir().expect("tempdir");
    // The only test of this binary: nothing else reads the environment meanwhile.
    std::env::set_var("TMPDIR", space.path());
    let weights = checkpoint(tmp.path());
    let clip = video(
        tmp.path(),
        "clip.mp4",
        "testsrc=size=64x48:rate=10:duration=3",
    );
    let bytes = std::fs::read(&clip).expect("read");
    let detector = Detector::open(&weights, &DetectorOptions::default()).expect("detector");
    let expected = detector.score_video(&clip).expect("score");
    drop(detector);

    let server = Server::open(ServeConfig::new(&weights)).expect("server");
    let router = server.router();
    let (status, _, body) = call(&router, score(bytes.clone())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    assert_eq!(v["kind"], "video");
    assert_eq!(v["frames"], expected.frames.len());
    assert_eq!(v["frames"], 3);
    assert_eq!(v["frames_scored"], 3);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(64), Some(48))
    );
    let got = v["p_fake"].as_f64().expect("p_fake");
    let want = expected.p_fake.expect("a score");
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let per_frame: Vec<f64> = v["per_frame"]
        .as_array()
        .expect("per_frame")
        .iter()
        .map(|p| p.as_f64().expect("score"))
        .collect();
    for (got, frame) in per_frame.iter().zip(&expected.frames) {
        assert!((got - frame.p_fake.expect("score")).abs() < 1e-6);
    }
    // Frames of one video go through the inference thread together.
    assert_eq!(v["batch"], 3);
    let (status, _, body) = call(&router, multipart("clip.mp4", &bytes)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["path"], "clip.mp4");
    assert_eq!(
        std::fs::read_dir(space.path()).expect("list").count(),
        0,
        "the uploaded videos' temporary files are removed"
    );

    // Over the duration limit: refused before any frame is read.
    let mut config = ServeConfig::new(&weights);
    config.max_video_seconds = 2.0;
    let strict = Server::open(config).expect("server");
    let (status, _, body) = call(&strict.router(), score(bytes.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = json(&body)["error"].as_str().expect("error").to_string();
    assert!(e.contains("lasts 3.0 s, more than the limit of 2 s"), "{e}");
    let mut config = ServeConfig::new(&weights);
    config.max_video_frames = 20.0;
    let strict = Server::open(config).expect("server");
    let (status, _, body) = call(&strict.router(), score(bytes.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = json(&body)["error"].as_str().expect("error").to_string();
    assert!(
        e.contains("about 30 frames") && e.contains("limit of 20"),
        "{e}"
    );
    // A video cut short: ffmpeg's reason, without the temporary file's path.
    let (status, _, body) = call(&router, score(bytes[..bytes.len() / 3].to_vec())).await;
    let e = json(&body)["error"].as_str().expect("error").to_string();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e.contains("does not decode") && !e.contains(&space.path().display().to_string()),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(space.path()).expect("list").count(), 0);
}
