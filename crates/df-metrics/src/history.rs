//! The per-epoch training history, its files (JSON and CSV), and its analysis: best epoch,
//! generalization gap, and the fluctuation of the validation curves.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::invalid_argument;
use crate::{Error, Result};

/// The metrics of one epoch, by name (Keras names: `loss`, `accuracy`, `val_loss`,
/// `val_accuracy`, `lr`, `seconds`, ...).
///
/// Non-finite values (a diverged epoch) are kept; JSON writes them as `null` and reads
/// `null` back as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch number, as the trainer counts (df-train counts from 1, as Keras prints).
    pub epoch: usize,
    /// The metric values.
    #[serde(with = "crate::serde_util::nan_as_null")]
    pub metrics: BTreeMap<String, f64>,
}

impl EpochRecord {
    /// A record without metrics.
    pub fn new(epoch: usize) -> Self {
        Self {
            epoch,
            metrics: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a metric, builder style.
    pub fn with(mut self, metric: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(metric.into(), value);
        self
    }

    /// Adds (or replaces) a metric; returns the previous value.
    pub fn insert(&mut self, metric: impl Into<String>, value: f64) -> Option<f64> {
        self.metrics.insert(metric.into(), value)
    }

    /// The value of a metric, if recorded.
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied()
    }
}

/// A training history: one [`EpochRecord`] per epoch, epochs strictly increasing.
///
/// This is the canonical record of a run: df-train writes it as `history.json` and
/// `history.csv` every epoch, and the analysis and plots of this crate read it.
///
/// JSON: `{"epochs": [{"epoch": 1, "metrics": {"loss": 0.69, "val_loss": 0.71}}, ...]}`.
/// CSV: a header `epoch,<metric>,...` (metrics in name order, as Keras' `CSVLogger`
/// writes), one row per epoch, an empty cell where an epoch lacks a metric.
///
/// ```
/// # mod deepfake { pub mod metrics { pub use df_metrics::*; } }
/// use deepfake::metrics::{EpochRecord, History, Mode};
///
/// # fn main() -> deepfake::metrics::Result<()> {
/// let mut history = History::new();
/// history.push(EpochRecord::new(1).with("loss", 0.60).with("val_loss", 0.65))?;
/// history.push(EpochRecord::new(2).with("loss", 0.40).with("val_loss", 0.50))?;
/// history.push(EpochRecord::new(3).with("loss", 0.30).with("val_loss", 0.55))?;
/// let best = history.best_epoch("val_loss", Mode::Min)?;
/// assert_eq!((best.epoch, best.value), (2, 0.50));
/// assert_eq!(history.get("loss"), vec![(1, 0.60), (2, 0.40), (3, 0.30)]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The epochs, in increasing epoch order.
    pub epochs: Vec<EpochRecord>,
    /// Events of the run between epochs (a resume that changed a setting ...), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<HistoryNote>,
}

/// Something that happened to a run between epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryNote {
    /// The last epoch completed before it (0: before the first).
    pub after_epoch: usize,
    /// What happened.
    pub text: String,
}

/// Whether a smaller or a larger value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Smaller is better (losses, error rates).
    Min,
    /// Larger is better (accuracy, AUC).
    Max,
}

impl Mode {
    /// The mode Keras' `"auto"` would pick, extended to this crate's metrics: `Max` when
    /// the name contains `acc`, `auc`, `precision`, `recall` or `f1`, or ends in `ap`;
    /// `Min` otherwise (`loss`, `val_loss`, `eer`, `ece`, `brier`, ...).
    pub fn infer(metric: &str) -> Self {
        let name = metric.to_ascii_lowercase();
        let larger_is_better = ["acc", "auc", "precision", "recall", "f1"]
            .iter()
            .any(|key| name.contains(key))
            || name.ends_with("ap");
        if larger_is_better {
            Self::Max
        } else {
            Self::Min
        }
    }

    /// Whether `candidate` is strictly better than `incumbent`.
    pub fn is_better(self, candidate: f64, incumbent: f64) -> bool {
        match self {
            Self::Min => candidate < incumbent,
            Self::Max => candidate > incumbent,
        }
    }
}

/// The names of the four curves of a classification run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricNames {
    /// Training loss. Default `loss`.
    pub loss: String,
    /// Validation loss. Default `val_loss`.
    pub val_loss: String,
    /// Training accuracy. Default `accuracy`.
    pub accuracy: String,
    /// Validation accuracy. Default `val_accuracy`.
    pub val_accuracy: String,
}

