//! The streaming evaluator of a binary detector and the report it writes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::input::{check_threshold, validate, Label, Scores};
use crate::probability::{BrierScore, Calibration, CalibrationError, LogLoss, DEFAULT_ECE_BINS};
use crate::ranking::{PrCurve, Ranking, RankingCollector, RocCurve};
use crate::threshold::ConfusionMatrix;
use crate::{Error, Metric, Result};

/// Settings of a [`BinaryEvaluator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluatorConfig {
    /// Decision threshold: `score >= threshold` is predicted fake. Default 0.5.
    pub threshold: f32,
    /// Number of equal-width bins of the expected calibration error. Default
    /// [`DEFAULT_ECE_BINS`] (15).
    pub ece_bins: usize,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            ece_bins: DEFAULT_ECE_BINS,
        }
    }
}

impl EvaluatorConfig {
    /// Sets the decision threshold.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the number of calibration bins.
    pub fn with_ece_bins(mut self, bins: usize) -> Self {
        self.ece_bins = bins;
        self
    }
}

/// Every metric of this crate over one evaluation set, as written to `metrics.json`.
///
/// The ranking metrics (`auc` to `tpr_at_fpr_10pct`) are `None` (JSON `null`) when the
/// set lacks one class (`ap` only needs fakes); the others are always defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Number of samples.
    pub n: u64,
    /// Number of fake samples (label 1).
    pub n_fake: u64,
    /// Number of real samples (label 0).
    pub n_real: u64,
    /// The decision threshold of the threshold metrics (`score >= threshold` is fake).
    pub threshold: f32,
    /// Share of correct decisions at `threshold`.
    pub accuracy: f64,
    /// Precision of the fake class at `threshold` (0 when nothing is predicted fake).
    pub precision: f64,
    /// Recall of the fake class at `threshold` (0 when there is no fake).
    pub recall: f64,
    /// F1 of the fake class at `threshold`.
    pub f1: f64,
    /// Confusion matrix at `threshold`.
    pub confusion_matrix: ConfusionMatrix,
    /// Log loss (binary cross-entropy, natural log); see [`LogLoss`].
    pub log_loss: f64,
    /// Brier score; see [`BrierScore`].
    pub brier: f64,
    /// Expected calibration error over `ece_bins` equal-width bins; see
    /// [`CalibrationError`].
    pub ece: f64,
    /// Number of bins of `ece`.
    pub ece_bins: usize,
    /// Area under the ROC curve.
    pub auc: Option<f64>,
    /// Average precision.
    pub ap: Option<f64>,
    /// Equal error rate; see [`Ranking::equal_error_rate`].
    pub eer: Option<f64>,
    /// The threshold nearest to the equal error rate (`None` also when that threshold is
    /// "nothing is fake", `+inf`).
    pub eer_threshold: Option<f32>,
    /// Highest TPR at FPR <= 1 %; see [`Ranking::tpr_at_fpr`].
    pub tpr_at_fpr_1pct: Option<f64>,
    /// Highest TPR at FPR <= 5 %.
    pub tpr_at_fpr_5pct: Option<f64>,
    /// Highest TPR at FPR <= 10 %.
    pub tpr_at_fpr_10pct: Option<f64>,
}

impl Report {
    /// The report as pretty-printed JSON.
    ///
    /// # Errors
    /// [`Error::Json`] (not expected: every field is representable).
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: "-".into(),
            source,
        })
    }

    /// Writes the report as pretty-printed JSON, atomically (a temporary file next to
    /// `path`, then a rename).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn to_json_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut text = self.to_json_string()?;
        text.push('\n');
        Ok(df_io::write_atomic(path.as_ref(), text)?)
    }

    /// Reads a report written by [`Report::to_json_file`].
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`].
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        crate::io::read_json(path.as_ref())
    }
}

/// The outputs of a [`BinaryEvaluator`]: the report, and the curves for plots.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// All scalar metrics.
    pub report: Report,
    /// ROC curve with intermediate points dropped (`None` for a single-class set).
    pub roc: Option<RocCurve>,
    /// Precision-recall curve with intermediate points dropped (`None` when there is no
    /// fake).
    pub pr: Option<PrCurve>,
    /// Reliability diagram.
    pub calibration: Calibration,
}

/// Streaming evaluation of a binary fake detector: feed batches of probabilities of
/// "fake" and labels with [`Metric::update`], get a [`Report`] with [`Metric::compute`]
/// (or the report and its curves with [`BinaryEvaluator::evaluate`]).
///
/// Memory: the threshold, probability and calibration metrics are constant-size sums;
/// the ranking metrics (AUC, AP, EER, TPR at FPR) are exact, which needs every score:
/// 4 bytes per sample (see [`RankingCollector`]). They are computed from one sort.
///
/// ```
/// # mod deepfake { pub mod metrics { pub use df_metrics::*; } }
/// use deepfake::metrics::{BinaryEvaluator, EvaluatorConfig, Metric};
///
/// # fn main() -> deepfake::metrics::Result<()> {
/// let mut evaluator = BinaryEvaluator::new(EvaluatorConfig::default())?;
/// for (scores, labels) in [(vec![0.9f32, 0.2], vec![1u8, 0]), (vec![0.4, 0.7], vec![1, 0])] {
///     evaluator.update(&scores, &labels)?;
/// }
/// let report = evaluator.compute()?;
/// assert_eq!(report.n, 4);
/// assert_eq!(report.accuracy, 0.5);
/// assert_eq!(report.auc, Some(0.75));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BinaryEvaluator {
    config: EvaluatorConfig,
    confusion: ConfusionMatrix,
    log_loss: LogLoss,
    brier: BrierScore,
    calibration: CalibrationError,
    ranking: RankingCollector,
}

