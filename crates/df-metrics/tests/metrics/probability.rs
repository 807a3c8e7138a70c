//! Log loss, Brier score and calibration against scikit-learn (and numpy for the ECE).

use approx::assert_relative_eq;
use df_metrics::{brier_score, calibration, expected_calibration_error, log_loss, LOG_LOSS_EPS};

use crate::fixtures::cases;

#[test]
fn log_loss_matches_sklearn() {
    for case in cases() {
        let got = log_loss(&case.scores, &case.labels).expect("valid case");
        // Reference: sklearn in float64 on the scores clipped to [eps32, 1 - eps32].
        assert_relative_eq!(got, case.log_loss, max_relative = 1e-12);
        // sklearn on the float32 array itself computes in float32.
        assert_relative_eq!(got, case.log_loss_sklearn_f32, max_relative = 2e-6);
    }
}

#[test]
fn log_loss_clips_certain_mistakes() {
    // p = 0 for a fake is clipped to eps: -ln(eps) = 23 ln 2, not infinity.
    let got = log_loss(&[0.0f32], &[1u8]).expect("valid");
    assert_relative_eq!(got, -LOG_LOSS_EPS.ln(), max_relative = 1e-15);
    assert_relative_eq!(got, 23.0 * std::f64::consts::LN_2, max_relative = 1e-15);
    let separated = cases()
        .into_iter()
        .find(|c| c.name == "separated")
        .expect("case separated");
    assert!(separated.scores.contains(&0.0) && separated.scores.contains(&1.0));
}

#[test]
fn brier_score_matches_sklearn() {
    for case in cases() {
        let got = brier_score(&case.scores, &case.labels).expect("valid case");
        assert_relative_eq!(got, case.brier, max_relative = 1e-12);
    }
}

#[test]
fn expected_calibration_error_matches_numpy_and_sklearn_bins() {
    for case in cases() {
        for reference in &case.ece {
            let name = format!("case {} with {} bins", case.name, reference.n_bins);
            let got =
                calibration(&case.scores, &case.labels, reference.n_bins).expect("valid case");
            assert_relative_eq!(
                got.ece,
                reference.value,
                max_relative = 1e-12,
                epsilon = 1e-15
            );
            assert_eq!(got.bins.len(), reference.bins.len(), "{name}");
            for (bin, want) in got.bins.iter().zip(&reference.bins) {
                assert_eq!(
                    bin.count, want.count,
                    "{name}: bin ({}, {}]",
                    want.lower, want.upper
                );
                assert_eq!((bin.lower, bin.upper), (want.lower, want.upper), "{name}");
                match (bin.mean_score, want.mean_score) {
                    (Some(a), Some(b)) => assert_relative_eq!(a, b, max_relative = 1e-12),
                    (a, b) => assert_eq!(a, b, "{name}"),
                }
                match (bin.fraction_fake, want.fraction_positive) {
                    (Some(a), Some(b)) => assert_relative_eq!(a, b, max_relative = 1e-12),
                    (a, b) => assert_eq!(a, b, "{name}"),
                }
            }
            let ece = expected_calibration_error(&case.scores, &case.labels, reference.n_bins)
                .expect("valid case");
            assert_eq!(ece, got.ece);
        }
    }
}

#[test]
fn calibration_by_hand() {
    // Two bins: [0, 0.5] holds 0.1 (real), 0.5 (fake) -> conf 0.3, acc 0.5, gap 0.2;
    // (0.5, 1] holds 0.9 (fake), 0.7 (fake) -> conf 0.8, acc 1.0, gap 0.2.
    let c = calibration(&[0.1f32, 0.5, 0.9, 0.7], &[0u8, 1, 1, 1], 2).expect("valid");
    assert_eq!(
        c.bins[0].count, 2,
        "a score on an edge goes to the lower bin"
    );
    assert_relative_eq!(c.ece, 0.5 * 0.2 + 0.5 * 0.2, max_relative = 1e-6);
    assert_relative_eq!(c.mce, 0.2, max_relative = 1e-6);
}
