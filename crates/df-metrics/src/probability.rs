//! Metrics of the predicted probabilities themselves: log loss, Brier score, calibration.
//!
//! All of them need scores in `[0, 1]` (probabilities of "fake", `sigmoid(logit)`), and keep
//! constant memory when streamed.

use serde::{Deserialize, Serialize};

use crate::input::{validate, Label, Scores};
use crate::{Error, Metric, Result};

/// The clipping bound of [`log_loss`]: the machine epsilon of `f32`, the bound scikit-learn's
/// `log_loss` uses for `float32` input (`np.finfo(np.float32).eps`).
pub const LOG_LOSS_EPS: f64 = f32::EPSILON as f64;

/// The default number of bins of the expected calibration error (Guo et al., 2017).
pub const DEFAULT_ECE_BINS: usize = 15;

/// Binary cross-entropy of the probabilities, averaged over samples, streamed.
///
/// `-mean(y ln p + (1 - y) ln(1 - p))` with `p` clipped to
/// `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`, computed in `f64`: scikit-learn's `log_loss` on
/// `float32` scores, up to the precision scikit-learn computes in (it stays in `float32`).
/// Natural logarithm, so the value is comparable with the training loss.
#[derive(Debug, Clone, Default)]
pub struct LogLoss {
    sum: f64,
    count: u64,
}

impl LogLoss {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, scores: &[f32], labels: &[bool]) {
        for (&score, &fake) in scores.iter().zip(labels) {
            let p = f64::from(score).clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            // ln_1p keeps ln(1 - p) accurate for small p.
            self.sum -= if fake { p.ln() } else { (-p).ln_1p() };
        }
        self.count += scores.len() as u64;
    }
}

impl Metric for LogLoss {
    type Output = f64;

    fn update<L: Label>(&mut self, scores: &[f32], labels: &[L]) -> Result<()> {
        let labels = validate(scores, labels, Scores::Probability("log loss"))?;
        self.add(scores, &labels);
        Ok(())
    }

    fn compute(&self) -> Result<f64> {
        if self.count == 0 {
            return Err(Error::Empty { metric: "log loss" });
        }
        Ok(self.sum / self.count as f64)
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn count(&self) -> u64 {
        self.count
    }
}

/// The Brier score, `mean((p - y)^2)`, streamed (scikit-learn's `brier_score_loss` for a
/// binary problem: 0 is perfect, 0.25 is a constant 0.5).
#[derive(Debug, Clone, Default)]
pub struct BrierScore {
    sum: f64,
    count: u64,
}

impl BrierScore {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, scores: &[f32], labels: &[bool]) {
        for (&score, &fake) in scores.iter().zip(labels) {
            let error = f64::from(score) - if fake { 1.0 } else { 0.0 };
            self.sum += error * error;
        }
        self.count += scores.len() as u64;
    }
}

impl Metric for BrierScore {
    type Output = f64;

    fn update<L: Label>(&mut self, scores: &[f32], labels: &[L]) -> Result<()> {
        let labels = validate(scores, labels, Scores::Probability("Brier score"))?;
        self.add(scores, &labels);
        Ok(())
    }

    fn compute(&self) -> Result<f64> {
        if self.count == 0 {
            return Err(Error::Empty {
                metric: "Brier score",
            });
        }
        Ok(self.sum / self.count as f64)
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn count(&self) -> u64 {
        self.count
    }
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge (excluded, except for the first bin, which includes 0).
    pub lower: f64,
    /// Upper edge (included).
    pub upper: f64,
    /// Number of samples whose score falls in the bin.
    pub count: u64,
    /// Mean score of those samples (`None` for an empty bin).
    pub mean_score: Option<f64>,
    /// Share of fakes among them (`None` for an empty bin).
    pub fraction_fake: Option<f64>,
}

/// A reliability diagram of p(fake) and the calibration errors derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Expected calibration error: `sum_m |B_m| / n * |fraction_fake_m - mean_score_m|`.
    pub ece: f64,
    /// Maximum calibration error: the largest `|fraction_fake_m - mean_score_m|` over
    /// non-empty bins.
    pub mce: f64,
    /// The bins, in increasing score order.
    pub bins: Vec<CalibrationBin>,
}

/// Expected calibration error of p(fake) over equal-width bins, streamed.
///
/// Definition: `[0, 1]` is cut into `M` equal-width bins with edges
/// `e_m = m * (1 / M)`; bin `m` holds the scores in `(e_m, e_{m+1}]`, the first one also 0
/// (a score on an edge goes to the lower bin: the binning of scikit-learn's
/// `calibration_curve(strategy="uniform")`, which `np.searchsorted` implements). With
/// `B_m` the samples of bin `m`, `acc_m` their share of fakes and `conf_m` their mean
/// score, `ECE = sum_m |B_m| / n * |acc_m - conf_m|`.
///
/// This is the calibration of the probability of the fake class, as a reliability
/// diagram of p(fake) shows it; it is not the "top-label" ECE of multiclass papers, which
/// bins `max(p, 1 - p)` instead. Memory is `O(M)` whatever the number of samples.
#[derive(Debug, Clone)]
pub struct CalibrationError {
    inner_edges: Vec<f64>,
    count: Vec<u64>,
    sum_score: Vec<f64>,
    fakes: Vec<u64>,
    total: u64,
}

