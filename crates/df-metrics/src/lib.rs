//! # df-metrics
//!
//! Evaluation of binary fake detectors, training-history analysis, and plots. The crate
//! depends on no other df crate: it works on `f32` scores, the probability that a sample
//! is **fake** (`sigmoid(logit)`), and labels where 1 / `true` is fake and 0 / `false` is
//! real ([`Label`] is implemented for `bool`, `u8`, `i32`, `i64`, `u32`, `u64`, `f32`,
//! `f64`).
//!
//! - **At a threshold** (`score >= threshold` is fake): [`confusion_matrix`],
//!   [`accuracy`], [`precision_recall_f1`].
//! - **Probabilities**: [`log_loss`] (clipped like scikit-learn), [`brier_score`],
//!   [`calibration`] / [`expected_calibration_error`] (equal-width bins).
//! - **Ranking** (threshold-free): [`roc_curve`], [`roc_auc`], [`precision_recall_curve`],
//!   [`average_precision`], [`equal_error_rate`], [`tpr_at_fpr`]; ties are handled as
//!   scikit-learn handles them. [`Ranking`] sorts once and serves them all.
//! - **Streaming**: every metric is also a [`Metric`] (`update`, `compute`, `reset`), and
//!   [`BinaryEvaluator`] accumulates them all into a serializable [`Report`]
//!   (`metrics.json`). Everything but the ranking metrics runs in constant memory; exact
//!   ranking metrics keep every score (4 bytes per sample) and sort once.
//! - **History**: [`History`] is the canonical per-epoch record of a training run
//!   (`history.json`, `history.csv`), with its analysis: [`History::best_epoch`],
//!   [`History::generalization_gap`], [`History::fluctuation`], [`History::analyze`].
//! - **Plots** (PNG or SVG by extension): [`plot_history`], [`plot_roc`], [`plot_pr`],
//!   [`plot_calibration`].
//!
//! Every metric is checked against scikit-learn on the same inputs (the fixtures of
//! `scripts/fixtures/sklearn_metrics.py`).
//!
//! ```
//! # mod deepfake { pub mod metrics { pub use df_metrics::*; } }
//! use deepfake::metrics::{BinaryEvaluator, EvaluatorConfig, Metric};
//!
//! # fn main() -> deepfake::metrics::Result<()> {
//! // p(fake) from a detector, and the truth (1 = fake), arriving in batches.
//! let batches = [
//!     (vec![0.92f32, 0.15, 0.64, 0.30], vec![1u8, 0, 1, 0]),
//!     (vec![0.81, 0.55, 0.08, 0.47], vec![1, 0, 0, 1]),
//! ];
//! let mut evaluator = BinaryEvaluator::new(EvaluatorConfig::default())?;
//! for (scores, labels) in &batches {
//!     evaluator.update(scores, labels)?;
//! }
//! let evaluation = evaluator.evaluate()?;
//! let report = &evaluation.report;
//! assert_eq!(report.n, 8);
//! assert_eq!(report.accuracy, 0.75); // 0.55 (real) and 0.47 (fake) are on the wrong side
//! assert_eq!(report.auc, Some(15.0 / 16.0)); // 15 of 16 (fake, real) pairs ranked right
//!
//! let tmp = tempfile::tempdir().expect("a private temporary folder");
//! let dir = tmp.path();
//! report.to_json_file(dir.join("metrics.json"))?;
//! if let Some(roc) = &evaluation.roc {
//!     deepfake::metrics::plot_roc(&[("detector", roc)], dir.join("roc.svg"))?;
//! }
//! # Ok(()) }
//! ```

mod error;
mod history;
mod input;
mod io;
mod metric;
mod plot;
mod probability;
mod ranking;
mod report;
mod serde_util;
mod threshold;

pub use error::{Error, Result};
pub use history::{
    AnalysisConfig, BestEpoch, EpochRecord, Fluctuation, GeneralizationGap, History,
    HistoryAnalysis, HistoryNote, MetricNames, Mode,
};
pub use input::Label;
pub use metric::Metric;
pub use plot::{
    plot_calibration, plot_histories, plot_history, plot_history_with, plot_pr, plot_roc,
};
pub use probability::{
    brier_score, calibration, expected_calibration_error, log_loss, BrierScore, Calibration,
    CalibrationBin, CalibrationError, LogLoss, DEFAULT_ECE_BINS, LOG_LOSS_EPS,
};
pub use ranking::{
    average_precision, equal_error_rate, precision_recall_curve, roc_auc, roc_curve, tpr_at_fpr,
    EqualErrorRate, OperatingPoint, PrCurve, Ranking, RankingCollector, RocCurve,
};
pub use report::{evaluate, BinaryEvaluator, Evaluation, EvaluatorConfig, Report};
pub use threshold::{
    accuracy, confusion_matrix, precision_recall_f1, ConfusionMatrix, PrecisionRecallF1,
};

/// The entry point of the fuzz target `history_files` (`fuzz/`), shared with the test that
/// replays its corpus on stable.
#[doc(hidden)]
pub mod fuzz {
    /// Reads `data` as a run's `history.json` and as its `history.csv`, and analyses what
    /// parses: every result is acceptable but a panic.
    pub fn history_files(data: &[u8]) {
        let mut parsed = Vec::new();
        if let Ok(text) = std::str::from_utf8(data) {
            parsed.extend(crate::History::from_json_str(text).ok());
        }
        parsed.extend(crate::History::read_csv(data).ok());
        for history in parsed {
            let _ = history.analyze(&crate::AnalysisConfig::monitoring("val_loss"));
            let _ = history.best_epoch("val_loss", crate::Mode::Min);
            let _ = history.to_json_string();
            let mut csv = Vec::new();
            let _ = history.write_csv(&mut csv);
        }
    }
}
