//! Labels and the validation every metric applies to its inputs.

use crate::{Error, Result};

/// A ground-truth label: "fake" (the positive class, 1 / `true`) or "real" (0 / `false`).
///
/// Implemented for `bool` and for the numeric types labels usually come in (`u8`, `i32`,
/// `i64`, `u32`, `u64`, `f32`, `f64`), where only 0 and 1 are valid.
pub trait Label: Copy {
    /// `Some(true)` for fake, `Some(false)` for real, `None` if the value is not a label.
    fn is_fake(self) -> Option<bool>;

    /// The value, printed for error messages.
    fn describe(self) -> String;
}

impl Label for bool {
    fn is_fake(self) -> Option<bool> {
        Some(self)
    }
    fn describe(self) -> String {
        self.to_string()
    }
}

macro_rules! integer_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            fn is_fake(self) -> Option<bool> {
                match self {
                    0 => Some(false),
                    1 => Some(true),
                    _ => None,
                }
            }
            fn describe(self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_label!(u8, i32, i64, u32, u64);

macro_rules! float_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            fn is_fake(self) -> Option<bool> {
                if self == 0.0 {
                    Some(false)
                } else if self == 1.0 {
                    Some(true)
                } else {
                    None
                }
            }
            fn describe(self) -> String {
                self.to_string()
            }
        }
    )*};
}
float_label!(f32, f64);

/// What a metric requires of its scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scores {
    /// Any finite value (ranking metrics: ROC, PR, AUC, AP, EER).
    Finite,
    /// A probability in `[0, 1]` (threshold, log loss, Brier, calibration); the metric is
    /// named in the error.
    Probability(&'static str),
}

/// Checks a batch (equal lengths, finite scores, valid labels, and `[0, 1]` scores where
/// asked) and converts its labels to `bool` (true = fake). An empty batch is valid.
pub(crate) fn validate<L: Label>(
    scores: &[f32],
    labels: &[L],
    requirement: Scores,
) -> Result<Vec<bool>> {
    if scores.len() != labels.len() {
        return Err(Error::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    for (index, &value) in scores.iter().enumerate() {
        if !value.is_finite() {
            return Err(Error::NonFiniteScore { index, value });
        }
        if let Scores::Probability(metric) = requirement {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::ScoreOutOfRange {
                    metric,
                    index,
                    value,
                });
            }
        }
    }
    labels
        .iter()
        .enumerate()
        .map(|(index, &label)| {
            label.is_fake().ok_or_else(|| Error::InvalidLabel {
                index,
                value: label.describe(),
            })
        })
        .collect()
}

/// [`validate`], then rejects an empty batch for `metric`.
pub(crate) fn validate_nonempty<L: Label>(
    scores: &[f32],
    labels: &[L],
    requirement: Scores,
    metric: &'static str,
) -> Result<Vec<bool>> {
    let labels = validate(scores, labels, requirement)?;
    if labels.is_empty() {
        return Err(Error::Empty { metric });
    }
    Ok(labels)
}

pub(crate) fn check_threshold(threshold: f32) -> Result<()> {
    if threshold.is_nan() {
        return Err(crate::error::invalid_argument(
            "threshold",
            threshold,
            "a number (scores >= threshold are predicted fake)",
        ));
    }
    Ok(())
}
