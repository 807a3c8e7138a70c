//! `evaluate` from the command line on a folder of videos: video-level metrics and the
//! files it writes. (Image folders: `cli_train`'s end-to-end run and `cli_predict`'s
//! preparation test run it too.)
//!
//! `cargo test` builds the examples before the tests; this runs the binaries it built
//! (`target/<profile>/examples/`).

use std::process::Command;

use deepfake::data::synthetic;

mod common;
use common::cli::{json, ok, run, s, train_meso4};
use common::meso4_checkpoint;

/// AUC as scikit-learn's `roc_auc_score` defines it for binary labels: the share of
/// (fake, real) pairs the scores rank right, ties counting half.
fn pair_auc(scores: &[f64], labels: &[f64]) -> f64 {
    let (mut right, mut pairs) = (0.0, 0.0);
    for (f, _) in scores.iter().zip(labels).filter(|(_, &l)| l == 1.0) {
        for (r, _) in scores.iter().zip(labels).filter(|(_, &l)| l == 0.0) {
            pairs += 1.0;
            right += if f > r {
                1.0
            } else if f == r {
                0.5
            } else {
                0.0
            };
        }
    }
    right / pairs
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// Two named sets (`NAME=DIR` and a plain folder) under two perturbations: one table with
/// a row per set and perturbation in `report.md`, the same rows in `metrics.json`
/// (`robustness`; the clean ones in `sets`), each AUC that of the row's scores in
/// `scores.json` (counted by pairs here), and the clean row's AUC exactly the single-set
/// run's.
#[test]
fn evaluate_robustness_and_cross_dataset_table() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let (a, b) = (tmp.path().join("set-a"), tmp.path().join("other"));
    synthetic::generate(&a, 6, 32, 3).expect("synthetic set");
    synthetic::generate(&b, 5, 40, 4).expect("synthetic set");
    let model = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&model, |_| ());
    let single = tmp.path().join("single");
    let base = ["--weights", s(&model), "--device", "cpu"];
    let mut args = base.to_vec();
    args.extend(["--data", s(&a), "--out", s(&single)]);
    ok("evaluate", &args);
    let single_auc = json(&single.join("metrics.json"))["auc"]
        .as_f64()
        .expect("the single set's AUC");
    // One set: the files as before, and `report.md` with its most confident errors
    // (issue 24; tested in cli_explain).
    let report = std::fs::read_to_string(single.join("report.md")).expect("report.md");
    assert!(report.contains("## Most confident errors"), "{report}");

    let out = tmp.path().join("eval");
    let named = format!("lfw={}", a.display());
    let mut args = base.to_vec();
    args.extend(["--data", &named, "--data", s(&b)]);
    args.extend(["--perturb", "jpeg:30", "blur:1,2", "--out", s(&out)]);
    let (stdout, _) = ok("evaluate", &args);
    let rows = [
        "lfw",
        "lfw+jpeg:30",
        "lfw+blur:1",
        "lfw+blur:2",
        "other",
        "other+jpeg:30",
        "other+blur:1",
        "other+blur:2",
    ];
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    // The table, then each image set's most confident errors (tested in cli_explain).
    let (head, errors) = report
        .split_once("\n## Most confident errors: `lfw`")
        .expect("the errors of lfw after the table");
    assert!(
        errors.contains("## Most confident errors: `other`"),
        "{report}"
    );
    let table: Vec<&str> = head.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(table[0], "| set | AUC | accuracy | EER | n |", "{report}");
    let names: Vec<&str> = table[1..]
        .iter()
        .map(|l| {
            l.split(" | ")
                .next()
                .expect("a cell")
                .trim_start_matches("| ")
        })
        .collect();
    assert_eq!(names, rows, "{report}");
    for (line, n) in table[1..].iter().zip([12, 12, 12, 12, 10, 10, 10, 10]) {
        assert!(line.ends_with(&format!(" | {n} |")), "{line}");
    }
    assert!(stdout.contains("| lfw+blur:2 |"), "{stdout}");

    let metrics = json(&out.join("metrics.json"));
    let robustness = metrics["robustness"].as_array().expect("robustness array");
    let scores = json(&out.join("scores.json"));
    let scores = scores.as_array().expect("one entry per row");
    assert_eq!((robustness.len(), scores.len()), (8, 8), "{metrics}");
    for ((entry, row), name) in robustness.iter().zip(scores).zip(rows) {
        assert_eq!(entry["row"], name, "{entry}");
        assert_eq!(row["row"], name, "{row}");
        let p = numbers(&row["p_fake"]);
        let labels = numbers(&row["labels"]);
        let auc = entry["metrics"]["auc"].as_f64().expect("an AUC");
        assert!((0.0..=1.0).contains(&auc), "{entry}");
        assert!(
            (auc - pair_auc(&p, &labels)).abs() < 1e-9,
            "{name}: AUC {auc} vs {} from its scores",
            pair_auc(&p, &labels)
        );
        let perturbation = name.split_once('+').map_or("clean", |(_, p)| p);
        assert_eq!(entry["perturbation"], perturbation, "{entry}");
    }
    assert_eq!(robustness[0]["metrics"]["auc"].as_f64(), Some(single_auc));
    let sets = metrics["sets"].as_array().expect("sets array");
    let set_names: Vec<&str> = sets.iter().filter_map(|e| e["set"].as_str()).collect();
    assert_eq!(set_names, ["lfw", "other"]);
}

