//! Confusion matrix, accuracy, precision, recall and F1 against scikit-learn.

use approx::assert_relative_eq;
use df_metrics::{accuracy, confusion_matrix, precision_recall_f1, ConfusionMatrix};

use crate::fixtures::cases;

#[test]
fn confusion_matrix_matches_sklearn() {
    for case in cases() {
        let m = confusion_matrix(&case.scores, &case.labels, case.threshold).expect("valid case");
        assert_eq!(m.as_array(), case.confusion_matrix, "case {}", case.name);
        assert_eq!(m.total() as usize, case.labels.len());
    }
}

#[test]
fn accuracy_precision_recall_f1_match_sklearn() {
    for case in cases() {
        let name = &case.name;
        let acc = accuracy(&case.scores, &case.labels, case.threshold).expect("valid case");
        assert_relative_eq!(acc, case.accuracy, max_relative = 1e-15);
        let prf =
            precision_recall_f1(&case.scores, &case.labels, case.threshold).expect("valid case");
        assert!(
            (prf.precision - case.precision).abs() <= 1e-15
                && (prf.recall - case.recall).abs() <= 1e-15
                && (prf.f1 - case.f1).abs() <= 1e-15,
            "case {name}: got {prf:?}, sklearn precision {} recall {} f1 {}",
            case.precision,
            case.recall,
            case.f1
        );
    }
}

#[test]
fn all_tied_case_covers_zero_division_and_ties_at_threshold() {
    // The fixtures must exercise these edges, or the tests above would not check them.
    let cases = cases();
    let tied = cases
        .iter()
        .find(|c| c.name == "all_tied")
        .expect("case all_tied");
    assert_eq!(
        tied.precision, 0.0,
        "nothing predicted fake: 0/0 precision is 0"
    );
    let ties = cases
        .iter()
        .find(|c| c.name == "heavy_ties")
        .expect("case heavy_ties");
    assert!(
        ties.scores.contains(&ties.threshold),
        "some scores sit exactly on the threshold (score >= threshold is fake)"
    );
}

#[test]
fn rates_follow_their_definitions() {
    let m = ConfusionMatrix {
        true_negatives: 50,
        false_positives: 10,
        false_negatives: 5,
        true_positives: 35,
    };
    assert_eq!(m.total(), 100);
    assert_eq!((m.fakes(), m.reals()), (40, 60));
    assert_eq!(m.accuracy(), 0.85);
    assert_eq!(m.precision(), 35.0 / 45.0);
    assert_eq!(m.recall(), 35.0 / 40.0);
    assert_eq!(m.false_positive_rate(), 10.0 / 60.0);
    assert_eq!(m.f1(), 70.0 / 85.0);
    assert_eq!(ConfusionMatrix::default().f1(), 0.0);
}

#[test]
fn threshold_metrics_take_logits_too() {
    // Only the order relative to the threshold matters at a threshold.
    let m = confusion_matrix(&[-2.0, 0.0, 3.5], &[false, true, true], 0.0).expect("valid");
    assert_eq!(m.as_array(), [[1, 0], [0, 2]]);
}
