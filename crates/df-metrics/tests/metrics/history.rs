//! History records, files and analysis, on small hand-computed examples.

use std::collections::BTreeMap;

use approx::assert_relative_eq;
use df_metrics::{AnalysisConfig, EpochRecord, Error, History, MetricNames, Mode};

/// (loss, accuracy, val_loss, val_accuracy) for epochs 1..=6.
const RUN: [(f64, f64, f64, f64); 6] = [
    (0.70, 0.50, 0.68, 0.55),
    (0.55, 0.70, 0.60, 0.65),
    (0.40, 0.80, 0.45, 0.80),
    (0.30, 0.86, 0.50, 0.78),
    (0.22, 0.90, 0.47, 0.82),
    (0.15, 0.95, 0.55, 0.76),
];

fn run() -> History {
    let mut history = History::new();
    for (i, &(loss, acc, val_loss, val_acc)) in RUN.iter().enumerate() {
        history
            .push(
                EpochRecord::new(i + 1)
                    .with("loss", loss)
                    .with("accuracy", acc)
                    .with("val_loss", val_loss)
                    .with("val_accuracy", val_acc)
                    .with("lr", 1e-3)
                    .with("seconds", 12.5 + i as f64),
            )
            .expect("increasing epochs");
    }
    history
}

#[test]
fn records_and_series() {
    let h = run();
    assert_eq!(h.len(), 6);
    assert_eq!(h.last_epoch(), Some(6));
    assert_eq!(h.get("val_loss")[2], (3, 0.45));
    assert_eq!(h.values("accuracy"), RUN.map(|r| r.1).to_vec());
    assert_eq!(h.last_value("val_accuracy"), Some(0.76));
    assert_eq!(
        h.metric_names(),
        [
            "accuracy",
            "loss",
            "lr",
            "seconds",
            "val_accuracy",
            "val_loss"
        ]
    );
    assert_eq!(h.record(4).and_then(|r| r.get("loss")), Some(0.30));
    assert!(h.get("auc").is_empty());
}

#[test]
fn best_epoch_min_and_max() {
    let h = run();
    let best = h.best_epoch("val_loss", Mode::Min).expect("present");
    assert_eq!((best.epoch, best.value), (3, 0.45));
    let best = h.best_epoch("val_accuracy", Mode::Max).expect("present");
    assert_eq!((best.epoch, best.value), (5, 0.82));
    let best = h.best_epoch("loss", Mode::Max).expect("present");
    assert_eq!(best.epoch, 1);
}

#[test]
fn best_epoch_takes_the_first_tie_and_skips_nan() {
    let mut h = History::new();
    for (epoch, v) in [(1, f64::NAN), (2, 0.4), (3, 0.4), (4, 0.5)] {
        h.push(EpochRecord::new(epoch).with("val_loss", v))
            .expect("increasing");
    }
    let best = h.best_epoch("val_loss", Mode::Min).expect("present");
    assert_eq!((best.epoch, best.value), (2, 0.4));
}

#[test]
fn generalization_gap_by_hand() {
    let h = run();
    let gap = h
        .generalization_gap(3, &MetricNames::default())
        .expect("epoch 3");
    assert_relative_eq!(
        gap.loss_gap.expect("losses"),
        0.45 - 0.40,
        max_relative = 1e-12
    );
    assert_relative_eq!(gap.accuracy_gap.expect("accuracies"), 0.0, epsilon = 1e-12);
    let gap = h
        .generalization_gap(6, &MetricNames::default())
        .expect("epoch 6");
    assert_relative_eq!(gap.loss_gap.expect("losses"), 0.40, max_relative = 1e-12);
    assert_relative_eq!(
        gap.accuracy_gap.expect("accuracies"),
        0.19,
        max_relative = 1e-12
    );
    assert!(h.generalization_gap(9, &MetricNames::default()).is_err());
}