impl BinaryEvaluator {
    /// An empty evaluator.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a NaN threshold or zero calibration bins.
    pub fn new(config: EvaluatorConfig) -> Result<Self> {
        check_threshold(config.threshold)?;
        if !(0.0..=1.0).contains(&config.threshold) {
            return Err(crate::error::invalid_argument(
                "threshold",
                config.threshold,
                "a probability in [0, 1] (scores >= threshold are predicted fake)",
            ));
        }
        Ok(Self {
            calibration: CalibrationError::new(config.ece_bins)?,
            config,
            confusion: ConfusionMatrix::default(),
            log_loss: LogLoss::new(),
            brier: BrierScore::new(),
            ranking: RankingCollector::new(),
        })
    }

    /// Its settings.
    pub fn config(&self) -> &EvaluatorConfig {
        &self.config
    }

    /// The report and the curves, from one sort of the scores.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample was added.
    pub fn evaluate(&self) -> Result<Evaluation> {
        let ranking = self.ranking.compute()?;
        self.assemble(&ranking)
    }

    /// As [`BinaryEvaluator::evaluate`], sorting the collected scores in place instead of
    /// a copy.
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample was added.
    pub fn into_evaluation(mut self) -> Result<Evaluation> {
        let ranking = std::mem::take(&mut self.ranking).into_ranking()?;
        self.assemble(&ranking)
    }

    fn assemble(&self, ranking: &Ranking) -> Result<Evaluation> {
        let confusion = self.confusion;
        let calibration = self.calibration.compute()?;
        let both = ranking.fakes() > 0 && ranking.reals() > 0;
        let (auc, eer, roc, tpr) = if both {
            let eer = ranking.equal_error_rate()?;
            let tpr =
                [0.01, 0.05, 0.1].map(|fpr| ranking.tpr_at_fpr(fpr).map(|point| Some(point.tpr)));
            let [t1, t5, t10] = tpr;
            (
                Some(ranking.roc_auc()?),
                Some(eer),
                Some(ranking.roc_curve(true)?),
                [t1?, t5?, t10?],
            )
        } else {
            (None, None, None, [None; 3])
        };
        let (ap, pr) = if ranking.fakes() > 0 {
            (
                Some(ranking.average_precision()?),
                Some(ranking.precision_recall_curve(true)?),
            )
        } else {
            (None, None)
        };
        let report = Report {
            n: ranking.len(),
            n_fake: ranking.fakes(),
            n_real: ranking.reals(),
            threshold: self.config.threshold,
            accuracy: confusion.accuracy(),
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            confusion_matrix: confusion,
            log_loss: self.log_loss.compute()?,
            brier: self.brier.compute()?,
            ece: calibration.ece,
            ece_bins: self.config.ece_bins,
            auc,
            ap,
            eer: eer.map(|e| e.rate),
            eer_threshold: eer.map(|e| e.threshold).filter(|t| t.is_finite()),
            tpr_at_fpr_1pct: tpr[0],
            tpr_at_fpr_5pct: tpr[1],
            tpr_at_fpr_10pct: tpr[2],
        };
        Ok(Evaluation {
            report,
            roc,
            pr,
            calibration,
        })
    }
}

impl Metric for BinaryEvaluator {
    type Output = Report;

    fn update<L: Label>(&mut self, scores: &[f32], labels: &[L]) -> Result<()> {
        let labels = validate(scores, labels, Scores::Probability("evaluation"))?;
        self.confusion.add(scores, &labels, self.config.threshold);
        self.log_loss.add(scores, &labels);
        self.brier.add(scores, &labels);
        self.calibration.add(scores, &labels);
        self.ranking.add(scores, &labels);
        Ok(())
    }

    fn compute(&self) -> Result<Report> {
        Ok(self.evaluate()?.report)
    }

    fn reset(&mut self) {
        self.confusion = ConfusionMatrix::default();
        self.log_loss.reset();
        self.brier.reset();
        self.calibration.reset();
        self.ranking.reset();
    }

    fn count(&self) -> u64 {
        self.log_loss.count()
    }
}

/// Evaluates one batch holding the whole set; see [`BinaryEvaluator`].
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`],
/// [`Error::ScoreOutOfRange`], [`Error::InvalidLabel`], [`Error::InvalidArgument`].
pub fn evaluate<L: Label>(
    scores: &[f32],
    labels: &[L],
    config: EvaluatorConfig,
) -> Result<Evaluation> {
    let mut evaluator = BinaryEvaluator::new(config)?;
    evaluator.update(scores, labels)?;
    evaluator.into_evaluation()
}
