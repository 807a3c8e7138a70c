//! The table of the `compare` program: one row per trained model, with the study's
//! criteria (loss, accuracy, `val_loss`, `val_accuracy`, how much the validation curves
//! fluctuate), the validation AUC and EER, and the final model on each `--test` set.
//!
//! [`ComparisonRow::new`] reads a finished run; [`markdown`] renders the rows as
//! `comparison.md` and [`write()`] writes it with `comparison.json`.

use std::path::Path;

use df_layers::util::ParamCount;
use df_metrics::{AnalysisConfig, Evaluation, History};
use df_models::summary::thousands;
use serde::Serialize;

use crate::{ExperimentConfig, ExperimentOutcome, Result};

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// The model's registry name.
    pub model: String,
    /// Every parameter.
    pub params_total: i64,
    /// The parameters the optimizer updates.
    pub params_trainable: i64,
    /// Epochs trained.
    pub epochs: usize,
    /// The epoch whose metrics the row gives: the one whose weights the final model holds
    /// (the best epoch of early stopping's monitor, whose weights are restored), else the
    /// last.
    pub epoch: usize,
    /// Why that epoch: `best MONITOR` or `last`.
    pub epoch_is: String,
    /// The initial learning rate.
    pub lr: f64,
    /// Training loss at `epoch`.
    pub loss: Option<f64>,
    /// Training accuracy at `epoch`.
    pub accuracy: Option<f64>,
    /// Validation loss at `epoch`.
    pub val_loss: Option<f64>,
    /// Validation accuracy at `epoch`.
    pub val_accuracy: Option<f64>,
    /// The final model's validation AUC.
    pub val_auc: Option<f64>,
    /// The final model's validation EER.
    pub val_eer: Option<f64>,
    /// The epoch of the lowest `val_loss`.
    pub best_epoch: Option<usize>,
    /// The lowest `val_loss`.
    pub best_val_loss: Option<f64>,
    /// Standard deviation of `val_loss` over the analysis window.
    pub val_loss_fluctuation: Option<f64>,
    /// Standard deviation of `val_accuracy` over the analysis window.
    pub val_accuracy_fluctuation: Option<f64>,
    /// Mean wall-clock seconds per epoch.
    pub seconds_per_epoch: f64,
    /// The final model on each `--test` set.
    pub tests: Vec<TestCell>,
}

/// The final model on one `--test` set at one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestCell {
    /// The column: the set's name, with `(frame)` or `(video)` for a video set.
    pub column: String,
    /// AUC (`None` when the set lacks a class).
    pub auc: Option<f64>,
    /// Accuracy at 0.5.
    pub accuracy: f64,
    /// Equal error rate (`None` when the set lacks a class).
    pub eer: Option<f64>,
}

impl ComparisonRow {
    /// The row of a finished run of `cfg`: its `history`, the final model's validation
    /// `evaluation`, its parameter count and speed; the fluctuations over the last
    /// `window` epochs (all when fewer). No `--test` cells ([`ComparisonRow::with_tests`]).
    pub fn new(
        model: &str,
        cfg: &ExperimentConfig,
        history: &History,
        evaluation: Option<&Evaluation>,
        params: ParamCount,
        seconds_per_epoch: f64,
        window: usize,
    ) -> Self {
        let analysis = history
            .analyze(&AnalysisConfig::monitoring("val_loss").with_window(window))
            .ok();
        // The final model holds the weights early stopping restored, if it restores.
        let restored = cfg
            .callbacks
            .early_stopping
            .as_ref()
            .filter(|c| c.restore_best_weights)
            .and_then(|c| {
                history
                    .analyze(&AnalysisConfig::monitoring(&c.monitor))
                    .ok()
                    .map(|a| (a.best.epoch, format!("best {}", c.monitor)))
            });
        let (epoch, epoch_is) = restored.unwrap_or((history.len(), "last".into()));
        let at = |metric: &str| history.record(epoch).and_then(|r| r.get(metric));
        let fluctuation = |f: Option<&df_metrics::Fluctuation>| f.map(|f| f.std);
        ComparisonRow {
            model: model.to_string(),
            params_total: params.total,
            params_trainable: params.trainable,
            epochs: history.len(),
            epoch,
            epoch_is,
            lr: cfg.optimizer.lr(),
            loss: at("loss"),
            accuracy: at("accuracy"),
            val_loss: at("val_loss"),
            val_accuracy: at("val_accuracy"),
            val_auc: evaluation.and_then(|e| e.report.auc),
            val_eer: evaluation.and_then(|e| e.report.eer),
            best_epoch: analysis.as_ref().map(|a| a.best.epoch),
            best_val_loss: analysis.as_ref().map(|a| a.best.value),
            val_loss_fluctuation: fluctuation(
                analysis
                    .as_ref()
                    .and_then(|a| a.val_loss_fluctuation.as_ref()),
            ),
            val_accuracy_fluctuation: fluctuation(
                analysis
                    .as_ref()
                    .and_then(|a| a.val_accuracy_fluctuation.as_ref()),
            ),
            seconds_per_epoch,
            tests: Vec::new(),
        }
    }

