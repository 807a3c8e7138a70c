//! Metrics of hard decisions at a threshold: confusion matrix, accuracy, precision, recall, F1.
//!
//! A sample is predicted fake when `score >= threshold`: the convention of scikit-learn's
//! `roc_curve` thresholds, so the confusion matrix at any threshold of a [`RocCurve`]
//! reproduces that ROC point. (Keras' `binary_accuracy` uses `score > threshold`; the two
//! differ only for scores exactly equal to the threshold.)
//!
//! [`RocCurve`]: crate::RocCurve

use serde::{Deserialize, Serialize};

use crate::input::{check_threshold, validate_nonempty, Label, Scores};
use crate::Result;

/// Counts of the four outcomes of binary decisions; "positive" is fake.
///
/// scikit-learn's `confusion_matrix(y, pred, labels=[0, 1])` is
/// `[[true_negatives, false_positives], [false_negatives, true_positives]]`
/// (see [`ConfusionMatrix::as_array`]).
///
/// The rates follow scikit-learn's `zero_division=0`: a ratio whose denominator is zero is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Real samples predicted real.
    pub true_negatives: u64,
    /// Real samples predicted fake.
    pub false_positives: u64,
    /// Fake samples predicted real.
    pub false_negatives: u64,
    /// Fake samples predicted fake.
    pub true_positives: u64,
}

impl ConfusionMatrix {
    /// The confusion matrix of the predictions `score >= threshold`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::NonFiniteScore`], [`Error::InvalidLabel`],
    /// [`Error::Empty`], [`Error::InvalidArgument`] for a NaN threshold. Scores need not be
    /// probabilities here (a logit threshold works too).
    ///
    /// [`Error::LengthMismatch`]: crate::Error::LengthMismatch
    /// [`Error::NonFiniteScore`]: crate::Error::NonFiniteScore
    /// [`Error::InvalidLabel`]: crate::Error::InvalidLabel
    /// [`Error::Empty`]: crate::Error::Empty
    /// [`Error::InvalidArgument`]: crate::Error::InvalidArgument
    pub fn from_scores<L: Label>(scores: &[f32], labels: &[L], threshold: f32) -> Result<Self> {
        check_threshold(threshold)?;
        let labels = validate_nonempty(scores, labels, Scores::Finite, "confusion matrix")?;
        let mut matrix = Self::default();
        matrix.add(scores, &labels, threshold);
        Ok(matrix)
    }

    /// Adds validated samples.
    pub(crate) fn add(&mut self, scores: &[f32], labels: &[bool], threshold: f32) {
        for (&score, &fake) in scores.iter().zip(labels) {
            match (fake, score >= threshold) {
                (false, false) => self.true_negatives += 1,
                (false, true) => self.false_positives += 1,
                (true, false) => self.false_negatives += 1,
                (true, true) => self.true_positives += 1,
            }
        }
    }

    /// scikit-learn's layout: `[[tn, fp], [fn, tp]]` (rows: true class real, fake;
    /// columns: predicted class real, fake).
    pub fn as_array(&self) -> [[u64; 2]; 2] {
        [
            [self.true_negatives, self.false_positives],
            [self.false_negatives, self.true_positives],
        ]
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.true_negatives + self.false_positives + self.false_negatives + self.true_positives
    }

    /// Number of fake samples (`fn + tp`).
    pub fn fakes(&self) -> u64 {
        self.false_negatives + self.true_positives
    }

    /// Number of real samples (`tn + fp`).
    pub fn reals(&self) -> u64 {
        self.true_negatives + self.false_positives
    }

    /// `(tp + tn) / total`.
    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positives + self.true_negatives, self.total())
    }

    /// `tp / (tp + fp)`: the share of predicted fakes that are fake.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `tp / (tp + fn)`: the share of fakes detected (true positive rate).
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.fakes())
    }

    /// `fp / (fp + tn)`: the share of real samples flagged as fake.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.false_positives, self.reals())
    }

    /// `2 tp / (2 tp + fp + fn)`: the harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Precision, recall and F1 of the fake class at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecallF1 {
    /// `tp / (tp + fp)`, 0 when nothing is predicted fake.
    pub precision: f64,
    /// `tp / (tp + fn)`, 0 when there is no fake sample.
    pub recall: f64,
    /// `2 tp / (2 tp + fp + fn)`, 0 when that is 0/0.
    pub f1: f64,
}

/// The confusion matrix of the predictions `score >= threshold`; see
/// [`ConfusionMatrix::from_scores`].
///
/// # Errors
/// As [`ConfusionMatrix::from_scores`].
pub fn confusion_matrix<L: Label>(
    scores: &[f32],
    labels: &[L],
    threshold: f32,
) -> Result<ConfusionMatrix> {
    ConfusionMatrix::from_scores(scores, labels, threshold)
}

/// The share of samples whose prediction `score >= threshold` matches the label
/// (scikit-learn's `accuracy_score`).
///
/// # Errors
/// As [`ConfusionMatrix::from_scores`].
pub fn accuracy<L: Label>(scores: &[f32], labels: &[L], threshold: f32) -> Result<f64> {
    Ok(ConfusionMatrix::from_scores(scores, labels, threshold)?.accuracy())
}

/// Precision, recall and F1 of the fake class for the predictions `score >= threshold`
/// (scikit-learn's `precision_score`, `recall_score`, `f1_score` with `zero_division=0`).
///
/// # Errors
/// As [`ConfusionMatrix::from_scores`].
pub fn precision_recall_f1<L: Label>(
    scores: &[f32],
    labels: &[L],
    threshold: f32,
) -> Result<PrecisionRecallF1> {
    let matrix = ConfusionMatrix::from_scores(scores, labels, threshold)?;
    Ok(PrecisionRecallF1 {
        precision: matrix.precision(),
        recall: matrix.recall(),
        f1: matrix.f1(),
    })
}