impl CalibrationError {
    /// An empty accumulator with `bins` equal-width bins.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `bins` is 0.
    pub fn new(bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(crate::error::invalid_argument(
                "bins",
                bins,
                "at least one calibration bin",
            ));
        }
        // Edges as numpy's linspace(0, 1, bins + 1) computes them: i * (1 / bins).
        let step = 1.0 / bins as f64;
        let inner_edges = (1..bins).map(|i| i as f64 * step).collect();
        Ok(Self {
            inner_edges,
            count: vec![0; bins],
            sum_score: vec![0.0; bins],
            fakes: vec![0; bins],
            total: 0,
        })
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.count.len()
    }

    pub(crate) fn add(&mut self, scores: &[f32], labels: &[bool]) {
        for (&score, &fake) in scores.iter().zip(labels) {
            let p = f64::from(score);
            let bin = self.inner_edges.partition_point(|&edge| edge < p);
            self.count[bin] += 1;
            self.sum_score[bin] += p;
            self.fakes[bin] += u64::from(fake);
        }
        self.total += scores.len() as u64;
    }
}

impl Metric for CalibrationError {
    type Output = Calibration;

    fn update<L: Label>(&mut self, scores: &[f32], labels: &[L]) -> Result<()> {
        let labels = validate(
            scores,
            labels,
            Scores::Probability("expected calibration error"),
        )?;
        self.add(scores, &labels);
        Ok(())
    }

    fn compute(&self) -> Result<Calibration> {
        if self.total == 0 {
            return Err(Error::Empty {
                metric: "expected calibration error",
            });
        }
        let n = self.total as f64;
        let m = self.bins();
        let mut ece = 0.0;
        let mut mce: f64 = 0.0;
        let mut bins = Vec::with_capacity(m);
        for i in 0..m {
            let count = self.count[i];
            let (mean_score, fraction_fake) = if count == 0 {
                (None, None)
            } else {
                let c = count as f64;
                let conf = self.sum_score[i] / c;
                let acc = self.fakes[i] as f64 / c;
                let gap = (acc - conf).abs();
                ece += c / n * gap;
                mce = mce.max(gap);
                (Some(conf), Some(acc))
            };
            let lower = if i == 0 { 0.0 } else { self.inner_edges[i - 1] };
            let upper = if i + 1 == m { 1.0 } else { self.inner_edges[i] };
            bins.push(CalibrationBin {
                lower,
                upper,
                count,
                mean_score,
                fraction_fake,
            });
        }
        Ok(Calibration { ece, mce, bins })
    }

    fn reset(&mut self) {
        self.count.iter_mut().for_each(|c| *c = 0);
        self.sum_score.iter_mut().for_each(|s| *s = 0.0);
        self.fakes.iter_mut().for_each(|f| *f = 0);
        self.total = 0;
    }

    fn count(&self) -> u64 {
        self.total
    }
}

fn one_shot<M: Metric, L: Label>(mut metric: M, scores: &[f32], labels: &[L]) -> Result<M::Output> {
    metric.update(scores, labels)?;
    metric.compute()
}

/// Log loss (binary cross-entropy) of probabilities of "fake"; see [`LogLoss`].
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`],
/// [`Error::ScoreOutOfRange`], [`Error::InvalidLabel`].
pub fn log_loss<L: Label>(scores: &[f32], labels: &[L]) -> Result<f64> {
    one_shot(LogLoss::new(), scores, labels)
}

/// Brier score of probabilities of "fake"; see [`BrierScore`].
///
/// # Errors
/// As [`log_loss`].
pub fn brier_score<L: Label>(scores: &[f32], labels: &[L]) -> Result<f64> {
    one_shot(BrierScore::new(), scores, labels)
}

/// Reliability diagram, ECE and MCE over `bins` equal-width bins; see [`CalibrationError`].
///
/// # Errors
/// As [`log_loss`], and [`Error::InvalidArgument`] when `bins` is 0.
pub fn calibration<L: Label>(scores: &[f32], labels: &[L], bins: usize) -> Result<Calibration> {
    one_shot(CalibrationError::new(bins)?, scores, labels)
}

/// Expected calibration error over `bins` equal-width bins; see [`CalibrationError`].
///
/// # Errors
/// As [`calibration`].
pub fn expected_calibration_error<L: Label>(
    scores: &[f32],
    labels: &[L],
    bins: usize,
) -> Result<f64> {
    Ok(calibration(scores, labels, bins)?.ece)
}
