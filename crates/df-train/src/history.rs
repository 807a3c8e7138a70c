//! The per-epoch record of a run, written to `history.json` and `history.csv` after
//! every epoch.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::callbacks::Logs;
use crate::checkpoint::atomic_write_bytes;
use crate::error::{Error, Result};

/// One epoch of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// The logged values (`loss`, `accuracy`, `val_loss`, `val_accuracy`, `val_auc`,
    /// `learning_rate`).
    pub metrics: Logs,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

/// The epochs of a run, in order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainHistory {
    /// One record per completed epoch.
    pub epochs: Vec<EpochRecord>,
}

impl TrainHistory {
    /// The values of `metric` per epoch (`None` where an epoch lacks it).
    pub fn series(&self, metric: &str) -> Vec<Option<f64>> {
        self.epochs
            .iter()
            .map(|e| e.metrics.get(metric).copied())
            .collect()
    }

    /// Every metric name logged in some epoch.
    pub fn metric_names(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self.epochs.iter().flat_map(|e| e.metrics.keys()).collect();
        let mut names: Vec<String> = names.into_iter().cloned().collect();
        // Keras' order first, the rest alphabetically.
        let rank = |n: &str| match n {
            "loss" => 0,
            "accuracy" => 1,
            "val_loss" => 2,
            "val_accuracy" => 3,
            "learning_rate" => 5,
            _ => 4,
        };
        names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
        names
    }

    /// The history as pretty JSON.
    ///
    /// # Errors
    /// Serialisation failure (not expected).
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: "history".into(),
            source,
        })
    }

    /// Writes `history.json`-style JSON atomically.
    ///
    /// # Errors
    /// An I/O error naming the file.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let mut s = self.to_json_string()?;
        s.push('\n');
        atomic_write_bytes(path, s.as_bytes())
    }

    /// Reads a history written by [`TrainHistory::write_json`].
    ///
    /// # Errors
    /// An I/O or JSON error naming the file.
    pub fn read_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
        serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The history as CSV: `epoch`, the metrics (see [`TrainHistory::metric_names`]),
    /// `seconds`; empty cells where an epoch lacks a metric.
    pub fn to_csv_string(&self) -> String {
        let names = self.metric_names();
        let mut out = String::from("epoch");
        for n in &names {
            out.push(',');
            out.push_str(n);
        }
        out.push_str(",seconds\n");
        for e in &self.epochs {
            out.push_str(&e.epoch.to_string());
            for n in &names {
                out.push(',');
                if let Some(v) = e.metrics.get(n) {
                    out.push_str(&v.to_string());
                }
            }
            out.push(',');
            out.push_str(&format!("{:.3}", e.seconds));
            out.push('\n');
        }
        out
    }

    /// Writes the CSV atomically.
    ///
    /// # Errors
    /// An I/O error naming the file.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        atomic_write_bytes(path, self.to_csv_string().as_bytes())
    }
}
