//! Streaming accumulation: batches give the batch result bit for bit, reset forgets, and
//! the evaluator's report carries the scikit-learn values.

use approx::assert_relative_eq;
use df_metrics::{
    evaluate, BinaryEvaluator, BrierScore, CalibrationError, EvaluatorConfig, LogLoss, Metric,
    RankingCollector, Report,
};

use crate::fixtures::{cases, threshold, Case};

/// Feeds `case` to `metric` in chunks of the given sizes (cycled).
fn feed<M: Metric>(metric: &mut M, case: &Case, chunks: &[usize]) {
    let mut start = 0;
    for &size in chunks.iter().cycle() {
        if start >= case.scores.len() {
            break;
        }
        let end = (start + size).min(case.scores.len());
        metric
            .update(&case.scores[start..end], &case.labels[start..end])
            .expect("valid batch");
        start = end;
    }
    assert_eq!(metric.count(), case.scores.len() as u64);
}

const CHUNKINGS: [&[usize]; 4] = [&[1], &[7], &[100, 0, 3], &[1000]];

fn config(case: &Case) -> EvaluatorConfig {
    EvaluatorConfig::default().with_threshold(case.threshold)
}

#[test]
fn evaluator_in_batches_equals_one_batch() {
    for case in cases() {
        let whole = evaluate(&case.scores, &case.labels, config(&case)).expect("valid case");
        for chunks in CHUNKINGS {
            let mut evaluator = BinaryEvaluator::new(config(&case)).expect("valid config");
            feed(&mut evaluator, &case, chunks);
            let streamed = evaluator.evaluate().expect("non-empty");
            assert_eq!(streamed, whole, "case {} in chunks {chunks:?}", case.name);
            assert_eq!(evaluator.compute().expect("non-empty"), whole.report);
        }
    }
}

#[test]
fn single_metrics_in_batches_equal_one_batch() {
    for case in cases() {
        for chunks in CHUNKINGS {
            let mut loss = LogLoss::new();
            feed(&mut loss, &case, chunks);
            assert_eq!(
                loss.compute().expect("non-empty"),
                df_metrics::log_loss(&case.scores, &case.labels).expect("valid")
            );
            let mut brier = BrierScore::new();
            feed(&mut brier, &case, chunks);
            assert_eq!(
                brier.compute().expect("non-empty"),
                df_metrics::brier_score(&case.scores, &case.labels).expect("valid")
            );
            let mut ece = CalibrationError::new(15).expect("bins");
            feed(&mut ece, &case, chunks);
            assert_eq!(
                ece.compute().expect("non-empty"),
                df_metrics::calibration(&case.scores, &case.labels, 15).expect("valid")
            );
            let mut ranking = RankingCollector::new();
            feed(&mut ranking, &case, chunks);
            assert_eq!(
                ranking.compute().expect("non-empty"),
                df_metrics::Ranking::new(&case.scores, &case.labels).expect("valid")
            );
        }
    }
}

#[test]
fn reset_forgets_everything() {
    let cases = cases();
    let (first, second) = (&cases[0], &cases[1]);
    let mut evaluator = BinaryEvaluator::new(config(second)).expect("valid config");
    feed(&mut evaluator, first, &[64]);
    evaluator.reset();
    assert_eq!(evaluator.count(), 0);
    assert!(matches!(
        evaluator.compute(),
        Err(df_metrics::Error::Empty { .. })
    ));
    feed(&mut evaluator, second, &[64]);
    let fresh = evaluate(&second.scores, &second.labels, config(second)).expect("valid");
    assert_eq!(evaluator.evaluate().expect("non-empty"), fresh);
}

