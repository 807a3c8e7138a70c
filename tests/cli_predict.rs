//! `predict` from the command line: its JSON lines and messages for folders, links, odd
//! names, closed pipes, damaged weights, the preparation a checkpoint records, faces and
//! videos. What the scoring computes is tested in df-detect; this is the program's
//! behaviour.
//!
//! `cargo test` builds the examples before the tests; this runs the binaries it built
//! (`target/<profile>/examples/`).

use std::path::Path;
use std::process::Command;

use deepfake::data::synthetic;

mod common;
use common::{
    cli::{first_file, json, ok, run, s, train_meso4},
    example, meso4_checkpoint,
};

/// `predict` as a hostile user runs it (issue 12): an empty folder says so; a folder with
/// link loops ends and scores each image once; a name that is not UTF-8 is printed
/// lossily; `| head -1` (the reader gone) ends quietly; weights holding NaN are an error
/// naming the file and the cause, not `"p_fake": null`.
#[cfg(unix)]
#[test]
fn predict_handles_empty_folders_link_loops_odd_names_closed_pipes_and_nan_weights() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    use std::process::Stdio;

    let tmp = tempfile::tempdir().expect("temporary directory");
    let weights = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = run("predict", &["--weights", s(&weights), "--cpu", s(&empty)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an empty folder is not a success");
    assert!(stderr.contains("no images or videos found"), "{stderr}");

    let data = tmp.path().join("data");
    synthetic::generate(&data, 3, 32, 5).expect("synthetic set");
    let images = data.join("real");
    symlink(".", images.join("self")).expect("self link");
    let first = first_file(&images);
    let mut odd = b"odd-\xff.".to_vec();
    odd.extend_from_slice(first.extension().expect("extension").as_bytes());
    let odd = std::ffi::OsStr::from_bytes(&odd);
    std::fs::copy(images.join(&first), images.join(odd)).expect("odd name");
    let out = run("predict", &["--weights", s(&weights), "--cpu", s(&images)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "three images and the odd name, once each: {stdout}"
    );
    assert!(stdout.contains("odd-\u{fffd}."), "{stdout}");

    let mut child = std::process::Command::new(example("predict"))
        .args(["--weights", s(&weights), "--cpu", s(&data)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn predict");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    // The reader is dropped here, as `head -1` exits.
    let out = child.wait_with_output().expect("predict ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(first.contains("p_fake"), "{first}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");

    let nan = tmp.path().join("nan.safetensors");
    meso4_checkpoint(&nan, |t| {
        let _ = t.shallow_clone().fill_(f64::NAN);
    });
    let out = run("predict", &["--weights", s(&nan), "--cpu", s(&images)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "NaN scores are not a success");
    assert!(!stdout.contains("null"), "{stdout}");
    assert!(stderr.contains("NaN or infinite"), "{stderr}");

    // `evaluate` with the same weights names the first file it scored NaN and why.
    let eval_out = tmp.path().join("eval");
    let out = run(
        "evaluate",
        &[
            "--weights",
            s(&nan),
            "--data",
            s(&data),
            "--device",
            "cpu",
            "--out",
            s(&eval_out),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(s(&data)) && stderr.contains("NaN") && stderr.contains("weights hold"),
        "{stderr}"
    );
}

/// Tried as a new user would: train with `--center-crop`, then evaluate without repeating
/// it. The checkpoint records how its images were prepared, and `evaluate` and `predict`
/// apply that by default: the same metrics and scores as with the flags given.
#[test]
fn evaluate_and_predict_apply_the_preparation_the_checkpoint_records() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 16, 64, 21).expect("synthetic set");
    let run_dir = tmp.path().join("run");
    let out = train_meso4(
        &data,
        &run_dir,
        &["--center-crop", "0.5", "--resize", "bilinear"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = run_dir.join("model.safetensors");
    let meta = deepfake::models::checkpoint::read_checkpoint_meta(&model).expect("metadata");
    assert_eq!(
        meta.preparation,
        Some(deepfake::models::ImagePreparation {
            resize: deepfake::models::ResizeMethod::Bilinear,
            center_crop: Some(0.5),
            faces: None,
        })
    );
    let evaluate = |weights: &Path, name: &str, flags: &[&str]| {
        let dir = tmp.path().join(name);
        let mut args = vec![
            "--weights",
            s(weights),
            "--data",
            s(&data),
            "--device",
            "cpu",
            "--out",
            s(&dir),
        ];
        args.extend_from_slice(flags);
        let (_, stderr) = ok("evaluate", &args);
        (json(&dir.join("metrics.json")), stderr)
    };
    let (recorded, stderr) = evaluate(&model, "eval-recorded", &[]);
    assert!(!stderr.contains("note:"), "nothing to report: {stderr}");
    let flags = ["--center-crop", "0.5", "--resize", "bilinear"];
    let (given, _) = evaluate(&model, "eval-given", &flags);
    assert_eq!(
        recorded, given,
        "no flags = the flags the model was trained with"
    );
    // A flag that contradicts the record wins and is reported; the crop matters here.
    let (whole, stderr) = evaluate(&model, "eval-whole", &["--center-crop", "1"]);
    assert!(
        stderr.contains("--center-crop 1 overrides the checkpoint's 0.5"),
        "{stderr}"
    );
    assert_ne!(whole["log_loss"], recorded["log_loss"]);

    let predict = |weights: &Path, flags: &[&str]| {
        let mut args = vec!["--weights", s(weights), "--cpu"];
        args.extend_from_slice(flags);
        args.push(s(&data));
        ok("predict", &args)
    };
    let (recorded_lines, stderr) = predict(&model, &[]);
    assert!(!stderr.contains("note:"), "{stderr}");
    assert_eq!(recorded_lines, predict(&model, &flags).0);
    assert_ne!(recorded_lines, predict(&model, &["--center-crop", "1"]).0);

    // A checkpoint that records nothing (as before format 3) keeps working with the
    // documented defaults (nearest, whole image), and says so.
    let loaded = deepfake::models::open_checkpoint(&model, deepfake::tch::Device::Cpu)
        .expect("open the checkpoint");
    let bare = tmp.path().join("bare.safetensors");
    deepfake::models::checkpoint::save_checkpoint(&loaded.var_store, loaded.model.as_ref(), &bare)
        .expect("save without a preparation");
    let (defaults, stderr) = evaluate(&bare, "eval-bare", &[]);
    assert!(
        stderr.contains("does not record how its training images were prepared")
            && stderr.contains("whole image, nearest resize"),
        "{stderr}"
    );
    let (explicit, _) = evaluate(
        &model,
        "eval-explicit",
        &["--center-crop", "1", "--resize", "nearest"],
    );
    assert_eq!(defaults, explicit);
}

/// A model trained on a `prepare_faces` folder records how its faces were cropped, and
/// `predict` then scores faces without being told (`--faces` for other checkpoints); an
/// image without a face is a result, not an error.
#[test]
fn a_model_trained_on_face_crops_makes_predict_score_faces() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("faces");
    synthetic::generate(&data, 16, 64, 23).expect("synthetic set");
    // What prepare_faces leaves beside its crops (the synthetic pictures stand in for them).
    std::fs::write(
        data.join("prepare-faces.json"),
        r#"{"settings": {"crop": {"size": 96, "margin": 0.25, "square": true, "align": true,
            "min_face_size": 0.0, "select": "largest"}}, "done": {}, "skipped": {}}"#,
    )
    .expect("manifest");
    let run_dir = tmp.path().join("run");
    let out = train_meso4(&data, &run_dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = run_dir.join("model.safetensors");
    let meta = deepfake::models::checkpoint::read_checkpoint_meta(&model).expect("metadata");
    assert_eq!(
        meta.preparation.and_then(|p| p.faces),
        Some(deepfake::models::FaceCropRecord {
            size: 96,
            margin: 0.25,
            square: true,
            align: true,
        })
    );
    let grey = tmp.path().join("grey.png");
    image::RgbImage::from_pixel(120, 100, image::Rgb([128, 128, 128]))
        .save(&grey)
        .expect("png");
    for (weights, flags) in [
        (&model, vec![]),
        (&run_dir.join("model.safetensors"), vec!["--faces"]),
    ] {
        let mut args = vec!["--weights", s(weights), "--cpu"];
        args.extend(flags);
        args.push(s(&grey));
        let (stdout, _) = ok("predict", &args);
        let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(line["label"], "no face", "{line}");
        assert!(line["p_fake"].is_null(), "{line}");
        assert_eq!(line["faces"], serde_json::json!([]));
    }
    // A whole-image checkpoint scores whole images unless asked.
    let plain_dir = tmp.path().join("plain");
    let plain_data = tmp.path().join("plain_data");
    synthetic::generate(&plain_data, 16, 64, 24).expect("synthetic set");
    assert!(train_meso4(&plain_data, &plain_dir, &[]).status.success());
    let plain = plain_dir.join("model.safetensors");
    let (stdout, _) = ok("predict", &["--weights", s(&plain), "--cpu", s(&grey)]);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert!(
        line["p_fake"].as_f64().is_some() && line.get("faces").is_none(),
        "{line}"
    );
    let (stdout, stderr) = ok(
        "predict",
        &["--weights", s(&plain), "--cpu", "--faces", s(&grey)],
    );
    assert!(stdout.contains("\"no face\""), "{stdout}");
    assert!(stderr.contains("records no face crop"), "{stderr}");
    // evaluate: a prepare_faces folder is scored as it is; another folder is said to be
    // taken as face crops.
    for (folder, noted) in [(&data, false), (&plain_data, true)] {
        let out_dir = tmp.path().join(format!("eval-{noted}"));
        let (_, stderr) = ok(
            "evaluate",
            &[
                "--weights",
                s(&model),
                "--data",
                s(folder),
                "--device",
                "cpu",
                "--out",
                s(&out_dir),
            ],
        );
        assert_eq!(stderr.contains("trained on face crops"), noted, "{stderr}");
    }
}

/// Videos through `predict` (ffmpeg from the set-up): frames sampled per second, scored,
/// averaged; a zero-length or undecodable video is an error naming it while the other
/// inputs are scored.
#[test]
fn predict_scores_videos_and_names_the_ones_it_cannot_read() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 16, 64, 25).expect("synthetic set");
    let run_dir = tmp.path().join("run");
    assert!(train_meso4(&data, &run_dir, &[]).status.success());
    let model = run_dir.join("model.safetensors");
    let clip = tmp.path().join("clip.mp4");
    let ffmpeg = deepfake::data::ffmpeg_path(&clip).expect("ffmpeg: scripts/setup.sh provides one");
    let made = Command::new(&ffmpeg)
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=96x80:rate=10",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let (stdout, _) = ok(
        "predict",
        &["--weights", s(&model), "--cpu", "--per-frame", s(&clip)],
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["frames"], 3, "{line}");
    assert_eq!(line["frames_scored"], 3, "{line}");
    let frames: Vec<f64> = line["per_frame"]
        .as_array()
        .expect("per_frame")
        .iter()
        .map(|v| v.as_f64().expect("a score"))
        .collect();
    let mean = frames.iter().sum::<f64>() / 3.0;
    assert!(
        (line["p_fake"].as_f64().expect("p_fake") - mean).abs() < 1e-12,
        "{line}"
    );
    // Half a frame a second over 3 s, at most 1.
    let (stdout, _) = ok(
        "predict",
        &[
            "--weights",
            s(&model),
            "--cpu",
            "--fps",
            "0.5",
            "--max-frames",
            "1",
            s(&clip),
        ],
    );
    assert!(stdout.contains("\"frames\":1"), "{stdout}");
    // Bad videos beside a good image.
    let empty = tmp.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    let junk = tmp.path().join("junk.avi");
    std::fs::write(&junk, b"this is not a video at all").expect("write");
    let image = data.join("real").join(first_file(&data.join("real")));
    let out = run(
        "predict",
        &[
            "--weights",
            s(&model),
            "--cpu",
            s(&empty),
            s(&junk),
            s(&image),
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success());
    assert!(
        stderr.contains("empty.mp4") && stderr.contains("zero-length"),
        "{stderr}"
    );
    assert!(
        stderr.contains("junk.avi") && stderr.contains("ffmpeg"),
        "{stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "the image is still scored: {stdout}"
    );
    // No ffmpeg to run: the video is named, the image still scored.
    let missing = Command::new(example("predict"))
        .env("DF_FFMPEG", tmp.path().join("no-ffmpeg-here"))
        .args(["--weights", s(&model), "--cpu", s(&clip), s(&image)])
        .output()
        .expect("predict");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("clip.mp4") && stderr.contains("no-ffmpeg-here"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&missing.stdout).lines().count(), 1);
}
