//! ROC, AUC, precision-recall, average precision, EER and TPR at FPR against scikit-learn.

use approx::assert_relative_eq;
use df_metrics::{
    average_precision, equal_error_rate, precision_recall_curve, roc_auc, roc_curve, tpr_at_fpr,
    PrCurve, Ranking, RocCurve,
};

use crate::fixtures::{cases, threshold, Case, PrRef, RocRef};

fn both_class_cases() -> Vec<Case> {
    let cases: Vec<Case> = cases().into_iter().filter(Case::has_both_classes).collect();
    assert_eq!(cases.len(), crate::fixtures::CASE_NAMES.len());
    cases
}

fn assert_roc_eq(got: &RocCurve, want: &RocRef, what: &str) {
    assert_eq!(got.len(), want.fpr.len(), "{what}: number of points");
    for i in 0..got.len() {
        assert_relative_eq!(got.fpr[i], want.fpr[i], max_relative = 1e-15);
        assert_relative_eq!(got.tpr[i], want.tpr[i], max_relative = 1e-15);
        assert_eq!(
            got.thresholds[i],
            threshold(want.thresholds[i]),
            "{what}: threshold {i}"
        );
    }
}

#[test]
fn roc_curve_matches_sklearn_with_and_without_dropping() {
    for case in both_class_cases() {
        let dropped = roc_curve(&case.scores, &case.labels, true).expect("valid case");
        assert_roc_eq(
            &dropped,
            case.roc.as_ref().expect("roc"),
            &format!("{} dropped", case.name),
        );
        let full = roc_curve(&case.scores, &case.labels, false).expect("valid case");
        assert_roc_eq(
            &full,
            case.roc_full.as_ref().expect("roc_full"),
            &format!("{} full", case.name),
        );
    }
}

#[test]
fn dropping_intermediate_points_removes_points_and_keeps_the_area() {
    let case = both_class_cases()
        .into_iter()
        .find(|c| c.name == "random")
        .expect("random");
    let dropped = roc_curve(&case.scores, &case.labels, true).expect("valid");
    let full = roc_curve(&case.scores, &case.labels, false).expect("valid");
    assert!(
        dropped.len() < full.len() / 2,
        "{} vs {}",
        dropped.len(),
        full.len()
    );
    assert_relative_eq!(dropped.auc(), full.auc(), max_relative = 1e-12);
}

#[test]
fn roc_auc_matches_sklearn() {
    for case in both_class_cases() {
        let want = case.auc.expect("auc");
        let got = roc_auc(&case.scores, &case.labels).expect("valid case");
        assert_relative_eq!(got, want, max_relative = 1e-12);
        let curve = roc_curve(&case.scores, &case.labels, true).expect("valid case");
        assert_relative_eq!(curve.auc(), want, max_relative = 1e-12);
    }
}

#[test]
fn roc_auc_of_ties_is_half_credit() {
    // Mann-Whitney by hand: pairs (fake, real) = (0.5, 0.5) tie -> 1/2, (0.5, 0.2) -> 1,
    // (0.9, 0.5) -> 1, (0.9, 0.2) -> 1: (0.5 + 3) / 4.
    let got = roc_auc(&[0.5f32, 0.9, 0.5, 0.2], &[1u8, 1, 0, 0]).expect("valid");
    assert_eq!(got, 3.5 / 4.0);
    // -0.0 and 0.0 are the same score.
    let got = roc_auc(&[0.0f32, -0.0], &[true, false]).expect("valid");
    assert_eq!(got, 0.5);
}

fn assert_pr_eq(got: &PrCurve, want: &PrRef, what: &str) {
    assert_eq!(got.len(), want.precision.len(), "{what}: number of points");
    assert_eq!(
        got.thresholds.len(),
        want.thresholds.len(),
        "{what}: thresholds"
    );
    for i in 0..got.len() {
        assert_relative_eq!(got.precision[i], want.precision[i], max_relative = 1e-15);
        assert_relative_eq!(got.recall[i], want.recall[i], max_relative = 1e-15);
    }
    for (a, &b) in got.thresholds.iter().zip(&want.thresholds) {
        assert_eq!(*a, b as f32, "{what}");
    }
}

#[test]
fn precision_recall_curve_matches_sklearn_with_and_without_dropping() {
    for case in both_class_cases() {
        let full = precision_recall_curve(&case.scores, &case.labels, false).expect("valid case");
        assert_pr_eq(
            &full,
            case.pr.as_ref().expect("pr"),
            &format!("{} full", case.name),
        );
        let dropped = precision_recall_curve(&case.scores, &case.labels, true).expect("valid case");
        let want = case.pr_dropped.as_ref().expect("pr_dropped");
        assert_pr_eq(&dropped, want, &format!("{} dropped", case.name));
    }
}

#[test]
fn average_precision_matches_sklearn() {
    for case in both_class_cases() {
        let want = case.average_precision.expect("ap");
        let got = average_precision(&case.scores, &case.labels).expect("valid case");
        assert_relative_eq!(got, want, max_relative = 1e-12);
        for drop_intermediate in [false, true] {
            let curve = precision_recall_curve(&case.scores, &case.labels, drop_intermediate)
                .expect("valid case");
            assert_relative_eq!(curve.average_precision(), want, max_relative = 1e-12);
        }
    }
}

#[test]
fn equal_error_rate_matches_the_reference_definition() {
    for case in both_class_cases() {
        let got = equal_error_rate(&case.scores, &case.labels).expect("valid case");
        assert_relative_eq!(
            got.rate,
            case.eer.expect("eer"),
            max_relative = 1e-12,
            epsilon = 1e-15
        );
        assert_eq!(
            got.threshold,
            threshold(case.eer_threshold),
            "case {}",
            case.name
        );
    }
}

#[test]
fn equal_error_rate_by_hand() {
    // Perfect separation: the ROC goes through (0, 1), EER 0.
    let eer = equal_error_rate(&[0.1f32, 0.2, 0.8, 0.9], &[0u8, 0, 1, 1]).expect("valid");
    assert_eq!(eer.rate, 0.0);
    assert_eq!(eer.threshold, 0.8);
    // Reversed scores: every fake below every real, EER 1.
    let eer = equal_error_rate(&[0.9f32, 0.8, 0.2, 0.1], &[0u8, 0, 1, 1]).expect("valid");
    assert_eq!(eer.rate, 1.0);
}

#[test]
fn tpr_at_fpr_matches_the_reference_definition() {
    for case in both_class_cases() {
        for want in case.tpr_at_fpr.as_ref().expect("tpr_at_fpr") {
            let got = tpr_at_fpr(&case.scores, &case.labels, want.target).expect("valid case");
            assert_eq!(
                (got.tpr, got.fpr, got.threshold),
                (want.tpr, want.fpr, threshold(want.threshold)),
                "case {} at FPR {}",
                case.name,
                want.target
            );
        }
    }
}

#[test]
fn one_ranking_serves_every_metric() {
    let case = both_class_cases()
        .into_iter()
        .find(|c| c.name == "heavy_ties")
        .expect("heavy_ties");
    let ranking = Ranking::new(&case.scores, &case.labels).expect("valid");
    let fakes = case.labels.iter().filter(|&&l| l == 1).count() as u64;
    assert_eq!(
        (ranking.fakes(), ranking.len()),
        (fakes, case.labels.len() as u64)
    );
    assert_eq!(
        ranking.distinct_scores(),
        11,
        "scores rounded to one decimal in [0, 1]"
    );
    assert_eq!(
        ranking.roc_auc().expect("auc"),
        roc_auc(&case.scores, &case.labels).expect("auc")
    );
}