#[test]
fn fluctuation_by_hand() {
    let h = run();
    // val_loss over the last 4 epochs: 0.45, 0.50, 0.47, 0.55.
    let f = h.fluctuation("val_loss", 4).expect("enough epochs");
    assert_eq!((f.window, f.first_epoch, f.last_epoch), (4, 3, 6));
    assert_relative_eq!(f.mean, 0.4925, max_relative = 1e-12);
    // Deviations -0.0425, 0.0075, -0.0225, 0.0575: squares sum to 0.005675.
    assert_relative_eq!(f.std, (0.005675f64 / 4.0).sqrt(), max_relative = 1e-12);
    // Moves 0.05, 0.03, 0.08.
    assert_relative_eq!(f.mean_abs_change, 0.16 / 3.0, max_relative = 1e-12);
    assert_relative_eq!(f.max_abs_change, 0.08, max_relative = 1e-12);
    assert_relative_eq!(f.range, 0.10, max_relative = 1e-12);
    // val_accuracy over the last 4: 0.80, 0.78, 0.82, 0.76.
    let f = h.fluctuation("val_accuracy", 4).expect("enough epochs");
    assert_relative_eq!(f.mean, 0.79, max_relative = 1e-12);
    assert_relative_eq!(f.std, 0.0005f64.sqrt(), max_relative = 1e-12);
    assert_relative_eq!(f.mean_abs_change, 0.04, max_relative = 1e-12);
    assert_relative_eq!(f.max_abs_change, 0.06, max_relative = 1e-12);
    assert_relative_eq!(f.range, 0.06, max_relative = 1e-12);
}

#[test]
fn fluctuation_window_edges() {
    let h = run();
    let f = h.fluctuation("val_loss", 50).expect("uses what there is");
    assert_eq!((f.window, f.first_epoch), (6, 1));
    assert!(matches!(
        h.fluctuation("val_loss", 1),
        Err(Error::InvalidArgument { .. })
    ));
    let mut short = History::new();
    short
        .push(EpochRecord::new(1).with("val_loss", 0.5))
        .expect("first");
    let err = short.fluctuation("val_loss", 5).expect_err("one value");
    assert!(
        matches!(
            err,
            Error::MissingMetric {
                needed: 2,
                available: 1,
                ..
            }
        ),
        "{err}"
    );
    short
        .push(EpochRecord::new(2).with("val_loss", f64::NAN))
        .expect("second");
    assert!(short
        .fluctuation("val_loss", 5)
        .expect("two values")
        .std
        .is_nan());
}

#[test]
fn analysis_combines_the_parts() {
    let h = run();
    let a = h
        .analyze(&AnalysisConfig::default().with_window(4))
        .expect("complete history");
    assert_eq!((a.epochs, a.last_epoch, a.best.epoch), (6, 6, 3));
    assert_eq!(
        a.gap_at_best,
        h.generalization_gap(3, &MetricNames::default()).expect("3")
    );
    assert_eq!(
        a.gap_at_last,
        h.generalization_gap(6, &MetricNames::default()).expect("6")
    );
    assert_eq!(
        a.val_loss_fluctuation,
        Some(h.fluctuation("val_loss", 4).expect("4"))
    );
    assert_eq!(
        a.val_accuracy_fluctuation,
        Some(h.fluctuation("val_accuracy", 4).expect("4"))
    );
    let by_accuracy = h
        .analyze(&AnalysisConfig::monitoring("val_accuracy"))
        .expect("complete");
    assert_eq!(
        (by_accuracy.best.mode, by_accuracy.best.epoch),
        (Mode::Max, 5)
    );
    let err = h
        .analyze(&AnalysisConfig::monitoring("val_auc"))
        .expect_err("absent");
    assert!(
        err.to_string().contains("val_auc") && err.to_string().contains("val_loss"),
        "{err}"
    );
}

#[test]
fn mode_inference() {
    for name in [
        "accuracy",
        "val_accuracy",
        "val_acc",
        "auc",
        "val_ap",
        "f1",
        "val_recall",
    ] {
        assert_eq!(Mode::infer(name), Mode::Max, "{name}");
    }
    for name in ["loss", "val_loss", "eer", "ece", "brier", "lr"] {
        assert_eq!(Mode::infer(name), Mode::Min, "{name}");
    }
}

#[test]
fn push_rejects_out_of_order_epochs() {
    let mut h = run();
    let err = h.push(EpochRecord::new(6)).expect_err("repeat");
    assert!(
        matches!(err, Error::EpochOrder { last: 6, epoch: 6 }),
        "{err}"
    );
    h.truncate_after(4);
    assert_eq!(h.last_epoch(), Some(4));
    h.push(EpochRecord::new(5).with("loss", 0.2))
        .expect("resumed epoch");
}

