//! The study programs from the command line: `compare` (with backbone models through
//! `train` too), `final_model` and `custom_model`.
//!
//! `cargo test` builds the examples before the tests; this runs the binaries it built
//! (`target/<profile>/examples/`).

use deepfake::data::synthetic;

mod common;
use common::cli::{json, ok, run, s};

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

/// Issue 24, point 4: `compare --test NAME=DIR` scores each final model on further sets
/// (DeepfakeBench's cross-dataset protocol: train on one, test on many), one AUC column
/// per set; the figure is the one `evaluate` gives the same checkpoint on that folder (a
/// separate code path: `evaluate_in`); a name given twice is refused before any training.
#[test]
fn compare_scores_each_model_on_the_named_test_sets() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 8, 32, 3).expect("synthetic set");
    let other = tmp.path().join("other");
    synthetic::generate(&other, 6, 32, 11).expect("second synthetic set");
    let cmp_dir = tmp.path().join("cmp");
    let args = |tests: &[String]| {
        let mut a: Vec<String> = [
            "--models",
            "meso4",
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
        ]
        .iter()
        .map(|v| v.to_string())
        .collect();
        for t in tests {
            a.extend(["--test".to_string(), t.clone()]);
        }
        a
    };
    let twice = args(&[format!("x={}", s(&other)), format!("x={}", s(&data))]);
    let out = run(
        "compare",
        &twice.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--test: the name `x` is given twice"),
        "{stderr}"
    );
    assert!(!cmp_dir.exists(), "nothing written before the error");

    let good = args(&[format!("far={}", s(&other)), s(&data).to_string()]);
    let (stdout, _) = ok(
        "compare",
        &good.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        stdout.contains("AUC far") && stdout.contains("AUC data"),
        "{stdout}"
    );
    let rows = json(&cmp_dir.join("comparison.json"));
    let tests = rows[0]["tests"].as_array().expect("test cells");
    let columns: Vec<&str> = tests
        .iter()
        .map(|t| t["column"].as_str().expect("column"))
        .collect();
    assert_eq!(columns, ["far", "data"]);
    for (t, dir) in tests.iter().zip([&other, &data]) {
        let eval_dir = tmp
            .path()
            .join(format!("eval-{}", t["column"].as_str().expect("name")));
        let checkpoint = cmp_dir.join("meso4").join("model.safetensors");
        ok(
            "evaluate",
            &[
                "--weights",
                s(&checkpoint),
                "--data",
                s(dir),
                "--out",
                s(&eval_dir),
            ],
        );
        let metrics = json(&eval_dir.join("metrics.json"));
        let want = metrics["auc"].as_f64().expect("evaluate's AUC");
        let got = t["auc"].as_f64().expect("compare's AUC");
        assert!(
            (got - want).abs() < 1e-9,
            "{}: compare {got}, evaluate {want}",
            t["column"]
        );
    }
}