impl Default for MetricNames {
    fn default() -> Self {
        Self {
            loss: "loss".into(),
            val_loss: "val_loss".into(),
            accuracy: "accuracy".into(),
            val_accuracy: "val_accuracy".into(),
        }
    }
}

/// The best epoch of a monitored metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// The metric.
    pub metric: String,
    /// Whether smaller or larger was better.
    pub mode: Mode,
    /// The epoch where it was best (the first one, on a tie).
    pub epoch: usize,
    /// Its value there.
    pub value: f64,
}

/// The gap between training and validation at one epoch; positive values mean the model
/// does better on the training set (overfitting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneralizationGap {
    /// The epoch.
    pub epoch: usize,
    /// `val_loss - loss` (`None` when either is missing at that epoch).
    pub loss_gap: Option<f64>,
    /// `accuracy - val_accuracy` (`None` when either is missing at that epoch).
    pub accuracy_gap: Option<f64>,
}

/// How much a curve moves over its last epochs: the study's criterion for preferring a
/// model whose validation curves have settled.
///
/// Over the last `window` values `x_1..x_w` of the metric (in epoch order, from the
/// epochs that have it; all of them when there are fewer than asked):
///
/// - `std = sqrt(sum_i (x_i - mean)^2 / w)`, the population standard deviation (ddof 0);
/// - `mean_abs_change = sum_{i>=2} |x_i - x_{i-1}| / (w - 1)`, the mean epoch-to-epoch move;
/// - `max_abs_change = max_{i>=2} |x_i - x_{i-1}|`;
/// - `range = max_i x_i - min_i x_i`.
///
/// A non-finite value in the window makes the statistics NaN: the curve diverged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fluctuation {
    /// The metric.
    pub metric: String,
    /// Number of values used, `w` (at least 2).
    pub window: usize,
    /// Epoch of `x_1`.
    pub first_epoch: usize,
    /// Epoch of `x_w`.
    pub last_epoch: usize,
    /// Mean of the window.
    pub mean: f64,
    /// Population standard deviation of the window.
    pub std: f64,
    /// Mean absolute epoch-to-epoch change.
    pub mean_abs_change: f64,
    /// Largest absolute epoch-to-epoch change.
    pub max_abs_change: f64,
    /// Largest minus smallest value.
    pub range: f64,
}

/// Settings of [`History::analyze`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisConfig {
    /// The metric that picks the best epoch. Default `val_loss`.
    pub monitor: String,
    /// Whether smaller or larger `monitor` is better. Default `Min`.
    pub mode: Mode,
    /// Number of last epochs over which fluctuation is measured. Default 5.
    pub window: usize,
    /// The names of the loss and accuracy curves.
    pub names: MetricNames,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            monitor: "val_loss".into(),
            mode: Mode::Min,
            window: 5,
            names: MetricNames::default(),
        }
    }
}

impl AnalysisConfig {
    /// Monitors `metric`, with the mode [`Mode::infer`] picks.
    pub fn monitoring(metric: impl Into<String>) -> Self {
        let monitor = metric.into();
        Self {
            mode: Mode::infer(&monitor),
            monitor,
            ..Self::default()
        }
    }

    /// Sets the fluctuation window.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }
}

