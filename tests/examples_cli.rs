//! The programs people run, end to end on a small synthetic set: `train` writes every
//! file it documents, `evaluate` and `predict` reopen its checkpoint, `compare` writes
//! the study's table, and bad input (an unknown model, a corrupt image) gives a clear
//! error naming what is at fault.
//!
//! `cargo test` builds the examples before the tests; this runs the binaries it built
//! (`target/<profile>/examples/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use deepfake::data::synthetic;

mod common;
use common::{example, meso4_checkpoint};

fn run(name: &str, args: &[&str]) -> Output {
    let output = Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"));
    output
}

fn ok(name: &str, args: &[&str]) -> (String, String) {
    let out = run(name, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "example {name} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

fn json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temporary path")
}

/// `train` on meso4 for one epoch with half the data held out, writing to `out`: its
/// options, then `extra` (`--input-size` and `--device` are 32 and cpu unless given).
fn train_meso4(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--model",
        "meso4",
        "--data",
        s(data),
        "--val-split",
        "0.5",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        s(out),
    ];
    for (flag, default) in [("--input-size", "32"), ("--device", "cpu")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend_from_slice(extra);
    run("train", &args)
}

#[test]
fn train_evaluate_predict_and_compare_on_a_synthetic_set() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 24, 64, 3).expect("synthetic set");
    // One corrupt file among the images: skipped and listed, not fatal.
    let corrupt = data.join("fake").join("zz-corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 this is not a JPEG").expect("corrupt file");

    // train
    let run_dir = tmp.path().join("run");
    let (stdout, _) = ok(
        "train",
        &[
            "--model",
            "meso4",
            "--data",
            s(&data),
            "--val-split",
            "0.25",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--input-size",
            "64",
            "--early-stop",
            "val_loss",
            "--reduce-lr",
            "val_loss",
            "--l2",
            "0.001",
            "--dropout",
            "0.3",
            "--seed",
            "5",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            s(&run_dir),
        ],
    );
    assert!(
        stdout.contains("val accuracy"),
        "train's summary line: {stdout}"
    );
    for file in [
        "config.json",
        "experiment.json",
        "last.safetensors",
        "best.safetensors",
        "model.safetensors",
        "history.json",
        "history.csv",
        "history.png",
        "history.svg",
        "metrics.json",
        "roc.png",
        "pr.png",
        "calibration.png",
        "skipped.json",
    ] {
        assert!(run_dir.join(file).is_file(), "train did not write {file}");
    }
    let history = json(&run_dir.join("history.json"));
    let epochs = history["epochs"]
        .as_array()
        .or_else(|| history.as_array())
        .expect("history.json lists epochs");
    assert_eq!(epochs.len(), 2, "two epochs were asked for: {history}");
    let csv = std::fs::read_to_string(run_dir.join("history.csv")).expect("history.csv");
    assert_eq!(csv.lines().count(), 3, "header and two epochs: {csv}");
    assert!(csv.lines().next().is_some_and(|h| h.contains("val_loss")));
    let skipped = std::fs::read_to_string(run_dir.join("skipped.json")).expect("skipped.json");
    assert!(
        skipped.contains("zz-corrupt.jpg"),
        "the corrupt file is listed as skipped: {skipped}"
    );
    let experiment = std::fs::read_to_string(run_dir.join("experiment.json")).expect("json");
    assert!(
        experiment.contains("meso4") && experiment.contains("0.3"),
        "{experiment}"
    );
    let metrics = json(&run_dir.join("metrics.json"));
    for key in ["accuracy", "auc", "log_loss", "ece"] {
        assert!(
            metrics.to_string().contains(key),
            "metrics.json has {key}: {metrics}"
        );
    }

    // evaluate: the checkpoint names its model, so --model may be left out.
    let eval_dir = tmp.path().join("eval");
    let model = run_dir.join("model.safetensors");
    ok(
        "evaluate",
        &[
            "--weights",
            s(&model),
            "--data",
            s(&data),
            "--device",
            "cpu",
            "--out",
            s(&eval_dir),
        ],
    );
    let metrics = json(&eval_dir.join("metrics.json"));
    let text = metrics.to_string();
    for key in [
        "accuracy",
        "auc",
        "ap",
        "eer",
        "log_loss",
        "ece",
        "confusion",
    ] {
        assert!(
            text.contains(key),
            "evaluate's metrics.json has {key}: {text}"
        );
    }
    for plot in ["roc.png", "pr.png"] {
        assert!(eval_dir.join(plot).is_file(), "evaluate wrote {plot}");
    }

    // predict: one JSON line per readable image, an error line naming the corrupt one,
    // exit code 1.
    let out = run("predict", &["--weights", s(&model), "--cpu", s(&data)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed image makes the exit code 1"
    );
    assert!(
        stderr.contains("zz-corrupt.jpg"),
        "stderr names the file: {stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line {l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 48, "every readable image is scored");
    for line in &lines {
        let p = line["p_fake"].as_f64().expect("p_fake");
        assert!((0.0..=1.0).contains(&p), "{line}");
        let label = line["label"].as_str().expect("label");
        assert_eq!(label, if p >= 0.5 { "fake" } else { "real" }, "{line}");
        assert!(line["path"].as_str().is_some_and(|p| p.ends_with(".jpg")));
    }

    // compare: two models, the study's columns, Markdown and JSON.
    let cmp_dir = tmp.path().join("compare");
    ok(
        "compare",
        &[
            "--models",
            "meso4,meso_inception4",
            "--data",
            s(&data),
            "--val-split",
            "0.25",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--input-size",
            "64",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            s(&cmp_dir),
        ],
    );
    let md = std::fs::read_to_string(cmp_dir.join("comparison.md")).expect("comparison.md");
    for column in [
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "best epoch",
        "fluctuation",
    ] {
        assert!(md.contains(column), "comparison.md has {column}: {md}");
    }
    assert!(
        md.contains("| meso4 |") && md.contains("| meso_inception4 |"),
        "{md}"
    );
    let table = json(&cmp_dir.join("comparison.json"));
    assert!(table.to_string().contains("meso_inception4"), "{table}");
}

#[test]
fn unknown_model_and_missing_data_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 32, 1).expect("synthetic set");
    let out = run(
        "train",
        &[
            "--model",
            "mesonet9",
            "--data",
            s(&data),
            "--out",
            s(tmp.path()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("mesonet9") && stderr.contains("meso4"),
        "names the unknown model and the known ones: {stderr}"
    );

    let missing = tmp.path().join("no-such-dir");
    let out = run(
        "train",
        &[
            "--model",
            "meso4",
            "--data",
            s(&missing),
            "--out",
            s(tmp.path()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no-such-dir"),
        "names the directory: {stderr}"
    );
}

/// Issue: `train --model efficientnet_b0` (and resnet50, vgg16, inception_resnet_v2, in
/// `train` and `compare`) failed after the first batch with "expected shape [8, 1] ...
/// got [8, 1000]": backbone models got Keras' ImageNet top. They train with the study's
/// head now, `compare --recipe study` takes each model's recipe, and the ImageNet top is a
/// clear error before any file is written.
#[test]
fn backbone_models_train_as_detectors_through_train_and_compare() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 8, 40, 5).expect("synthetic set");
    let run_dir = tmp.path().join("b0");
    let (stdout, _) = ok(
        "train",
        &[
            "--model",
            "efficientnet_b0",
            "--data",
            s(&data),
            "--val-split",
            "0.25",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--input-size",
            "32",
            "--quiet",
            "--out",
            s(&run_dir),
        ],
    );
    assert!(stdout.contains("val accuracy"), "{stdout}");
    let experiment = json(&run_dir.join("experiment.json"));
    let layers = &experiment["model"]["top"]["binary"]["layers"];
    let units: Vec<i64> = layers
        .as_array()
        .expect("the study head's layers are recorded")
        .iter()
        .map(|l| l["units"].as_i64().expect("units"))
        .collect();
    assert_eq!(units, [256, 128, 1], "the study head: {experiment}");

    let cmp_dir = tmp.path().join("cmp");
    let (stdout, _) = ok(
        "compare",
        &[
            "--models",
            "resnet50,efficientnet_b0",
            "--recipe",
            "study",
            "--head",
            "16,8",
            "--data",
            s(&data),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--input-size",
            "32",
            "--quiet",
            "--out",
            s(&cmp_dir),
        ],
    );
    assert!(stdout.contains("| resnet50 |"), "{stdout}");
    let rows = json(&cmp_dir.join("comparison.json"));
    let lrs: Vec<f64> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["lr"].as_f64().expect("lr"))
        .collect();
    assert_eq!(lrs, [2e-4, 1e-4], "the study's learning rates: {rows}");
    assert!(cmp_dir.join("histories.png").is_file());

    let imagenet_dir = tmp.path().join("imagenet");
    let out = run(
        "train",
        &[
            "--model",
            "resnet50",
            "--top",
            "imagenet",
            "--data",
            s(&data),
            "--input-size",
            "32",
            "--out",
            s(&imagenet_dir),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ImageNet top gives 1000 logits") && stderr.contains("invalid top"),
        "{stderr}"
    );
    assert!(!imagenet_dir.exists(), "nothing written before the error");
}

/// The study's final-model story: one model trained three times (no dropout, dropout 0.5,
/// dropout 0.5 + L2 1e-4 on the head's kernels), each run's settings recorded in its own
/// folder and the fluctuation of each one's validation curves in the table.
#[test]
fn final_model_trains_the_three_regularisation_variants() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 8, 40, 9).expect("synthetic set");
    let out = tmp.path().join("final");
    let (stdout, _) = ok(
        "final_model",
        &[
            "--model",
            "efficientnet_b0",
            "--data",
            s(&data),
            "--val-split",
            "0.25",
            "--epochs",
            "2",
            "--window",
            "2",
            "--batch-size",
            "8",
            "--input-size",
            "32",
            "--head",
            "16,8",
            "--quiet",
            "--out",
            s(&out),
        ],
    );
    assert!(stdout.contains("dropout 0.5 + L2 1e-4"), "{stdout}");
    let rows = json(&out.join("final_model.json"));
    let rows = rows.as_array().expect("rows");
    let settings: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["dropout"].as_f64().expect("dropout"),
                r["l2"].as_f64().expect("l2"),
            )
        })
        .collect();
    assert_eq!(settings, [(0.0, 0.0), (0.5, 0.0), (0.5, 1e-4)]);
    for (row, dir) in rows.iter().zip(["no-dropout", "dropout", "dropout-l2"]) {
        assert_eq!(row["epochs"].as_u64(), Some(2), "{row}");
        assert!(row["val_loss_fluctuation"].as_f64().is_some(), "{row}");
        let experiment = json(&out.join(dir).join("experiment.json"));
        assert_eq!(
            (
                experiment["model"]["dropout"].as_f64(),
                experiment["model"]["l2"].as_f64()
            ),
            (row["dropout"].as_f64(), row["l2"].as_f64()),
            "{dir} records its own regularisation: {experiment}"
        );
        assert_eq!(experiment["optimizer"]["kind"].as_str(), Some("adam"));
        assert_eq!(experiment["optimizer"]["lr"].as_f64(), Some(1e-4));
    }
    assert!(out.join("histories.png").is_file());
}

