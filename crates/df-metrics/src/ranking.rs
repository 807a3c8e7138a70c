//! Threshold-free metrics of how well the scores rank fakes above real samples: ROC curve
//! and AUC, precision-recall curve and average precision, equal error rate, TPR at a fixed
//! FPR.
//!
//! They all derive from one pass over the scores sorted once ([`Ranking`]); ties are
//! handled as scikit-learn handles them: tied scores form one threshold, so a curve moves
//! diagonally across a group of tied fakes and real samples.

use serde::{Deserialize, Serialize};

use crate::input::{validate, validate_nonempty, Label, Scores};
use crate::{Error, Metric, Result};

/// A receiver operating characteristic curve, in scikit-learn's `roc_curve` layout.
///
/// Point `i` is the operating point of the predictions `score >= thresholds[i]`;
/// `thresholds` decrease, the first is `+inf` (the point `(0, 0)`: nothing predicted fake).
/// In JSON that first threshold is written as `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False positive rates, nondecreasing from 0 to 1.
    pub fpr: Vec<f64>,
    /// True positive rates, nondecreasing from 0 to 1.
    pub tpr: Vec<f64>,
    /// The decreasing thresholds; the first is `+inf`.
    #[serde(with = "crate::serde_util::inf_as_null")]
    pub thresholds: Vec<f32>,
}

impl RocCurve {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.fpr.len()
    }

    /// Whether the curve has no point (never the case for a curve from this crate).
    pub fn is_empty(&self) -> bool {
        self.fpr.is_empty()
    }

    /// Area under the curve by the trapezoidal rule (scikit-learn's `auc(fpr, tpr)`);
    /// dropping collinear points does not change it.
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
            .sum()
    }
}

/// A precision-recall curve, in scikit-learn's `precision_recall_curve` layout.
///
/// `precision[i]` and `recall[i]` belong to the predictions `score >= thresholds[i]` for
/// `i < thresholds.len()`; thresholds increase (recall decreases), and a last point
/// `(precision 1, recall 0)` without a threshold ends the curve, so `precision` and
/// `recall` have one element more than `thresholds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    /// Precision at each point.
    pub precision: Vec<f64>,
    /// Recall at each point, nonincreasing to 0.
    pub recall: Vec<f64>,
    /// The increasing thresholds (one fewer than points).
    pub thresholds: Vec<f32>,
}

impl PrCurve {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.precision.len()
    }

    /// Whether the curve has no point (never the case for a curve from this crate).
    pub fn is_empty(&self) -> bool {
        self.precision.is_empty()
    }

    /// Average precision: the step integral `sum_i (recall[i] - recall[i+1]) * precision[i]`
    /// (scikit-learn's `average_precision_score`; no interpolation).
    pub fn average_precision(&self) -> f64 {
        let sum: f64 = self
            .recall
            .windows(2)
            .zip(&self.precision)
            .map(|(r, p)| (r[0] - r[1]) * p)
            .sum();
        sum.max(0.0)
    }
}

/// The equal error rate and the threshold that comes closest to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EqualErrorRate {
    /// The rate at which the false positive rate equals the false negative rate.
    pub rate: f64,
    /// The threshold of the ROC point nearest to that crossing (`score >= threshold` is
    /// fake); `+inf` (JSON `null`) when the nearest point is "nothing is fake".
    #[serde(with = "crate::serde_util::inf_as_null_f32")]
    pub threshold: f32,
}

/// A point of the ROC curve chosen by a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Its false positive rate.
    pub fpr: f64,
    /// Its true positive rate.
    pub tpr: f64,
    /// Its threshold (`score >= threshold` is fake); `+inf` (JSON `null`) for the point
    /// `(0, 0)`.
    #[serde(with = "crate::serde_util::inf_as_null_f32")]
    pub threshold: f32,
}