fn assert_report_matches_sklearn(report: &Report, case: &Case) {
    let name = &case.name;
    assert_eq!(report.n, case.labels.len() as u64);
    assert_eq!(
        report.confusion_matrix.as_array(),
        case.confusion_matrix,
        "case {name}"
    );
    assert_relative_eq!(report.accuracy, case.accuracy, max_relative = 1e-15);
    assert!(
        (report.precision - case.precision).abs() <= 1e-15,
        "case {name}"
    );
    assert!((report.recall - case.recall).abs() <= 1e-15, "case {name}");
    assert!((report.f1 - case.f1).abs() <= 1e-15, "case {name}");
    assert_relative_eq!(report.log_loss, case.log_loss, max_relative = 1e-12);
    assert_relative_eq!(report.brier, case.brier, max_relative = 1e-12);
    let ece15 = case
        .ece
        .iter()
        .find(|e| e.n_bins == 15)
        .expect("15-bin ECE");
    assert_eq!(report.ece_bins, 15);
    assert_relative_eq!(
        report.ece,
        ece15.value,
        max_relative = 1e-12,
        epsilon = 1e-15
    );
    assert_relative_eq!(
        report.auc.expect("auc"),
        case.auc.expect("auc"),
        max_relative = 1e-12
    );
    assert_relative_eq!(
        report.ap.expect("ap"),
        case.average_precision.expect("ap"),
        max_relative = 1e-12
    );
    assert_relative_eq!(
        report.eer.expect("eer"),
        case.eer.expect("eer"),
        max_relative = 1e-12,
        epsilon = 1e-15
    );
    let want_threshold = threshold(case.eer_threshold);
    assert_eq!(
        report.eer_threshold,
        want_threshold.is_finite().then_some(want_threshold)
    );
    let tpr = case.tpr_at_fpr.as_ref().expect("tpr_at_fpr");
    let got = [
        report.tpr_at_fpr_1pct,
        report.tpr_at_fpr_5pct,
        report.tpr_at_fpr_10pct,
    ];
    for (got, want) in got.iter().zip(tpr) {
        assert_eq!(*got, Some(want.tpr), "case {name} at FPR {}", want.target);
    }
}

#[test]
fn evaluator_report_matches_sklearn() {
    for case in cases() {
        let mut evaluator = BinaryEvaluator::new(config(&case)).expect("valid config");
        feed(&mut evaluator, &case, &[33]);
        let evaluation = evaluator.evaluate().expect("non-empty");
        assert_report_matches_sklearn(&evaluation.report, &case);
        let roc = evaluation.roc.expect("both classes");
        assert_eq!(
            roc.len(),
            case.roc.as_ref().expect("roc").fpr.len(),
            "dropped ROC for plots"
        );
        let pr = evaluation.pr.expect("fakes present");
        assert_eq!(
            pr.len(),
            case.pr_dropped.as_ref().expect("pr").precision.len()
        );
    }
}

#[test]
fn report_round_trips_through_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    for case in cases() {
        let report = evaluate(&case.scores, &case.labels, config(&case))
            .expect("valid")
            .report;
        let path = dir.path().join(format!("{}.json", case.name));
        report.to_json_file(&path).expect("write");
        assert_eq!(
            Report::from_json_file(&path).expect("read"),
            report,
            "case {}",
            case.name
        );
    }
    let text = evaluate(&[0.2f32, 0.7], &[0u8, 1], EvaluatorConfig::default())
        .expect("valid")
        .report
        .to_json_string()
        .expect("json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    for key in [
        "n",
        "accuracy",
        "auc",
        "ap",
        "eer",
        "eer_threshold",
        "log_loss",
        "ece",
        "brier",
        "precision",
        "recall",
        "f1",
        "confusion_matrix",
        "tpr_at_fpr_1pct",
        "tpr_at_fpr_5pct",
        "tpr_at_fpr_10pct",
    ] {
        assert!(
            value.get(key).is_some(),
            "metrics.json lacks `{key}`: {text}"
        );
    }
}

#[test]
fn single_class_report_leaves_ranking_metrics_empty() {
    let report = evaluate(
        &[0.9f32, 0.4, 0.7],
        &[1u8, 1, 1],
        EvaluatorConfig::default(),
    )
    .expect("valid")
    .report;
    assert_eq!(report.accuracy, 2.0 / 3.0);
    assert_eq!(
        (report.auc, report.eer, report.tpr_at_fpr_1pct),
        (None, None, None)
    );
    assert_eq!(
        report.ap,
        Some(1.0),
        "all fake: every threshold has precision 1"
    );
    let report = evaluate(&[0.9f32, 0.4], &[0u8, 0], EvaluatorConfig::default())
        .expect("valid")
        .report;
    assert_eq!((report.auc, report.ap), (None, None));
    assert_eq!(report.accuracy, 0.5);
}