/// `examples/custom_model.rs`: a network built from blocks, with its own family, trains
/// through `Trainer`, and its checkpoint reopens through `load_checkpoint` once the family
/// is registered. The data separate by construction (a checkerboard marks the fakes), so
/// a model that learned anything scores well above chance.
#[test]
fn custom_model_trains_saves_and_reopens_through_its_family() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let out = tmp.path().join("custom");
    let (stdout, _) = ok("custom_model", &["--out", s(&out), "--epochs", "3"]);
    assert!(stdout.contains("identical logits"), "{stdout}");
    assert!(
        stdout.contains("reopened `tiny_detector` (family `tiny_detector`)"),
        "{stdout}"
    );
    let auc: f64 = stdout
        .split("AUC ")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no AUC in {stdout}"));
    assert!(auc > 0.9, "AUC {auc}: {stdout}");
    let history = json(&out.join("history.json"));
    assert_eq!(
        history["epochs"].as_array().map(Vec::len),
        Some(3),
        "{history}"
    );
}

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

fn first_file(dir: &Path) -> PathBuf {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| PathBuf::from(e.expect("entry").file_name()))
        .filter(|n| n.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    names.sort();
    names.remove(0)
}

/// `--device cuda` where libtorch sees no GPU: a clear error before any file is written,
/// not a panic in tch.
#[test]
fn asking_for_a_missing_gpu_is_a_clear_error() {
    if deepfake::tch::Cuda::device_count() > 0 {
        return; // this machine has one: the case cannot arise
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 32, 2).expect("synthetic set");
    let out_dir = tmp.path().join("run");
    let out = train_meso4(&data, &out_dir, &["--device", "cuda"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("libtorch sees 0 CUDA device"), "{stderr}");
    assert!(!out_dir.join("experiment.json").exists(), "nothing written");
}

/// `train`'s output folder under faults (issue 12, point 2): a second process on a folder
/// in use is refused; a fresh run into a folder holding a run is refused without
/// `--overwrite`; a bad option fails before any file is written; stale temporary files of
/// a killed write are removed; `--resume` refuses a changed seed, and a changed learning
/// rate unless `--allow-changes`, which applies it and notes it in the history.
#[test]
fn train_guards_its_output_folder() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 8, 32, 4).expect("synthetic set");
    let out = tmp.path().join("run");
    let base = |epochs: &'static str| -> Vec<String> {
        [
            "--model",
            "meso4",
            "--data",
            s(&data),
            "--val-split",
            "0.25",
            "--batch-size",
            "8",
            "--input-size",
            "32",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            s(&out),
            "--epochs",
            epochs,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let train = |args: &[String], extra: &[&str]| {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        run("train", &all)
    };
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // A second process while the first runs.
    let mut first = std::process::Command::new(example("train"))
        .args(base("400"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn train");
    let started = std::time::Instant::now();
    while !out.join("experiment.json").exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = train(&base("1"), &["--overwrite"]);
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success(), "two runs on one folder");
    assert!(
        err(&second).contains("in use by another run"),
        "{}",
        err(&second)
    );

    // A fresh run into a folder holding a run.
    let again = train(&base("1"), &[]);
    assert!(!again.status.success());
    assert!(
        err(&again).contains("already holds a run"),
        "{}",
        err(&again)
    );
    let o = train(&base("1"), &["--overwrite"]);
    assert!(o.status.success(), "{}", err(&o));

    // A bad option: nothing written, experiment.json untouched.
    let before = std::fs::read(out.join("experiment.json")).expect("experiment.json");
    let bad = train(&base("1"), &["--overwrite", "--batch-size", "0"]);
    assert!(!bad.status.success());
    assert_eq!(
        std::fs::read(out.join("experiment.json")).expect("again"),
        before
    );

    // Stale temporary files of an interrupted write of a run file go on the next start;
    // files that merely look alike are the user's and stay.
    let stale = [
        out.join(".tmp-999999-0-last.safetensors"),
        out.join(".tmp-AbCdE12345-best.safetensors"),
    ];
    for f in &stale {
        std::fs::write(f, b"half a checkpoint").expect("stale file");
    }
    let kept = [
        out.join(".tmp-notes.txt"),
        out.join(".tmp-AbCdE12345-notes.txt"),
        out.join("last.safetensors.tmp-999999"),
    ];
    for f in &kept {
        std::fs::write(f, b"the user's").expect("user file");
    }
    let o = train(&base("2"), &["--resume", "--allow-changes"]);
    assert!(o.status.success(), "{}", err(&o));
    for f in &stale {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    for f in &kept {
        assert!(f.exists(), "{} removed", f.display());
        std::fs::remove_file(f).expect("clean up");
    }

    // Resume: a changed seed is refused; a changed learning rate needs --allow-changes.
    let o = train(&base("3"), &["--resume", "--seed", "9"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("the seed differs"), "{}", err(&o));
    let o = train(&base("3"), &["--resume", "--lr", "0.0005"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("learning rate"), "{}", err(&o));
    let o = train(
        &base("3"),
        &["--resume", "--lr", "0.0005", "--allow-changes"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let history = json(&out.join("history.json"));
    let notes = history["notes"].to_string();
    assert!(notes.contains("learning rate"), "{history}");
    let last = &history["epochs"][2]["metrics"]["learning_rate"];
    assert!(
        (last.as_f64().expect("lr") - 0.0005).abs() < 1e-9,
        "{history}"
    );
}

/// `--input-size` beyond the machine is refused before the model or a batch is allocated,
/// saying how much it would need (issue 12, point 3).
#[test]
fn an_impossible_input_size_is_refused_up_front() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 32, 2).expect("synthetic set");
    for size in ["20000", "100000"] {
        let out_dir = tmp.path().join(format!("run{size}"));
        let started = std::time::Instant::now();
        let out = train_meso4(&data, &out_dir, &["--input-size", size]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{size}: {stderr}");
        assert!(stderr.contains("would need at least"), "{size}: {stderr}");
        assert!(
            started.elapsed().as_secs() < 10,
            "{size}: {:?}",
            started.elapsed()
        );
        assert!(!out_dir.join("experiment.json").exists());
    }
}

/// Messages in the user's terms, before any work (issue 12, point 5): a monitor the run
/// does not log, a threshold that is not a probability, a training-state checkpoint given
/// as weights, a class folder with an unknown name.
#[test]
fn messages_name_options_in_the_users_terms() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 32, 2).expect("synthetic set");
    let out_dir = tmp.path().join("run");
    let train =
        |extra: &[&str]| train_meso4(&data, &out_dir, &[&["--batch-size", "4"], extra].concat());
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // An OS error is printed once, not once per layer of the error chain.
    let missing = tmp.path().join("no-such-file.safetensors");
    let o = run(
        "evaluate",
        &[
            "--weights",
            s(&missing),
            "--data",
            s(&data),
            "--device",
            "cpu",
        ],
    );
    let text = stderr(&o);
    assert!(!o.status.success());
    assert!(text.contains("no-such-file.safetensors"), "{text}");
    for os in ["No such file or directory", "os error"] {
        assert!(
            text.matches(os).count() <= 1,
            "`{os}` more than once: {text}"
        );
    }

    let o = train(&["--early-stop", "bogus"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("`bogus` is not a metric this run logs"),
        "{}",
        stderr(&o)
    );
    assert!(!out_dir.join("experiment.json").exists(), "work started");

    let o = train(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval = |weights: &Path, extra: &[&str]| {
        let mut args = vec![
            "--weights",
            s(weights),
            "--data",
            s(&data),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        run("evaluate", &args)
    };
    let o = eval(&out_dir.join("model.safetensors"), &["--threshold", "2"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--threshold") && stderr(&o).contains("[0, 1]"),
        "{}",
        stderr(&o)
    );

    let o = eval(&out_dir.join("last.safetensors"), &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("use the run's `model.safetensors`"),
        "{}",
        stderr(&o)
    );

    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, [0xffu8; 64]).expect("junk");
    let o = eval(&junk, &[]);
    let text = stderr(&o);
    assert!(!o.status.success());
    for internal in [
        "HeaderTooLarge",
        "InvalidOffset",
        "TensorInvalidInfo",
        "SafeTensorError",
    ] {
        assert!(!text.contains(internal), "{text}");
    }
    assert!(
        text.contains("junk.safetensors") && text.contains("header"),
        "{text}"
    );

    std::fs::rename(data.join("fake"), data.join("generated")).expect("rename class");
    let o = eval(&out_dir.join("model.safetensors"), &[]);
    let text = stderr(&o);
    assert!(!o.status.success());
    assert!(
        !text.contains("ClassMapping") && text.contains("class folder `generated`"),
        "{text}"
    );
}

/// `--precision bf16` through train, evaluate and predict: the run records it (so a
/// resume keeps it), and a precision that does not exist is refused before any file.
#[test]
fn train_evaluate_and_predict_in_bf16() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 16, 48, 11).expect("synthetic set");
    let bad_out = tmp.path().join("bad");
    let out = train_meso4(&data, &bad_out, &["--precision", "int8"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--precision") && stderr.contains("int8"),
        "{stderr}"
    );
    assert!(!bad_out.exists(), "nothing is written for a bad option");

    let run_dir = tmp.path().join("run");
    let out = train_meso4(&data, &run_dir, &["--precision", "bf16"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&run_dir.join("experiment.json"))["precision"], "bf16");
    assert_eq!(json(&run_dir.join("config.json"))["precision"], "bf16");

    let model = run_dir.join("model.safetensors");
    let eval_dir = tmp.path().join("eval");
    ok(
        "evaluate",
        &[
            "--weights",
            s(&model),
            "--data",
            s(&data),
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "--out",
            s(&eval_dir),
        ],
    );
    let n = json(&eval_dir.join("metrics.json"))["n"].as_u64();
    assert_eq!(n, Some(32), "every image scored");
    let (stdout, _) = ok(
        "predict",
        &[
            "--weights",
            s(&model),
            "--cpu",
            "--precision",
            "bf16",
            s(&data),
        ],
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 32);
    assert!(lines
        .iter()
        .all(|l| l["p_fake"].as_f64().is_some_and(f64::is_finite)));
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

/// `train --nproc 2`: two processes over loopback Gloo train one model (rank 0 writes
/// everything; the report covers the whole validation set); the same run with one
/// process gives the same number of validation samples. A world size given without a
/// group is refused by name.
#[test]
fn train_with_two_processes_end_to_end() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 20, 48, 5).expect("synthetic set");
    let run_dir = tmp.path().join("run");
    let out = train_meso4(&data, &run_dir, &["--nproc", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "rank 0 alone prints the summary: {stdout}"
    );
    let experiment = json(&run_dir.join("experiment.json"));
    assert_eq!(experiment["world_size"], 2);
    let history = json(&run_dir.join("history.json"));
    let epochs = history["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 1);
    assert!(
        epochs.iter().all(|e| e["metrics"]["val_loss"]
            .as_f64()
            .is_some_and(f64::is_finite)),
        "{history}"
    );
    // The whole validation set (half of 40) in rank 0's report.
    assert_eq!(json(&run_dir.join("metrics.json"))["n"], 20);
    let meta =
        deepfake::models::checkpoint::read_checkpoint_meta(run_dir.join("model.safetensors"))
            .expect("a checkpoint of the distributed run");
    assert_eq!(meta.model, "meso4");
    deepfake::models::open_checkpoint(
        run_dir.join("model.safetensors"),
        deepfake::tch::Device::Cpu,
    )
    .expect("opens in a single process");

    // The world size is fixed on resume.
    let out = run(
        "train",
        &[
            "--model",
            "meso4",
            "--data",
            s(&data),
            "--val-split",
            "0.5",
            "--epochs",
            "2",
            "--input-size",
            "32",
            "--device",
            "cpu",
            "--quiet",
            "--resume",
            "--out",
            s(&run_dir),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the number of processes"), "{stderr}");
}

/// A rank killed mid-training: the other exits with an error naming its rank and the
/// collective it was in, within the group's timeout (`DF_DIST_TIMEOUT`), not a hang.
#[test]
fn a_killed_rank_makes_the_other_fail_clearly() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 16, 32, 8).expect("synthetic set");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
        .to_string();
    let spawn = |rank: &str| {
        Command::new(example("train"))
            .args([
                "--model",
                "meso4",
                "--data",
                s(&data),
                "--val-split",
                "0.5",
                "--epochs",
                "500",
                "--input-size",
                "32",
                "--device",
                "cpu",
                "--quiet",
                "--out",
                s(&tmp.path().join("run")),
            ])
            .env("RANK", rank)
            .env("WORLD_SIZE", "2")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port)
            .env("DF_DIST_TIMEOUT", "20")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start a rank")
    };
    let rank0 = spawn("0");
    let mut rank1 = spawn("1");
    // Training has started once rank 0 has written its first epoch.
    let history = tmp.path().join("run").join("history.json");
    let started = std::time::Instant::now();
    while !history.exists() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(history.exists(), "the run never started");
    rank1.kill().expect("kill rank 1");
    let _ = rank1.wait();
    let killed_at = std::time::Instant::now();
    let out = rank0.wait_with_output().expect("rank 0 ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rank 0 cannot go on alone: {stderr}");
    eprintln!("{stderr}");
    assert!(stderr.contains("rank 0 of 2"), "{stderr}");
    // Within the timeout (20 s), with room for a loaded machine.
    assert!(
        killed_at.elapsed() < std::time::Duration::from_secs(90),
        "{:?}",
        killed_at.elapsed()
    );
}

/// The epochs a run's `last.safetensors` says are done.
fn epochs_done(last: &Path) -> Option<u64> {
    let file = deepfake::train::checkpoint::read_safetensors(last).ok()?;
    let state: serde_json::Value = serde_json::from_str(file.metadata.get("train_state")?).ok()?;
    state["epochs_done"].as_u64()
}

/// A distributed run killed mid-way (both ranks) and resumed with `--nproc 2 --resume`
/// ends with the uninterrupted distributed run's weights and history.
#[test]
fn a_killed_distributed_run_resumes_to_the_uninterrupted_result() {
    const EPOCHS: &str = "24";
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 24, 64, 13).expect("synthetic set");
    let args = |out: &Path, resume: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "--model",
            "meso4",
            "--data",
            s(&data),
            "--val-split",
            "0.25",
            "--epochs",
            EPOCHS,
            "--input-size",
            "64",
            "--batch-size",
            "4",
            "--dropout",
            "0.3",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--workers",
            "1",
            "--quiet",
            "--out",
            s(out),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let whole = tmp.path().join("whole");
    let mut with_nproc = args(&whole, false);
    with_nproc.extend(["--nproc".to_string(), "2".to_string()]);
    let refs: Vec<&str> = with_nproc.iter().map(String::as_str).collect();
    ok("train", &refs);

    // The same run, both ranks started by hand and killed after a few epochs.
    let killed = tmp.path().join("killed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
        .to_string();
    let mut ranks: Vec<std::process::Child> = ["0", "1"]
        .iter()
        .map(|rank| {
            Command::new(example("train"))
                .args(args(&killed, false))
                .env("RANK", rank)
                .env("WORLD_SIZE", "2")
                .env("LOCAL_RANK", rank)
                .env("LOCAL_WORLD_SIZE", "2")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start a rank")
        })
        .collect();
    let last = killed.join("last.safetensors");
    let started = std::time::Instant::now();
    while epochs_done(&last).is_none_or(|e| e < 2) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "no checkpoint of epoch 2"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for r in &mut ranks {
        let _ = r.kill();
    }
    for r in &mut ranks {
        let _ = r.wait();
    }
    let at_kill = epochs_done(&last).expect("a checkpoint");
    assert!(
        at_kill < 24,
        "killed after the end: the test needs a slower run"
    );

    let mut resume = args(&killed, true);
    resume.extend(["--nproc".to_string(), "2".to_string()]);
    let refs: Vec<&str> = resume.iter().map(String::as_str).collect();
    ok("train", &refs);

    let tensors = |dir: &Path| {
        let file = deepfake::train::checkpoint::read_safetensors(&dir.join("model.safetensors"))
            .expect("model.safetensors");
        let mut t: Vec<(String, Vec<f32>)> = file
            .tensors
            .into_iter()
            .map(|(name, v)| (name, Vec::<f32>::try_from(v.reshape([-1])).expect("f32")))
            .collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t
    };
    let (a, b) = (tensors(&whole), tensors(&killed));
    assert_eq!(a.len(), b.len());
    let differ: Vec<&str> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0.as_str())
        .collect();
    assert!(
        differ.is_empty(),
        "killed after epoch {at_kill} and resumed: these differ from the uninterrupted run: {differ:?}"
    );
    let metrics = |dir: &Path| -> Vec<serde_json::Value> {
        json(&dir.join("history.json"))["epochs"]
            .as_array()
            .expect("epochs")
            .iter()
            .map(|e| {
                let mut m = e["metrics"].clone();
                m.as_object_mut().expect("metrics").remove("seconds");
                m
            })
            .collect()
    };
    assert_eq!(metrics(&whole), metrics(&killed));
}

/// `prepare_faces` without faces to find (photos with faces: the shared-data suite): what
/// it skips and why, resuming, refusing other settings for the same folder, and a bad
/// option refused before anything is written.
#[test]
fn prepare_faces_records_what_it_skips_resumes_and_guards_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("photos");
    std::fs::create_dir_all(input.join("real")).expect("dirs");
    std::fs::create_dir_all(input.join("fake")).expect("dirs");
    let grey = image::RgbImage::from_pixel(120, 100, image::Rgb([128, 128, 128]));
    grey.save(input.join("real/grey.png")).expect("png");
    std::fs::write(input.join("fake/broken.jpg"), b"not a picture").expect("write");
    std::fs::write(input.join("fake/clip.mp4"), b"not a video either").expect("write");
    std::fs::write(input.join("notes.txt"), b"ignored").expect("write");
    let out = dir.path().join("faces");
    let (stdout, _) = ok("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(
        stdout.contains("3 photos and videos, 0 with a face (0 crops), 3 skipped"),
        "{stdout}"
    );
    let manifest = json(&out.join("prepare-faces.json"));
    let skipped = &manifest["skipped"];
    assert_eq!(skipped["real/grey.png"], "no face found");
    assert!(
        skipped["fake/broken.jpg"]
            .as_str()
            .is_some_and(|r| r.starts_with("unreadable")),
        "{skipped}"
    );
    assert!(
        skipped["fake/clip.mp4"]
            .as_str()
            .is_some_and(|r| r.starts_with("unreadable video")),
        "{skipped}"
    );
    assert_eq!(manifest["settings"]["crop"]["margin"], 0.3);
    assert_eq!(manifest["settings"]["crop"]["size"], 256);
    // Started again: what the manifest records is not redone, even a photo that changed
    // since (the broken file is now a readable picture).
    grey.save_with_format(input.join("fake/broken.jpg"), image::ImageFormat::Png)
        .expect("png");
    let before = std::fs::read_to_string(out.join("prepare-faces.json")).expect("manifest");
    ok("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    let after = std::fs::read_to_string(out.join("prepare-faces.json")).expect("manifest");
    assert_eq!(before, after);
    // Other settings for the same folder are refused, naming it.
    let other = run(
        "prepare_faces",
        &["--input", s(&input), "--out", s(&out), "--size", "128"],
    );
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && err.contains("other settings"),
        "{err}"
    );
    // A bad option or an output inside the input: refused, nothing written.
    for (args, says) in [
        (vec!["--margin=-1"], "margin"),
        (vec!["--size", "0"], "crop size"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--fps=0"], "--fps"),
    ] {
        let fresh = dir.path().join("never");
        let mut all = vec!["--input", s(&input), "--out", s(&fresh)];
        all.extend(args);
        let r = run("prepare_faces", &all);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(says), "{says}: {err}");
        assert!(!fresh.exists(), "{says}: {} was written", fresh.display());
    }
    let inside = input.join("crops");
    let r = run(
        "prepare_faces",
        &["--input", s(&input), "--out", s(&inside)],
    );
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("inside --input"));
    assert!(!inside.exists());
}

/// `prepare_faces` refuses, before writing anything, exactly the inputs whose crops would
/// overwrite one another, naming both and the file: two photos (or two videos) with one
/// path but for the extension, and a photo named like a video's frame. A photo and a video
/// with the same stem do not clash (`a.png` against `a_f000.png`), nor does a name that is
/// not how a frame number is written.
#[test]
fn prepare_faces_refuses_exactly_the_names_that_would_clash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grey = image::RgbImage::from_pixel(60, 50, image::Rgb([128, 128, 128]));
    let folder = |name: &str, files: &[&str]| {
        let input = dir.path().join(name);
        std::fs::create_dir_all(&input).expect("dir");
        for f in files {
            let path = input.join(f);
            if f.ends_with(".mp4") {
                std::fs::write(&path, b"not a video").expect("write");
            } else {
                grey.save_with_format(&path, image::ImageFormat::Png)
                    .expect("picture");
            }
        }
        input
    };
    for (files, every_face, says) in [
        (&["clip.mp4", "clip_f000.jpg"][..], false, "clip_f000.png"),
        (&["clip.mp4", "clip_f1000.jpg"][..], false, "clip_f1000.png"),
        (
            &["clip.mp4", "clip_f007.jpg"][..],
            true,
            "clip_f007_face0.png",
        ),
        (&["b.png", "b.jpg"][..], false, "b.png"),
        (&["v.mp4", "v.avi"][..], false, "v_f000.png"),
    ] {
        let input = folder(&format!("clash-{}", files[1]), files);
        let out = dir.path().join(format!("out-{}", files[1]));
        let mut args = vec!["--input", s(&input), "--out", s(&out)];
        if every_face {
            args.push("--every-face");
        }
        let r = run("prepare_faces", &args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success()
                && err.contains(&format!("cropped to {says}"))
                && err.contains(files[0])
                && err.contains(files[1]),
            "{files:?}: {err}"
        );
        assert!(!out.exists(), "{files:?}: {} was written", out.display());
    }
    // No clash: each source is looked at (here none has a face).
    let input = folder(
        "fine",
        &[
            "a.mp4",
            "a.jpg",
            "clip.mp4",
            "clip_f12.jpg",
            "clip_f0000.jpg",
        ],
    );
    let out = dir.path().join("out-fine");
    let (stdout, _) = ok("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(stdout.contains("5 photos and videos"), "{stdout}");
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
        let mut frames: Vec<PathBuf> = std::fs::read_dir(data.join(class))
            .expect("frames")
            .map(|e| e.expect("entry").path())
            .collect();
        frames.sort();
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