#[test]
fn json_round_trip_and_layout() {
    let mut h = run();
    h.push(EpochRecord::new(7).with("loss", f64::NAN))
        .expect("diverged epoch");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.json");
    h.to_json_file(&path).expect("write");
    let back = History::from_json_file(&path).expect("read");
    assert_eq!(back.epochs[..6], h.epochs[..6]);
    assert!(
        back.last_value("loss").expect("epoch 7").is_nan(),
        "NaN written as null, read as NaN"
    );
    let text = std::fs::read_to_string(&path).expect("read text");
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(value["epochs"][2]["epoch"], 3);
    assert_eq!(value["epochs"][2]["metrics"]["val_loss"], 0.45);
    assert!(value["epochs"][6]["metrics"]["loss"].is_null());
    let parsed = History::from_json_str(r#"{"epochs":[{"epoch":1,"metrics":{"loss":0.5}}]}"#)
        .expect("minimal history");
    assert_eq!(parsed.get("loss"), vec![(1, 0.5)]);
    let err =
        History::from_json_str(r#"{"epochs":[{"epoch":2,"metrics":{}},{"epoch":1,"metrics":{}}]}"#)
            .expect_err("decreasing");
    assert!(matches!(err, Error::EpochOrder { .. }), "{err}");
}

#[test]
fn csv_round_trip_with_missing_and_non_finite_values() {
    let mut h = run();
    h.push(
        EpochRecord::new(7)
            .with("loss", f64::NAN)
            .with("val_loss", f64::INFINITY),
    )
    .expect("diverged epoch");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.csv");
    h.to_csv_file(&path).expect("write");
    let text = std::fs::read_to_string(&path).expect("read text");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,accuracy,loss,lr,seconds,val_accuracy,val_loss")
    );
    assert_eq!(lines.next(), Some("1,0.5,0.7,0.001,12.5,0.55,0.68"));
    assert_eq!(text.lines().last(), Some("7,,NaN,,,,inf"));
    let back = History::from_csv_file(&path).expect("read");
    assert_eq!(back.epochs[..6], h.epochs[..6]);
    let last = back.record(7).expect("epoch 7");
    assert_eq!(last.metrics.len(), 2, "empty cells are missing values");
    assert!(last.get("loss").expect("loss").is_nan());
    assert_eq!(last.get("val_loss"), Some(f64::INFINITY));
}

#[test]
fn csv_reads_keras_csv_logger_files() {
    let keras =
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,0.7,0.55,0.68\n1,0.7,0.55,0.65,nan\n";
    let h = History::read_csv(keras.as_bytes()).expect("keras file");
    assert_eq!(h.get("loss"), vec![(0, 0.7), (1, 0.55)]);
    assert!(h.last_value("val_loss").expect("nan").is_nan());
}

#[test]
fn csv_errors_name_the_problem() {
    let err = History::read_csv("loss,epoch\n0.5,1\n".as_bytes()).expect_err("header");
    assert!(
        err.to_string().contains("first column must be `epoch`"),
        "{err}"
    );
    let err = History::read_csv("epoch,loss\n1,abc\n".as_bytes()).expect_err("number");
    assert!(
        err.to_string().contains("`loss` = \"abc\" is not a number"),
        "{err}"
    );
    let err = History::read_csv("epoch,loss\n1,0.5,9\n".as_bytes()).expect_err("row length");
    assert!(matches!(err, Error::Csv { .. }), "{err}");
    let err = History::from_csv_file("/nonexistent/history.csv").expect_err("missing");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn from_keras_columns() {
    let columns: BTreeMap<String, Vec<f64>> = [
        ("loss".to_string(), vec![0.7, 0.5]),
        ("val_loss".to_string(), vec![f64::NAN, 0.6]),
    ]
    .into();
    let h = History::from_columns(&columns, 1, true).expect("equal columns");
    assert_eq!(h.get("val_loss"), vec![(2, 0.6)]);
    assert_eq!(h.get("loss"), vec![(1, 0.7), (2, 0.5)]);
    let uneven: BTreeMap<String, Vec<f64>> = [
        ("loss".to_string(), vec![0.7]),
        ("val_loss".to_string(), vec![0.1, 0.2]),
    ]
    .into();
    assert!(History::from_columns(&uneven, 1, false).is_err());
}