/// The summary of a run that the `compare` table shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryAnalysis {
    /// Number of epochs recorded.
    pub epochs: usize,
    /// Last epoch recorded.
    pub last_epoch: usize,
    /// Best epoch of the monitored metric.
    pub best: BestEpoch,
    /// Generalization gap at the best epoch.
    pub gap_at_best: GeneralizationGap,
    /// Generalization gap at the last epoch.
    pub gap_at_last: GeneralizationGap,
    /// Fluctuation of the validation loss over the last epochs (`None` with fewer than
    /// two values).
    pub val_loss_fluctuation: Option<Fluctuation>,
    /// Fluctuation of the validation accuracy over the last epochs (`None` with fewer
    /// than two values).
    pub val_accuracy_fluctuation: Option<Fluctuation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `text` as happening after the last epoch so far.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(HistoryNote {
            after_epoch: self.last_epoch().unwrap_or(0),
            text: text.into(),
        });
    }

    /// Appends an epoch.
    ///
    /// # Errors
    /// [`Error::EpochOrder`] unless its epoch is greater than the last one.
    pub fn push(&mut self, record: EpochRecord) -> Result<()> {
        if let Some(last) = self.last_epoch() {
            if record.epoch <= last {
                return Err(Error::EpochOrder {
                    last,
                    epoch: record.epoch,
                });
            }
        }
        self.epochs.push(record);
        Ok(())
    }

    /// Builds a history from Keras' `History.history` layout: one column of values per
    /// metric, epoch `first_epoch + i` in row `i`. A NaN in a column stands for a missing
    /// value only if `nan_is_missing`; otherwise it is kept.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the columns have different lengths.
    pub fn from_columns(
        columns: &BTreeMap<String, Vec<f64>>,
        first_epoch: usize,
        nan_is_missing: bool,
    ) -> Result<Self> {
        let rows = columns.values().map(Vec::len).max().unwrap_or(0);
        if let Some((name, col)) = columns.iter().find(|(_, c)| c.len() != rows) {
            return Err(invalid_argument(
                "columns",
                format!("`{name}` with {} values ({rows} in another)", col.len()),
                "columns of equal length",
            ));
        }
        let epochs = (0..rows)
            .map(|i| EpochRecord {
                epoch: first_epoch + i,
                metrics: columns
                    .iter()
                    .filter(|(_, col)| !(nan_is_missing && col[i].is_nan()))
                    .map(|(name, col)| (name.clone(), col[i]))
                    .collect(),
            })
            .collect();
        Ok(Self {
            epochs,
            notes: Vec::new(),
        })
    }

    /// Number of epochs recorded.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch is recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The last epoch number, if any.
    pub fn last_epoch(&self) -> Option<usize> {
        self.epochs.last().map(|r| r.epoch)
    }

    /// The record of an epoch, if recorded.
    pub fn record(&self, epoch: usize) -> Option<&EpochRecord> {
        self.epochs
            .binary_search_by_key(&epoch, |r| r.epoch)
            .ok()
            .map(|i| &self.epochs[i])
    }

    /// Drops every epoch after `epoch` (a resumed run restarts from its checkpoint).
    pub fn truncate_after(&mut self, epoch: usize) {
        self.epochs.retain(|r| r.epoch <= epoch);
    }

    /// `(epoch, value)` of a metric, for the epochs that have it, in epoch order.
    pub fn get(&self, metric: &str) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .filter_map(|r| r.get(metric).map(|v| (r.epoch, v)))
            .collect()
    }

    /// The values of a metric, for the epochs that have it, in epoch order.
    pub fn values(&self, metric: &str) -> Vec<f64> {
        self.epochs.iter().filter_map(|r| r.get(metric)).collect()
    }

    /// The last recorded value of a metric.
    pub fn last_value(&self, metric: &str) -> Option<f64> {
        self.epochs.iter().rev().find_map(|r| r.get(metric))
    }

    /// The names of every metric recorded, sorted.
    pub fn metric_names(&self) -> Vec<String> {
        self.epochs
            .iter()
            .flat_map(|r| r.metrics.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect()
    }

    fn missing(&self, metric: &str, needed: usize, available: usize) -> Error {
        let present = self.metric_names().join(", ");
        Error::MissingMetric {
            metric: metric.to_string(),
            needed,
            available,
            present: if present.is_empty() {
                "none".into()
            } else {
                present
            },
        }
    }

    fn check_order(&self) -> Result<()> {
        for pair in self.epochs.windows(2) {
            if pair[1].epoch <= pair[0].epoch {
                return Err(Error::EpochOrder {
                    last: pair[0].epoch,
                    epoch: pair[1].epoch,
                });
            }
        }
        Ok(())
    }

    // ---- files -------------------------------------------------------------------------

    /// The history as pretty-printed JSON.
    ///
    /// # Errors
    /// [`Error::Json`] (not expected).
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: "-".into(),
            source,
        })
    }

    /// Parses a history from JSON.
    ///
    /// # Errors
    /// [`Error::Json`]; [`Error::EpochOrder`] when epochs do not increase.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let history: Self = serde_json::from_str(text).map_err(|source| Error::Json {
            path: "-".into(),
            source,
        })?;
        history.check_order()?;
        Ok(history)
    }

    /// Writes the history as JSON, atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn to_json_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut text = self.to_json_string()?;
        text.push('\n');
        Ok(df_io::write_atomic(path.as_ref(), text)?)
    }

    /// Reads a history written by [`History::to_json_file`].
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`], [`Error::EpochOrder`].
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let history: Self = crate::io::read_json(path.as_ref())?;
        history.check_order()?;
        Ok(history)
    }

    /// Writes the history as CSV: `epoch,<metrics in name order>`, one row per epoch, an
    /// empty cell for a missing value, non-finite values as `NaN`, `inf`, `-inf`, finite
    /// ones in the shortest form that reads back exactly.
    ///
    /// # Errors
    /// [`Error::Csv`] when the writer fails.
    pub fn write_csv<W: Write>(&self, writer: W) -> Result<()> {
        self.write_csv_to(writer, Path::new("-"))
    }

    fn write_csv_to<W: Write>(&self, writer: W, path: &Path) -> Result<()> {
        let csv_error = |e: csv::Error| Error::Csv {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let names = self.metric_names();
        let mut out = csv::Writer::from_writer(writer);
        out.write_record(std::iter::once("epoch").chain(names.iter().map(String::as_str)))
            .map_err(csv_error)?;
        for record in &self.epochs {
            let mut row = vec![record.epoch.to_string()];
            row.extend(
                names
                    .iter()
                    .map(|n| record.get(n).map(format_value).unwrap_or_default()),
            );
            out.write_record(&row).map_err(csv_error)?;
        }
        out.flush().map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })
    }

    /// Reads a history from CSV as [`History::write_csv`] writes it (Keras' `CSVLogger`
    /// files read too). Cells may be `nan`/`NaN`, `inf`; an empty cell is a missing value.
    ///
    /// # Errors
    /// [`Error::Csv`] for a malformed file (first column not `epoch`, an unparsable
    /// number, a row of the wrong length); [`Error::EpochOrder`].
    pub fn read_csv<R: Read>(reader: R) -> Result<Self> {
        Self::read_csv_from(reader, Path::new("-"))
    }

    fn read_csv_from<R: Read>(reader: R, path: &Path) -> Result<Self> {
        let fail = |message: String| Error::Csv {
            path: path.to_path_buf(),
            message,
        };
        let mut input = csv::Reader::from_reader(reader);
        let header = input.headers().map_err(|e| fail(e.to_string()))?.clone();
        if header.get(0).map(str::trim) != Some("epoch") {
            return Err(fail(format!(
                "the first column must be `epoch`, found {:?}",
                header.get(0).unwrap_or("")
            )));
        }
        let mut history = Self::new();
        for row in input.records() {
            let row = row.map_err(|e| fail(e.to_string()))?;
            let line = row.position().map_or(0, |p| p.line());
            let epoch_cell = row.get(0).unwrap_or("").trim();
            let epoch = epoch_cell.parse::<usize>().map_err(|_| {
                fail(format!(
                    "line {line}: epoch {epoch_cell:?} is not a whole number"
                ))
            })?;
            let mut record = EpochRecord::new(epoch);
            for (name, cell) in header.iter().zip(row.iter()).skip(1) {
                let cell = cell.trim();
                if cell.is_empty() {
                    continue;
                }
                let value = cell.parse::<f64>().map_err(|_| {
                    fail(format!("line {line}: `{name}` = {cell:?} is not a number"))
                })?;
                record.insert(name.trim(), value);
            }
            history.push(record)?;
        }
        Ok(history)
    }

    /// Writes the history as CSV ([`History::write_csv`]), atomically.
    ///
    /// # Errors
    /// [`Error::Csv`], [`Error::Io`].
    pub fn to_csv_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut bytes = Vec::new();
        self.write_csv_to(&mut bytes, path)?;
        Ok(df_io::write_atomic(path, bytes)?)
    }

    /// Reads a history from a CSV file ([`History::read_csv`]).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Csv`], [`Error::EpochOrder`].
    pub fn from_csv_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| crate::error::io_error(path, e))?;
        Self::read_csv_from(std::io::BufReader::new(file), path)
    }

    // ---- analysis ----------------------------------------------------------------------

    /// The epoch where `metric` was best: the first strict optimum among its finite
    /// values (NaN epochs are skipped), as Keras' `EarlyStopping` counts improvements.
    ///
    /// # Errors
    /// [`Error::MissingMetric`] when the metric has no finite value.
    pub fn best_epoch(&self, metric: &str, mode: Mode) -> Result<BestEpoch> {
        let mut best: Option<(usize, f64)> = None;
        for (epoch, value) in self.get(metric) {
            if !value.is_finite() {
                continue;
            }
            if best.is_none_or(|(_, incumbent)| mode.is_better(value, incumbent)) {
                best = Some((epoch, value));
            }
        }
        let (epoch, value) = best.ok_or_else(|| self.missing(metric, 1, 0))?;
        Ok(BestEpoch {
            metric: metric.to_string(),
            mode,
            epoch,
            value,
        })
    }

    /// The generalization gap at `epoch`: `val_loss - loss` and `accuracy - val_accuracy`
    /// with the given names.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the history has no such epoch.
    pub fn generalization_gap(
        &self,
        epoch: usize,
        names: &MetricNames,
    ) -> Result<GeneralizationGap> {
        let record = self
            .record(epoch)
            .ok_or_else(|| invalid_argument("epoch", epoch, "an epoch of the history"))?;
        let difference = |a: &str, b: &str| Some(record.get(a)? - record.get(b)?);
        Ok(GeneralizationGap {
            epoch,
            loss_gap: difference(&names.val_loss, &names.loss),
            accuracy_gap: difference(&names.accuracy, &names.val_accuracy),
        })
    }

    /// The fluctuation of `metric` over its last `window` values; see [`Fluctuation`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `window < 2`; [`Error::MissingMetric`] when the
    /// metric has fewer than two values.
    pub fn fluctuation(&self, metric: &str, window: usize) -> Result<Fluctuation> {
        if window < 2 {
            return Err(invalid_argument(
                "window",
                window,
                "at least 2 epochs (a change needs two values)",
            ));
        }
        let series = self.get(metric);
        if series.len() < 2 {
            return Err(self.missing(metric, 2, series.len()));
        }
        let tail = &series[series.len().saturating_sub(window)..];
        let w = tail.len() as f64;
        let values: Vec<f64> = tail.iter().map(|&(_, v)| v).collect();
        let mean = values.iter().sum::<f64>() / w;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w).sqrt();
        let changes: Vec<f64> = values.windows(2).map(|p| (p[1] - p[0]).abs()).collect();
        let mean_abs_change = changes.iter().sum::<f64>() / changes.len() as f64;
        // fold with f64::max would skip NaN; keep it so a diverged window reads as NaN.
        let nan_max = |acc: f64, v: f64| {
            if acc.is_nan() || v.is_nan() {
                f64::NAN
            } else {
                acc.max(v)
            }
        };
        let nan_min = |acc: f64, v: f64| {
            if acc.is_nan() || v.is_nan() {
                f64::NAN
            } else {
                acc.min(v)
            }
        };
        let max_abs_change = changes.iter().copied().fold(0.0, nan_max);
        let range = values.iter().copied().fold(f64::NEG_INFINITY, nan_max)
            - values.iter().copied().fold(f64::INFINITY, nan_min);
        Ok(Fluctuation {
            metric: metric.to_string(),
            window: tail.len(),
            first_epoch: tail[0].0,
            last_epoch: tail[tail.len() - 1].0,
            mean,
            std,
            mean_abs_change,
            max_abs_change,
            range,
        })
    }

    /// Best epoch, generalization gaps at the best and the last epoch, and fluctuation of
    /// the validation loss and accuracy over the last `config.window` epochs.
    ///
    /// # Errors
    /// [`Error::MissingMetric`] when the monitored metric has no finite value;
    /// [`Error::InvalidArgument`] when `config.window < 2`.
    pub fn analyze(&self, config: &AnalysisConfig) -> Result<HistoryAnalysis> {
        if config.window < 2 {
            return Err(invalid_argument(
                "window",
                config.window,
                "at least 2 epochs (a change needs two values)",
            ));
        }
        let best = self.best_epoch(&config.monitor, config.mode)?;
        let last_epoch = self.last_epoch().unwrap_or(best.epoch);
        let optional = |metric: &str| match self.fluctuation(metric, config.window) {
            Ok(f) => Ok(Some(f)),
            Err(Error::MissingMetric { .. }) => Ok(None),
            Err(e) => Err(e),
        };
        Ok(HistoryAnalysis {
            epochs: self.len(),
            last_epoch,
            gap_at_best: self.generalization_gap(best.epoch, &config.names)?,
            gap_at_last: self.generalization_gap(last_epoch, &config.names)?,
            best,
            val_loss_fluctuation: optional(&config.names.val_loss)?,
            val_accuracy_fluctuation: optional(&config.names.val_accuracy)?,
        })
    }
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else {
        // Display prints the shortest digits that read back to the same f64 ("inf" too).
        value.to_string()
    }
}