/// Scores sorted once, reduced to the cumulative counts of fakes and real samples at each
/// distinct score (scikit-learn's `_binary_clf_curve`), from which every ranking metric
/// is computed in linear time in the number of distinct scores.
///
/// Building it sorts the scores, `O(n log n)`; it then holds 20 bytes per distinct score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Distinct scores, decreasing.
    thresholds: Vec<f32>,
    /// Fakes with `score >= thresholds[k]`.
    tps: Vec<u64>,
    /// Real samples with `score >= thresholds[k]`.
    fps: Vec<u64>,
}

impl Ranking {
    /// Sorts the scores and counts.
    ///
    /// Scores may be any finite values (probabilities, logits), only their order matters.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`],
    /// [`Error::InvalidLabel`].
    pub fn new<L: Label>(scores: &[f32], labels: &[L]) -> Result<Self> {
        let labels = validate_nonempty(scores, labels, Scores::Finite, "ranking")?;
        let mut collector = RankingCollector::new();
        collector.add(scores, &labels);
        collector.into_ranking()
    }

    /// Merges the scores of fakes and of real samples, each sorted decreasingly.
    fn from_sorted(fake: &[f32], real: &[f32]) -> Self {
        let mut thresholds = Vec::new();
        let (mut tps, mut fps) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        let (mut tp, mut fp) = (0u64, 0u64);
        while i < fake.len() || j < real.len() {
            let current = match (fake.get(i), real.get(j)) {
                (Some(&a), Some(&b)) => a.max(b),
                (Some(&a), None) => a,
                (None, Some(&b)) => b,
                (None, None) => break,
            };
            while i < fake.len() && fake[i] == current {
                tp += 1;
                i += 1;
            }
            while j < real.len() && real[j] == current {
                fp += 1;
                j += 1;
            }
            thresholds.push(current);
            tps.push(tp);
            fps.push(fp);
        }
        Self {
            thresholds,
            tps,
            fps,
        }
    }

    /// Number of fake samples.
    pub fn fakes(&self) -> u64 {
        self.tps.last().copied().unwrap_or(0)
    }

    /// Number of real samples.
    pub fn reals(&self) -> u64 {
        self.fps.last().copied().unwrap_or(0)
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.fakes() + self.reals()
    }

    /// Whether there is no sample (never the case for a ranking built by this crate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct scores.
    pub fn distinct_scores(&self) -> usize {
        self.thresholds.len()
    }

    fn require_both(&self, metric: &'static str) -> Result<()> {
        if self.fakes() == 0 {
            return Err(Error::SingleClass {
                metric,
                missing: "fake",
            });
        }
        if self.reals() == 0 {
            return Err(Error::SingleClass {
                metric,
                missing: "real",
            });
        }
        Ok(())
    }

    /// The ROC curve, as scikit-learn's `roc_curve(y, scores, drop_intermediate=...)`.
    ///
    /// One point per distinct score, preceded by `(0, 0)` at threshold `+inf`. With
    /// `drop_intermediate`, the points where neither the fake nor the real count changes
    /// slope are removed, as scikit-learn does: point `k` (not the first or last of the
    /// counts) is kept iff `fps[k+1] - 2 fps[k] + fps[k-1] != 0` or the same for `tps`,
    /// i.e. only the corners of the curve remain; the area is unchanged.
    ///
    /// # Errors
    /// [`Error::SingleClass`] when the labels are all fake or all real.
    pub fn roc_curve(&self, drop_intermediate: bool) -> Result<RocCurve> {
        self.require_both("ROC curve")?;
        let m = self.thresholds.len();
        let keep = |k: usize| -> bool {
            if !drop_intermediate || m <= 2 || k == 0 || k + 1 == m {
                return true;
            }
            let bends = |c: &[u64]| c[k + 1] + c[k - 1] != 2 * c[k];
            bends(&self.fps) || bends(&self.tps)
        };
        let (p, n) = (self.fakes() as f64, self.reals() as f64);
        let mut curve = RocCurve {
            fpr: vec![0.0],
            tpr: vec![0.0],
            thresholds: vec![f32::INFINITY],
        };
        for k in (0..m).filter(|&k| keep(k)) {
            curve.fpr.push(self.fps[k] as f64 / n);
            curve.tpr.push(self.tps[k] as f64 / p);
            curve.thresholds.push(self.thresholds[k]);
        }
        Ok(curve)
    }