    /// As [`ComparisonRow::new`] from what [`crate::run_experiment`] returned.
    pub fn of_outcome(
        model: &str,
        cfg: &ExperimentConfig,
        outcome: &ExperimentOutcome,
        window: usize,
    ) -> Self {
        Self::new(
            model,
            cfg,
            &outcome.history,
            outcome.evaluation.as_ref(),
            outcome.params,
            outcome.seconds_per_epoch,
            window,
        )
    }

    /// This row with the final model's cells on the `--test` sets.
    pub fn with_tests(mut self, tests: Vec<TestCell>) -> Self {
        self.tests = tests;
        self
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// `comparison.md`: a Markdown table, one row per model, an `AUC NAME` column per `--test`
/// set (those of the first row), `window` named in the fluctuation columns.
pub fn markdown(rows: &[ComparisonRow], window: usize) -> String {
    let tests: Vec<&str> = rows
        .first()
        .map(|r| r.tests.iter().map(|t| t.column.as_str()).collect())
        .unwrap_or_default();
    let mut md = format!(
        "| model | params (trainable) | lr | epochs | row's epoch | loss | accuracy | val_loss | val_accuracy | val AUC | val EER |{} best epoch (val_loss) | val_loss fluctuation (std, last {window} epochs or all) | val_accuracy fluctuation (std, last {window} epochs or all) | s/epoch |\n",
        tests.iter().map(|t| format!(" AUC {t} |")).collect::<String>()
    );
    md.push_str(&format!(
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |{} ---: | ---: | ---: | ---: |\n",
        " ---: |".repeat(tests.len())
    ));
    for r in rows {
        let tests: String = r
            .tests
            .iter()
            .map(|t| format!(" {} |", cell(t.auc)))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {:.0e} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |{tests} {} | {} | {} | {:.1} |\n",
            r.model,
            thousands(r.params_trainable),
            r.lr,
            r.epochs,
            r.epoch,
            r.epoch_is,
            cell(r.loss),
            cell(r.accuracy),
            cell(r.val_loss),
            cell(r.val_accuracy),
            cell(r.val_auc),
            cell(r.val_eer),
            r.best_epoch.map_or("-".into(), |e| e.to_string()),
            cell(r.val_loss_fluctuation),
            cell(r.val_accuracy_fluctuation),
            r.seconds_per_epoch
        ));
    }
    md
}

