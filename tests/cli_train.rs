//! `train` from the command line, end to end on a small synthetic set: it writes every
//! file it documents (and `evaluate`, `predict` and `compare` reopen what it wrote), guards
//! its output folder, runs on two processes and resumes, and bad input (an unknown model,
//! a missing GPU, an impossible input size) gives a clear error naming what is at fault.
//!
//! `cargo test` builds the examples before the tests; this runs the binaries it built
//! (`target/<profile>/examples/`).

use std::path::Path;
use std::process::{Command, Output};

use deepfake::data::synthetic;

mod common;
use common::{
    cli::{epochs_done, json, ok, run, s, train_meso4},
    example,
};

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
        let file = deepfake::train::run_files::read_safetensors(&dir.join("model.safetensors"))
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

/// `--augment` takes presets and items: a bad item is named before any file is written,
/// a spec trains, and a resumed run refuses a changed spec (the augmentation is part of
/// what the run learnt from).
#[test]
fn augment_specs_train_and_a_changed_spec_does_not_resume() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 6, 32, 3).expect("synthetic set");
    let out = tmp.path().join("run");
    let bad = common::cli::train_meso4(&data, &out, &["--augment", "study,jpeg:0-95"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("jpeg:0-95"),
        "{stderr}"
    );
    assert!(!out.exists(), "a refused spec wrote {}", out.display());

    let spec = "forensic,jpeg:30-95,rescale:0.5-1@0.5,contrast:0.8-1.2,saturation:0.7-1.3";
    let first = common::cli::train_meso4(&data, &out, &["--augment", spec]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stored = common::cli::json(&out.join("experiment.json"));
    assert_eq!(
        stored["data"]["augment"]["jpeg"]["quality"],
        serde_json::json!([30, 95])
    );
    assert_eq!(stored["data"]["augment"]["rescale"]["probability"], 0.5);

    let changed = common::cli::train_meso4(
        &data,
        &out,
        &["--augment", "forensic,jpeg:30-95", "--resume"],
    );
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(
        !changed.status.success() && stderr.contains("the augmentation differs"),
        "{stderr}"
    );
    let same = common::cli::train_meso4(&data, &out, &["--augment", spec, "--resume"]);
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
}

#[path = "../fixtures/lookup.rs"]
mod lookup;

/// A run audits its data first: a JPEG quality that differs between the classes
/// (Pillow's planted set, `scripts/fixtures/pillow_audit.py`) is printed as a note and
/// recorded in experiment.json; `--no-audit` skips it.
#[test]
fn train_audits_its_data_and_records_the_findings() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = lookup::path("pillow_audit", "planted/quality/train");
    let out = tmp.path().join("run");
    let args = [
        "--model",
        "meso4",
        "--data",
        s(&data),
        "--val-split",
        "0.5",
        "--epochs",
        "1",
        "--input-size",
        "32",
    ];
    let run_ = run(
        "train",
        &[&args[..], &["--device", "cpu", "--out", s(&out)]].concat(),
    );
    let stderr = String::from_utf8_lossy(&run_.stderr);
    assert!(run_.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: data audit: real images are JPEG quality 75, fake 95: a model can tell them apart without looking at faces"),
        "{stderr}"
    );
    let stored = common::cli::json(&out.join("experiment.json"));
    assert_eq!(stored["audit"]["findings"][0]["check"], "jpeg_quality");
    assert_eq!(stored["data"]["audit"], true);

    let quiet_out = tmp.path().join("no-audit");
    let skipped = run(
        "train",
        &[
            &args[..],
            &["--device", "cpu", "--no-audit", "--out", s(&quiet_out)],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        skipped.status.success() && !stderr.contains("data audit"),
        "{stderr}"
    );
    let stored = common::cli::json(&quiet_out.join("experiment.json"));
    assert!(stored.get("audit").is_none() && stored["data"]["audit"] == false);
}

/// `--pseudo-fakes`: an unknown method, a folder without real images, `--val` with
/// `--val-split` without pseudo-fakes: each refused naming the option, nothing written.
#[test]
fn pseudo_fake_options_are_checked_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 32, 1).expect("synthetic set");
    let val = tmp.path().join("val");
    synthetic::generate(&val, 2, 32, 2).expect("synthetic set");
    let fakes_only = tmp.path().join("fakes");
    synthetic::generate(&fakes_only, 2, 32, 3).expect("synthetic set");
    std::fs::remove_dir_all(fakes_only.join("real")).expect("drop the reals");
    let out_dir = tmp.path().join("run");
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["--data", s(&data), "--pseudo-fakes", "swap"],
            &["--pseudo-fakes", "swap", "sbi"],
        ),
        (
            &["--data", s(&fakes_only), "--pseudo-fakes", "sbi"],
            &["--pseudo-fakes", "real"],
        ),
        (
            &["--data", s(&data), "--val", s(&val), "--val-split", "0.5"],
            &["--val", "--val-split", "--pseudo-fakes"],
        ),
    ];
    for (args, words) in cases {
        let mut all = vec!["--model", "meso4", "--device", "cpu", "--out", s(&out_dir)];
        all.extend_from_slice(args);
        let out = run("train", &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        for w in words {
            assert!(stderr.contains(w), "{args:?}: names {w}: {stderr}");
        }
        assert!(!out_dir.exists(), "{args:?}: nothing written");
    }
}
