//! The files of a run, in one place: their names ([`files`]), the trainer's configuration
//! and history, the resumable state's safetensors (libtorch tensors to and from a file),
//! and the report [`crate::run_experiment`] leaves (plots, metrics).
//!
//! Every file goes through df-io's one writer ([`df_io::write_atomic`],
//! [`df_io::write_json`], [`df_io::safetensors::write`]): written to a temporary file in
//! the same folder, synced, renamed over the destination, so a reader (or a run killed
//! mid-write) sees the old file or the whole new one. The folder must exist (df-io's one
//! rule): [`crate::Trainer::fit`] creates its output directory when it starts, and
//! [`crate::run_experiment`] when it locks it.

use std::collections::HashMap;
use std::path::Path;

use df_metrics::{Evaluation, History};
use tch::Tensor;

use crate::error::{io, Error, Result};
use crate::trainer::TrainingConfig;

/// The file names a run writes in its output directory.
pub mod files {
    /// The resumable checkpoint of the last completed epoch.
    pub const LAST: &str = "last.safetensors";
    /// The best model ([`crate::ModelCheckpoint`]'s default path).
    pub const BEST: &str = "best.safetensors";
    /// The model at the end of training (after EarlyStopping restored the best weights).
    pub const FINAL: &str = "model.safetensors";
    /// The [`crate::TrainingConfig`] the run was started with.
    pub const CONFIG: &str = "config.json";
    /// The per-epoch history as JSON.
    pub const HISTORY_JSON: &str = "history.json";
    /// The per-epoch history as CSV.
    pub const HISTORY_CSV: &str = "history.csv";
    /// The [`crate::ExperimentConfig`] of a [`crate::run_experiment`] run.
    pub const EXPERIMENT: &str = "experiment.json";
    /// The input files a [`crate::run_experiment`] run could not read, skipped.
    pub const SKIPPED: &str = "skipped.json";
}

/// Writes `text` to `path` atomically: df-io's [`df_io::write_atomic`] under the name
/// the programs have used (`examples/evaluate.rs`).
pub use df_io::write_atomic as write_text;

/// A libtorch error converted from df-models' tensor conversion, keeping a file's fault
/// as [`Error::Checkpoint`].
fn from_models(e: df_models::Error) -> Error {
    match e {
        df_models::Error::Checkpoint { path, reason } => Error::Checkpoint { path, reason },
        other => other.into(),
    }
}

/// Named tensors (on the CPU) and string metadata read from a safetensors file.
#[derive(Debug, Default)]
pub struct SafetensorsFile {
    /// The tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// The `__metadata__` entries.
    pub metadata: HashMap<String, String>,
}

/// Writes named tensors (copied to the CPU, each in its own type) and string metadata to
/// a safetensors file, atomically ([`df_io::safetensors::write`]; the folder must exist).
///
/// # Errors
/// A tensor kind safetensors cannot store, a libtorch copy error, an I/O error naming the
/// file (or the missing folder).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let bytes = tensors
        .iter()
        .map(|(name, t)| {
            let b = df_models::checkpoint::tensor_to_bytes(path, name, t).map_err(from_models)?;
            Ok((name.clone(), b))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(df_io::safetensors::write(path, &bytes, metadata)?)
}

/// Reads a safetensors file written by [`write_safetensors`] (or any safetensors file).
///
/// # Errors
/// The file cannot be read, is not valid safetensors, or holds a dtype libtorch lacks.
pub fn read_safetensors(path: &Path) -> Result<SafetensorsFile> {
    let file = df_io::safetensors::read(path)?;
    let mut tensors = HashMap::new();
    for (name, t) in file.tensors {
        let tensor =
            df_models::checkpoint::tensor_from_bytes(path, &name, &t).map_err(from_models)?;
        tensors.insert(name, tensor);
    }
    Ok(SafetensorsFile {
        tensors,
        metadata: file.metadata,
    })
}

/// Writes `config` as `dir`'s [`files::CONFIG`].
pub(crate) fn write_training_config(dir: &Path, config: &TrainingConfig) -> Result<()> {
    Ok(df_io::write_json(&dir.join(files::CONFIG), config)?)
}

/// Reads the [`TrainingConfig`] of a run directory.
///
/// # Errors
/// An I/O or JSON error naming the file.
pub fn read_training_config(dir: &Path) -> Result<TrainingConfig> {
    let path = dir.join(files::CONFIG);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path, source })
}

/// Writes `history` as `dir`'s [`files::HISTORY_JSON`] and [`files::HISTORY_CSV`].
pub(crate) fn write_history(dir: &Path, history: &History) -> Result<()> {
    history.to_json_file(dir.join(files::HISTORY_JSON))?;
    history.to_csv_file(dir.join(files::HISTORY_CSV))?;
    Ok(())
}

/// Writes the plots of a history (`history.png`, `history.svg`) and, when given, an
/// evaluation's `metrics.json`, `roc.png`, `pr.png` and `calibration.png` into `dir`.
///
/// # Errors
/// An I/O or plotting error.
pub fn write_report(dir: &Path, history: &History, evaluation: Option<&Evaluation>) -> Result<()> {
    if !history.is_empty() {
        df_metrics::plot_history(history, dir.join("history.png"))?;
        df_metrics::plot_history(history, dir.join("history.svg"))?;
    }
    if let Some(e) = evaluation {
        write_evaluation(dir, e)?;
    }
    Ok(())
}

/// Writes an evaluation's `metrics.json` and its ROC, PR and calibration plots (PNG)
/// into `dir`.
///
/// # Errors
/// An I/O or plotting error.
pub fn write_evaluation(dir: &Path, evaluation: &Evaluation) -> Result<()> {
    evaluation.report.to_json_file(dir.join("metrics.json"))?;
    if let Some(roc) = &evaluation.roc {
        df_metrics::plot_roc(&[("model", roc)], dir.join("roc.png"))?;
    }
    if let Some(pr) = &evaluation.pr {
        df_metrics::plot_pr(&[("model", pr)], dir.join("pr.png"))?;
    }
    df_metrics::plot_calibration(&evaluation.calibration, dir.join("calibration.png"))?;
    Ok(())
}