/// Writes `comparison.md` ([`markdown`]) and `comparison.json` (the rows) into `out`,
/// atomically; `out` must exist.
///
/// # Errors
/// Writing either file.
pub fn write(out: &Path, rows: &[ComparisonRow], window: usize) -> Result<()> {
    df_io::write_atomic(
        &out.join("comparison.md"),
        markdown(rows, window).as_bytes(),
    )?;
    df_io::write_json(&out.join("comparison.json"), &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataConfig, EarlyStoppingConfig, ModelChoice};
    use df_metrics::EpochRecord;

    /// Four epochs whose lowest `val_loss` is at epoch 2.
    fn history() -> History {
        let mut h = History::new();
        for (e, (loss, acc, vl, va)) in [
            (0.69, 0.50, 0.68, 0.52),
            (0.55, 0.71, 0.41, 0.83),
            (0.40, 0.80, 0.47, 0.80),
            (0.30, 0.88, 0.60, 0.78),
        ]
        .into_iter()
        .enumerate()
        {
            let record = EpochRecord::new(e + 1)
                .with("loss", loss)
                .with("accuracy", acc)
                .with("val_loss", vl)
                .with("val_accuracy", va);
            h.push(record).expect("push");
        }
        h
    }

    fn config(restore: Option<bool>) -> ExperimentConfig {
        let data = DataConfig::new("train", 16);
        let mut cfg = ExperimentConfig::new(ModelChoice::new("meso4"), data, 4, "out");
        cfg.callbacks.early_stopping = restore.map(|r| {
            EarlyStoppingConfig::new("val_loss")
                .with_patience(2)
                .with_restore_best_weights(r)
        });
        cfg
    }

    fn params() -> ParamCount {
        ParamCount {
            total: 1_234_567,
            trainable: 1_234_000,
        }
    }

    #[test]
    fn a_restoring_run_is_read_at_its_best_epoch_any_other_at_its_last() {
        let h = history();
        let row = ComparisonRow::new("meso4", &config(Some(true)), &h, None, params(), 2.5, 3);
        assert_eq!((row.epoch, row.epoch_is.as_str()), (2, "best val_loss"));
        assert_eq!(
            (row.loss, row.accuracy, row.val_loss, row.val_accuracy),
            (Some(0.55), Some(0.71), Some(0.41), Some(0.83))
        );
        assert_eq!((row.best_epoch, row.best_val_loss), (Some(2), Some(0.41)));
        assert_eq!(row.epochs, 4);
        for restore in [None, Some(false)] {
            let row = ComparisonRow::new("meso4", &config(restore), &h, None, params(), 2.5, 3);
            assert_eq!(
                (row.epoch, row.epoch_is.as_str()),
                (4, "last"),
                "{restore:?}"
            );
            assert_eq!((row.loss, row.val_accuracy), (Some(0.30), Some(0.78)));
            assert_eq!(row.best_epoch, Some(2));
        }
    }

    #[test]
    fn the_fluctuation_is_the_spread_of_the_last_window_epochs() {
        let h = history();
        let row = ComparisonRow::new("m", &config(None), &h, None, params(), 1.0, 3);
        // Standard deviation (population) of the last three val_loss values, by hand.
        let last = [0.41f64, 0.47, 0.60];
        let mean = last.iter().sum::<f64>() / 3.0;
        let std = (last.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let got = row.val_loss_fluctuation.expect("a fluctuation");
        assert!((got - std).abs() < 1e-12, "{got} against {std}");
    }

    #[test]
    fn the_table_has_a_column_per_test_set_and_dashes_for_missing_values() {
        let h = history();
        let row = ComparisonRow::new("meso4", &config(None), &h, None, params(), 2.46, 3)
            .with_tests(vec![
                TestCell {
                    column: "lfw".into(),
                    auc: Some(0.91234),
                    accuracy: 0.8,
                    eer: Some(0.2),
                },
                TestCell {
                    column: "clips (video)".into(),
                    auc: None,
                    accuracy: 1.0,
                    eer: None,
                },
            ]);
        let md = markdown(&[row], 5);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 3, "{md}");
        assert!(lines[0].contains("| val EER | AUC lfw | AUC clips (video) | best epoch"));
        assert!(lines[0].contains("last 5 epochs or all"), "{}", lines[0]);
        assert_eq!(
            lines[0].matches('|').count(),
            lines[1].matches('|').count(),
            "{md}"
        );
        assert_eq!(lines[2].matches('|').count(), lines[0].matches('|').count());
        assert!(
            lines[2].starts_with("| meso4 | 1,234,000 | 1e-3 | 4 | 4 (last) | 0.3000 |"),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains("| - | - | 0.9123 | - | 2 |"),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with("| 2.5 |"), "{}", lines[2]);
    }
}