/// `--data` names and `--perturb` values are checked before any file is written: a name
/// given twice (two folders of one name), a bad perturbation, perturbations of videos
/// (refused: they apply to image sets only).
#[test]
fn evaluate_protocol_options_are_checked_first() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let out = tmp.path().join("eval");
    let (x, y) = (tmp.path().join("x/val"), tmp.path().join("y/val"));
    let model = tmp.path().join("missing.safetensors");
    // A set of videos (the refusal comes before any video is read).
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(videos.join("fake")).expect("dir");
    std::fs::write(videos.join("fake/a.mp4"), b"not read").expect("write");
    for (extra, says) in [
        (
            vec!["--data", s(&videos), "--perturb", "jpeg:50"],
            "perturbations apply to image sets only",
        ),
        (
            vec!["--data", s(&x), "--data", s(&y)],
            "`val` is given twice",
        ),
        (vec!["--data", s(&x), "--perturb", "jpeg:0"], "jpeg:0"),
        (
            vec!["--data", s(&x), "--perturb", "sharpen:1"],
            "unknown kind",
        ),
    ] {
        let mut args = vec!["--weights", s(&model), "--out", s(&out)];
        args.extend(extra);
        let output = run("evaluate", &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(says),
            "{args:?}: {stderr}"
        );
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

/// `evaluate` on a folder of videos gives video-level metrics: each video scored as
/// `predict` scores it, the AUC that of those scores (checked here by counting pairs), an
/// unreadable video listed in `skipped.json`.
#[test]
fn evaluate_on_videos_gives_video_level_metrics() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 24, 64, 27).expect("synthetic set");
    let run_dir = tmp.path().join("run");
    assert!(train_meso4(&data, &run_dir, &[]).status.success());
    let model = run_dir.join("model.safetensors");
    let videos = tmp.path().join("videos");
    let ffmpeg = deepfake::data::ffmpeg_path(&videos).expect("ffmpeg (scripts/setup.sh)");
    for class in ["fake", "real"] {
        std::fs::create_dir_all(videos.join(class)).expect("dir");
        let frames = common::sorted_images(&data.join(class));
        // Three videos of four frames each, from the class's pictures.
        for v in 0..3 {
            let dir = tmp.path().join(format!("frames-{class}-{v}"));
            std::fs::create_dir_all(&dir).expect("dir");
            for (i, f) in frames[4 * v..4 * v + 4].iter().enumerate() {
                let img = deepfake::data::load_rgb(f).expect("frame");
                img.save(dir.join(format!("{i:03}.png"))).expect("png");
            }
            let made = Command::new(&ffmpeg)
                .args(["-nostdin", "-v", "error", "-framerate", "1", "-i"])
                .arg(dir.join("%03d.png"))
                .args(["-c:v", "mpeg4", "-q:v", "2", "-r", "1"])
                .arg(videos.join(class).join(format!("{class}{v}.mp4")))
                .status()
                .expect("ffmpeg");
            assert!(made.success());
        }
    }
    std::fs::write(videos.join("fake/broken.mp4"), b"not a video").expect("write");
    let out = tmp.path().join("eval");
    let (stdout, _) = ok(
        "evaluate",
        &[
            "--weights",
            s(&model),
            "--data",
            s(&videos),
            "--device",
            "cpu",
            "--out",
            s(&out),
        ],
    );
    assert!(
        stdout.contains("6 videos") && stdout.contains("1 videos skipped"),
        "{stdout}"
    );
    let metrics = json(&out.join("metrics.json"));
    let lines = json(&out.join("videos.json"));
    let lines = lines.as_array().expect("one line per video");
    assert_eq!(lines.len(), 6);
    let (mut fake, mut real) = (Vec::new(), Vec::new());
    for l in lines {
        assert_eq!(l["frames"], 4, "{l}");
        let p = l["p_fake"].as_f64().expect("p_fake");
        if l["path"].as_str().is_some_and(|p| p.contains("/fake/")) {
            fake.push(p);
        } else {
            real.push(p);
        }
    }
    // AUC: the share of (fake, real) pairs ranked right, ties counting half.
    let mut right = 0.0;
    for f in &fake {
        for r in &real {
            right += if f > r {
                1.0
            } else if f == r {
                0.5
            } else {
                0.0
            };
        }
    }
    let auc = right / (fake.len() * real.len()) as f64;
    let reported = metrics["auc"]
        .as_f64()
        .or_else(|| metrics["report"]["auc"].as_f64());
    assert!(
        reported.is_some_and(|a| (a - auc).abs() < 1e-6),
        "AUC {reported:?} vs {auc} from the videos' scores: {metrics}"
    );
    // The one skipped.json format of images and videos (df_data::SkipSummary).
    let skipped = json(&out.join("skipped.json"));
    assert_eq!(skipped["count"], 1, "{skipped}");
    let entry = &skipped["files"][0];
    assert!(
        entry["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("broken.mp4"))
            && entry["reason"]["kind"] == "video",
        "{skipped}"
    );
}