    /// Area under the ROC curve (scikit-learn's `roc_auc_score`): the trapezoidal area,
    /// which with ties counted as one half equals the probability that a random fake
    /// scores above a random real sample. Computed exactly in integers, then divided once.
    ///
    /// # Errors
    /// [`Error::SingleClass`] when the labels are all fake or all real.
    pub fn roc_auc(&self) -> Result<f64> {
        self.require_both("ROC AUC")?;
        let (mut prev_tp, mut prev_fp) = (0u128, 0u128);
        let mut twice_area = 0u128;
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            let (tp, fp) = (u128::from(tp), u128::from(fp));
            twice_area += (fp - prev_fp) * (tp + prev_tp);
            (prev_tp, prev_fp) = (tp, fp);
        }
        let denominator = 2 * u128::from(self.fakes()) * u128::from(self.reals());
        Ok(twice_area as f64 / denominator as f64)
    }

    /// The precision-recall curve, as scikit-learn's
    /// `precision_recall_curve(y, scores, drop_intermediate=...)`; see [`PrCurve`].
    ///
    /// Without `drop_intermediate` (scikit-learn's default) there is one point per
    /// distinct score. With it, the points inside a run of equal fake counts (equal
    /// recall: a vertical segment of the plot) are removed, keeping the first and last of
    /// each run, as scikit-learn does; the average precision is unchanged. Plots want the
    /// lighter curve.
    ///
    /// # Errors
    /// [`Error::SingleClass`] when there is no fake sample (recall is undefined).
    pub fn precision_recall_curve(&self, drop_intermediate: bool) -> Result<PrCurve> {
        self.require_fakes("precision-recall curve")?;
        let p = self.fakes() as f64;
        let m = self.thresholds.len();
        let keep = |k: usize| -> bool {
            !drop_intermediate
                || m <= 2
                || k == 0
                || k + 1 == m
                || self.tps[k] != self.tps[k - 1]
                || self.tps[k + 1] != self.tps[k]
        };
        let mut curve = PrCurve {
            precision: Vec::new(),
            recall: Vec::new(),
            thresholds: Vec::new(),
        };
        for k in (0..m).rev().filter(|&k| keep(k)) {
            let (tp, fp) = (self.tps[k] as f64, self.fps[k] as f64);
            curve.precision.push(tp / (tp + fp));
            curve.recall.push(tp / p);
            curve.thresholds.push(self.thresholds[k]);
        }
        curve.precision.push(1.0);
        curve.recall.push(0.0);
        Ok(curve)
    }

    fn require_fakes(&self, metric: &'static str) -> Result<()> {
        if self.fakes() == 0 {
            return Err(Error::SingleClass {
                metric,
                missing: "fake",
            });
        }
        Ok(())
    }

    /// Average precision (scikit-learn's `average_precision_score`): the step integral of
    /// the precision-recall curve, `sum_k (R_k - R_{k-1}) P_k` over the thresholds in
    /// decreasing order, without interpolation.
    ///
    /// # Errors
    /// [`Error::SingleClass`] when there is no fake sample.
    pub fn average_precision(&self) -> Result<f64> {
        self.require_fakes("average precision")?;
        let mut prev_tp = 0u64;
        let mut sum = 0.0;
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            let precision = tp as f64 / (tp + fp) as f64;
            sum += (tp - prev_tp) as f64 * precision;
            prev_tp = tp;
        }
        Ok(sum / self.fakes() as f64)
    }

    /// Point `k` of the full ROC curve (`k = 0` is `(0, 0)` at `+inf`), as rates computed
    /// the way numpy computes them from scikit-learn's counts, so that comparisons and
    /// ties resolve identically.
    fn roc_point(&self, k: usize) -> (f64, f64, f32) {
        if k == 0 {
            return (0.0, 0.0, f32::INFINITY);
        }
        let (p, n) = (self.fakes() as f64, self.reals() as f64);
        (
            self.fps[k - 1] as f64 / n,
            self.tps[k - 1] as f64 / p,
            self.thresholds[k - 1],
        )
    }

    /// The equal error rate: where the false positive rate equals the false negative rate
    /// (`1 - TPR`).
    ///
    /// Definition: on the full ROC curve (every distinct score, see
    /// [`Ranking::roc_curve`] with `drop_intermediate = false`), `d = FPR - FNR` is
    /// nondecreasing from -1 to 1. With `i` the first point where `d >= 0` and `j = i - 1`,
    /// the EER is the FPR (equivalently the FNR) where the straight segment between points
    /// `j` and `i` crosses `d = 0`: `FPR_j + t (FPR_i - FPR_j)` with
    /// `t = -d_j / (d_i - d_j)`. Points between two thresholds are reachable by picking one
    /// threshold or the other at random, so the interpolated rate is achievable. The
    /// threshold is the one of the point of `i`, `j` with the smaller `|d|` (`i` on a tie).
    ///
    /// # Errors
    /// [`Error::SingleClass`] when the labels are all fake or all real.
    pub fn equal_error_rate(&self) -> Result<EqualErrorRate> {
        self.require_both("equal error rate")?;
        let d = |k: usize| {
            let (fpr, tpr, _) = self.roc_point(k);
            fpr - (1.0 - tpr)
        };
        // d(0) = -1 (point (0, 0)) and d(last) = 1 (point (1, 1)), so 1 <= i <= last.
        let last = self.thresholds.len();
        let i = (1..=last).find(|&k| d(k) >= 0.0).unwrap_or(last);
        let j = i - 1;
        let (d_i, d_j) = (d(i), d(j));
        let (fpr_i, fpr_j) = (self.roc_point(i).0, self.roc_point(j).0);
        let t = -d_j / (d_i - d_j);
        let rate = fpr_j + t * (fpr_i - fpr_j);
        let nearest = if d_i.abs() <= d_j.abs() { i } else { j };
        Ok(EqualErrorRate {
            rate,
            threshold: self.roc_point(nearest).2,
        })
    }

    /// The operating point with the highest true positive rate whose false positive rate
    /// is at most `max_fpr` (on the full ROC curve; no interpolation, so the point is
    /// reachable with its threshold). Detection papers report it as "TPR at 1 % FPR".
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 <= max_fpr <= 1`; [`Error::SingleClass`] when
    /// the labels are all fake or all real.
    pub fn tpr_at_fpr(&self, max_fpr: f64) -> Result<OperatingPoint> {
        if !(0.0..=1.0).contains(&max_fpr) {
            return Err(crate::error::invalid_argument(
                "max_fpr",
                max_fpr,
                "a false positive rate in [0, 1]",
            ));
        }
        self.require_both("TPR at fixed FPR")?;
        // FPR is nondecreasing and point 0 has FPR 0, so the last point within the bound
        // exists and has the highest TPR among those within it.
        let n = self.reals() as f64;
        let k = self.fps.partition_point(|&fp| fp as f64 / n <= max_fpr);
        let (fpr, tpr, threshold) = self.roc_point(k);
        Ok(OperatingPoint {
            fpr,
            tpr,
            threshold,
        })
    }
}

/// Collects scores for the ranking metrics, streamed; [`Metric::compute`] returns the
/// [`Ranking`].
///
/// Memory: exact ROC AUC, AP and EER need every score, so this keeps all of them: 4 bytes
/// per sample (the scores of fakes and of real samples in two vectors, so the label costs
/// nothing). `compute` copies and sorts them once (`O(n log n)`, 4 more bytes per sample
/// while it runs); [`RankingCollector::into_ranking`] sorts in place without the copy.
/// Ten million samples take 40 MB.
#[derive(Debug, Clone, Default)]
pub struct RankingCollector {
    fake: Vec<f32>,
    real: Vec<f32>,
}

impl RankingCollector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, scores: &[f32], labels: &[bool]) {
        for (&score, &fake) in scores.iter().zip(labels) {
            // +0.0 turns -0.0 into 0.0, so that equal scores sort as one group.
            let score = score + 0.0;
            if fake {
                self.fake.push(score);
            } else {
                self.real.push(score);
            }
        }
    }

    /// Sorts the collected scores in place and counts.
    ///
    /// # Errors
    /// [`Error::Empty`] when nothing was collected.
    pub fn into_ranking(mut self) -> Result<Ranking> {
        if self.fake.is_empty() && self.real.is_empty() {
            return Err(Error::Empty { metric: "ranking" });
        }
        self.fake.sort_unstable_by(|a, b| b.total_cmp(a));
        self.real.sort_unstable_by(|a, b| b.total_cmp(a));
        Ok(Ranking::from_sorted(&self.fake, &self.real))
    }
}

impl Metric for RankingCollector {
    type Output = Ranking;

    fn update<L: Label>(&mut self, scores: &[f32], labels: &[L]) -> Result<()> {
        let labels = validate(scores, labels, Scores::Finite)?;
        self.add(scores, &labels);
        Ok(())
    }

    fn compute(&self) -> Result<Ranking> {
        self.clone().into_ranking()
    }

    fn reset(&mut self) {
        self.fake.clear();
        self.real.clear();
    }

    fn count(&self) -> u64 {
        (self.fake.len() + self.real.len()) as u64
    }
}

/// The ROC curve of the scores; see [`Ranking::roc_curve`].
///
/// # Errors
/// As [`Ranking::new`] and [`Ranking::roc_curve`].
pub fn roc_curve<L: Label>(
    scores: &[f32],
    labels: &[L],
    drop_intermediate: bool,
) -> Result<RocCurve> {
    Ranking::new(scores, labels)?.roc_curve(drop_intermediate)
}

/// Area under the ROC curve; see [`Ranking::roc_auc`].
///
/// # Errors
/// As [`Ranking::new`] and [`Ranking::roc_auc`].
pub fn roc_auc<L: Label>(scores: &[f32], labels: &[L]) -> Result<f64> {
    Ranking::new(scores, labels)?.roc_auc()
}

/// The precision-recall curve; see [`Ranking::precision_recall_curve`].
///
/// # Errors
/// As [`Ranking::new`] and [`Ranking::precision_recall_curve`].
pub fn precision_recall_curve<L: Label>(
    scores: &[f32],
    labels: &[L],
    drop_intermediate: bool,
) -> Result<PrCurve> {
    Ranking::new(scores, labels)?.precision_recall_curve(drop_intermediate)
}

/// Average precision; see [`Ranking::average_precision`].
///
/// # Errors
/// As [`Ranking::new`] and [`Ranking::average_precision`].
pub fn average_precision<L: Label>(scores: &[f32], labels: &[L]) -> Result<f64> {
    Ranking::new(scores, labels)?.average_precision()
}

/// The equal error rate and its threshold; see [`Ranking::equal_error_rate`].
///
/// # Errors
/// As [`Ranking::new`] and [`Ranking::equal_error_rate`].
pub fn equal_error_rate<L: Label>(scores: &[f32], labels: &[L]) -> Result<EqualErrorRate> {
    Ranking::new(scores, labels)?.equal_error_rate()
}

/// The best TPR at a false positive rate of at most `max_fpr`; see [`Ranking::tpr_at_fpr`].
///
/// # Errors
/// As [`Ranking::new`] and [`Ranking::tpr_at_fpr`].
pub fn tpr_at_fpr<L: Label>(scores: &[f32], labels: &[L], max_fpr: f64) -> Result<OperatingPoint> {
    Ranking::new(scores, labels)?.tpr_at_fpr(max_fpr)
}
