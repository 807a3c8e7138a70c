//! Invalid inputs are errors that say what is wrong, never panics.

use df_metrics::{
    average_precision, calibration, confusion_matrix, equal_error_rate, log_loss, plot_roc,
    roc_auc, roc_curve, tpr_at_fpr, BinaryEvaluator, Error, EvaluatorConfig, Metric, Ranking,
};

#[test]
fn empty_input() {
    let none: [f32; 0] = [];
    let no_labels: [u8; 0] = [];
    assert!(matches!(
        log_loss(&none, &no_labels),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        roc_auc(&none, &no_labels),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        confusion_matrix(&none, &no_labels, 0.5),
        Err(Error::Empty { .. })
    ));
    let evaluator = BinaryEvaluator::new(EvaluatorConfig::default()).expect("valid config");
    assert!(matches!(evaluator.compute(), Err(Error::Empty { .. })));
}

#[test]
fn length_mismatch() {
    let err = roc_auc(&[0.1f32, 0.2, 0.3], &[0u8, 1]).expect_err("mismatch");
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                scores: 3,
                labels: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("3 scores but 2 labels"), "{err}");
}

#[test]
fn non_finite_scores() {
    let err = roc_auc(&[0.1f32, f32::NAN], &[0u8, 1]).expect_err("NaN");
    assert!(
        matches!(err, Error::NonFiniteScore { index: 1, .. }),
        "{err}"
    );
    let err = log_loss(&[f32::INFINITY], &[1u8]).expect_err("inf");
    assert!(
        matches!(err, Error::NonFiniteScore { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn probabilities_required_where_needed() {
    let err = log_loss(&[0.5f32, 1.5], &[0u8, 1]).expect_err("out of range");
    assert!(
        matches!(err, Error::ScoreOutOfRange { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("logit"), "{err}");
    // Ranking metrics only need an order: logits are fine.
    assert_eq!(roc_auc(&[-3.0f32, 2.5], &[0u8, 1]).expect("logits"), 1.0);
}

#[test]
fn invalid_labels() {
    let err = roc_auc(&[0.1f32, 0.2], &[0u8, 2]).expect_err("label 2");
    assert!(
        matches!(&err, Error::InvalidLabel { index: 1, value } if value == "2"),
        "{err}"
    );
    let err = log_loss(&[0.1f32], &[0.5f32]).expect_err("label 0.5");
    assert!(matches!(err, Error::InvalidLabel { index: 0, .. }), "{err}");
    assert_eq!(
        log_loss(&[0.5f32], &[1.0f64]).expect("1.0 is fake"),
        std::f64::consts::LN_2
    );
}

#[test]
fn single_class_labels() {
    let scores = [0.2f32, 0.6, 0.9];
    let fakes = [1u8, 1, 1];
    let reals = [false, false, false];
    let err = roc_auc(&scores, &fakes).expect_err("no real");
    assert!(
        matches!(
            err,
            Error::SingleClass {
                missing: "real",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("both real (0) and fake (1)"),
        "{err}"
    );
    assert!(matches!(
        roc_auc(&scores, &reals),
        Err(Error::SingleClass {
            missing: "fake",
            ..
        })
    ));
    assert!(matches!(
        roc_curve(&scores, &reals, true),
        Err(Error::SingleClass { .. })
    ));
    assert!(matches!(
        equal_error_rate(&scores, &fakes),
        Err(Error::SingleClass { .. })
    ));
    assert!(matches!(
        tpr_at_fpr(&scores, &fakes, 0.1),
        Err(Error::SingleClass { .. })
    ));
    assert!(matches!(
        average_precision(&scores, &reals),
        Err(Error::SingleClass {
            missing: "fake",
            ..
        })
    ));
    assert_eq!(average_precision(&scores, &fakes).expect("fakes only"), 1.0);
}

#[test]
fn invalid_arguments() {
    let (scores, labels) = ([0.2f32, 0.8], [0u8, 1]);
    assert!(matches!(
        calibration(&scores, &labels, 0),
        Err(Error::InvalidArgument { name: "bins", .. })
    ));
    assert!(matches!(
        tpr_at_fpr(&scores, &labels, 1.5),
        Err(Error::InvalidArgument {
            name: "max_fpr",
            ..
        })
    ));
    assert!(matches!(
        tpr_at_fpr(&scores, &labels, f64::NAN),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        confusion_matrix(&scores, &labels, f32::NAN),
        Err(Error::InvalidArgument {
            name: "threshold",
            ..
        })
    ));
    assert!(BinaryEvaluator::new(EvaluatorConfig::default().with_ece_bins(0)).is_err());
    let ranking = Ranking::new(&scores, &labels).expect("valid");
    assert!(ranking.tpr_at_fpr(-0.1).is_err());
}

#[test]
fn a_rejected_batch_changes_nothing() {
    let mut evaluator = BinaryEvaluator::new(EvaluatorConfig::default()).expect("valid config");
    evaluator.update(&[0.2f32, 0.8], &[0u8, 1]).expect("valid");
    let before = evaluator.compute().expect("non-empty");
    // The bad score is last: a half-applied batch would have counted the first two.
    assert!(evaluator
        .update(&[0.3f32, 0.9, f32::NAN], &[0u8, 1, 1])
        .is_err());
    assert!(evaluator.update(&[0.3f32, 0.9], &[0u8, 7]).is_err());
    assert_eq!(evaluator.count(), 2);
    assert_eq!(evaluator.compute().expect("non-empty"), before);
}

#[test]
fn unsupported_plot_format() {
    let roc = roc_curve(&[0.2f32, 0.8], &[0u8, 1], true).expect("valid");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = plot_roc(&[("m", &roc)], dir.path().join("roc.jpg")).expect_err("jpg");
    assert!(matches!(err, Error::UnsupportedPlotFormat { .. }), "{err}");
    let err = plot_roc(&[("m", &roc)], dir.path().join("missing/roc.png")).expect_err("no dir");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(plot_roc(&[], dir.path().join("roc.png")).is_err());
}
